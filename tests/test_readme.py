"""Every command of the README's CLI tour runs, in order, in a scratch folder."""
import re
import shlex
import shutil

import pytest

from conftest import ROOT


def tour():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- tour -->\s*```bash\n(.*?)```", text, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_starts_with_the_two_commands_and_ci_calls_the_test_one():
    text = (ROOT / "README.md").read_text()
    first = re.search(r"```bash\n(.*?)```", text, re.S).group(1).splitlines()
    assert [l.split("#")[0].strip() for l in first] == ["make study", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_cli_tour(tmp_path, cli, monkeypatch):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for line in tour():
        args = shlex.split(line)
        assert args[0] == "collapse-diffusion"
        cli(*args[1:], cwd=tmp_path)
    assert (tmp_path / "runs" / "tiny" / "report.md").exists()


def test_every_config_loads():
    from collapse_diffusion.config import load_config
    for path in (ROOT / "configs").glob("*.yaml"):
        load_config(path)
