import os
import tempfile

# Triton kernels run under the interpreter on CPU; set before anything imports triton.
os.environ.setdefault("TRITON_INTERPRET", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest workers (pytest-xdist) on a 2-core machine: one thread each, and a
    # cache folder of their own (a classifier trained by one worker is never half-written for the other)
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix=f"collapse-diffusion-{os.environ['PYTEST_XDIST_WORKER']}-")
else:
    os.environ.setdefault("OMP_NUM_THREADS", "2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_config() -> Path:
    return ROOT / "configs" / "tiny.yaml"


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the CLI's entry point in this process: (returncode, stdout, stderr), as a user sees them."""
    from types import SimpleNamespace

    from collapse_diffusion.cli import main

    def run(*args, cwd=None, ok=True):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        result = SimpleNamespace(returncode=exit_info.value.code, stdout=out, stderr=err)
        if ok:
            assert result.returncode == 0, err[-2000:]
        return result

    return run


def assert_user_error(result, *words):
    """Exit code 2, exactly one `error:` line naming ``words``, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-1500:])
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]


def pytest_collection_modifyitems(config, items):
    """The slow end-to-end tests first: with two pytest workers the long ones then overlap each other
    and the many short ones fill the gaps at the end, instead of one long test running alone last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
