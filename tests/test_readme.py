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


def test_the_repository_carries_its_own_science():
    """No tracked file points at notes outside the repository; the code cites docs/method.md."""
    import subprocess
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    outside = re.compile(r"\.\./shared|(^|[^a-z/])(METHOD|STYLE)\.md")
    for name in files:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".yaml", ".ipynb", ".toml", ""} and path.is_file():
            assert not outside.search(path.read_text(errors="ignore")), name
    assert (ROOT / "docs" / "method.md").exists()
    assert "docs/method.md §" in (ROOT / "collapse_diffusion" / "metrics.py").read_text()


def shipped(name):
    import json
    return [{**json.loads(x), "run": name} for x in (ROOT / "docs" / "results" / f"{name}.jsonl").read_text().splitlines()]


def block(name):
    text = (ROOT / "README.md").read_text()
    return re.search(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->", text, re.S).group(1)


@pytest.mark.parametrize("run", ["digits", "digits_accumulate"])
def test_readme_results_are_generated_from_the_shipped_metrics(run):
    """The README's result tables and findings are the generated text of docs/results/<run>.jsonl."""
    from collapse_diffusion.findings import findings_lines, summary_table
    rows = shipped(run)
    text = block(f"results:{run}")
    for line in summary_table(rows) + [l for l in findings_lines(rows) if l.startswith("- ")]:
        assert line in text, line
