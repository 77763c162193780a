"""The documentation: results pages generated from the shipped rows and fresh, every results file behind a
page, every link resolving, a short README whose commands and CLI tour run."""
import re
import shlex
import shutil
import subprocess

import pytest
from conftest import ROOT

from collapse_diffusion.experiments import pages as results_pages

RESULTS = ROOT / "docs" / "results"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def markdown_files():
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_pages_are_fresh():
    """Every generated block and quoted number is what scripts/results_pages.py makes of the rows now."""
    assert {"results", "summary", "ranking", "phase", "cycles", "pivot", "setup"} <= {
        m[1] for page in results_pages.pages() for m in results_pages.BLOCK.finditer(page.read_text())}
    assert results_pages.stale() == [], "stale: run python scripts/results_pages.py"


def test_a_stale_number_is_caught():
    page = (RESULTS / "digits.md").read_text()
    edited = re.sub(r"(<!-- value:[^>]*-->)[^<]*(<!-- /value -->)", r"\g<1>0.99\2", page, count=1)
    assert edited != page and results_pages.fill(edited) == page


def test_every_results_file_is_named_by_a_page():
    pages = "".join(p.read_text() for p in RESULTS.glob("*.md") if p.name != "README.md")
    index = (RESULTS / "README.md").read_text()
    for f in RESULTS.glob("*.jsonl"):
        assert f.name in pages and f.name in index, f.name
    archive = (RESULTS / "archive" / "README.md").read_text()
    for f in (RESULTS / "archive").glob("*.jsonl"):
        assert f.name in archive, f.name


def test_every_relative_link_resolves():
    for page in markdown_files():
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:|#", target):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_file(), f"{page.relative_to(ROOT)}: {target}"


def test_docs_hold_no_scripts():
    assert not list((ROOT / "docs").rglob("*.py"))


def test_readme_is_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    first = re.search(r"```bash\n(.*?)```", text, re.S).group(1).splitlines()
    assert [line.split("#")[0].strip() for line in first] == ["make study", "make test"]
    assert "make test-fast" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_config_loads():
    from collapse_diffusion.loop.experiment import load_config
    for path in (ROOT / "configs").glob("*.yaml"):
        load_config(path)


def test_the_repository_carries_its_own_science():
    """No tracked file points at notes outside the repository; the code cites docs/method.md."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    outside = re.compile(r"\.\./shared|(^|[^a-z/])(METHOD|STYLE)\.md")
    for name in files:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".yaml", ".ipynb", ".toml", ""} and path.is_file():
            assert not outside.search(path.read_text(errors="ignore")), name
    assert (ROOT / "docs" / "method.md").exists()
    assert "docs/method.md §" in (ROOT / "collapse_diffusion" / "measure" / "memorization.py").read_text()


def tour():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- tour -->\s*```bash\n(.*?)```", text, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


@pytest.mark.slow
def test_cli_tour(tmp_path, cli, monkeypatch):
    """Every command of the README's CLI tour runs, in order, in a scratch folder."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for line in tour():
        args = shlex.split(line)
        assert args[0] == "collapse-diffusion"
        cli(*args[1:], cwd=tmp_path)
    assert (tmp_path / "runs" / "tiny" / "report.md").exists()


def test_a_count_tag_counts_cells_and_names_them():
    """`count` tags: k of n cells whose estimate passes the test, or the passing cells by name."""
    from collapse_diffusion.analysis.pages import count
    rows = []
    for cell, rise in (("a", 0.1), ("b", -0.1), ("c", 0.0)):
        for seed in (0, 1, 2):
            for c in range(1, 4):
                v = 0.5 + rise * c + 0.001 * seed * (-1) ** c
                rows.append({"cell": cell, "seed": seed, "paradigm": "replace", "arm": "vanilla", "cycle": c,
                             "x": v})
                rows.append({"cell": cell, "seed": seed, "paradigm": "replace", "arm": "greedy", "cycle": c,
                             "x": v - 0.05 * c})
    groups = {(cell,): [r for r in rows if r["cell"] == cell] for cell in "abc"}
    assert count(groups, "vanilla x mean>0") == "1 of 3"
    assert count(groups, "vanilla x lo>0 cells") == "a"
    assert count(groups, "vanilla x hi<0 cells") == "b"
    assert count(groups, "greedy-vanilla x hi<0") == "3 of 3"           # paired slopes: -0.05 a cycle
    assert count(groups, "greedy-vanilla x@3 mean<0") == "3 of 3"       # paired values at cycle 3
    with pytest.raises(ValueError, match="not one of"):
        count(groups, "vanilla x rises")


def test_a_stale_count_is_caught():
    page = (ROOT / "README.md").read_text()
    edited = re.sub(r"(<!-- count:[^>]*-->)[^<]*(<!-- /count -->)", r"\g<1>9 of 9\2", page, count=1)
    assert edited != page and results_pages.fill(edited) == page
