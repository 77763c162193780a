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


def test_readme_blocks_are_generated_from_the_shipped_metrics():
    """Every result block of the README (tables, findings, rankings, phase tables) is exactly what
    docs/fill_readme.py generates from docs/results/<name>.jsonl: no hand-edited figure."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("fill_readme", ROOT / "docs" / "fill_readme.py")
    fill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fill)
    text = (ROOT / "README.md").read_text()
    kinds = {m[1] for m in fill.BLOCK.finditer(text)}
    assert {"results", "ranking", "phase", "cycles"} <= kinds
    assert fill.fill(text) == text, "README blocks are stale: run python docs/fill_readme.py"


def test_readme_prose_matches_the_shipped_numbers():
    """The hand-written sentences of the README's results section, checked against docs/results/."""
    import numpy as np
    rows = shipped("digits")
    at = lambda arm, c, k: next(r[k] for r in rows if r["arm"] == arm and r["cycle"] == c)  # noqa: E731
    last = max(r["cycle"] for r in rows)
    assert at("vanilla", last, "generalization_score") < 0.5 * at("vanilla", 1, "generalization_score")
    h = [at("vanilla", c, "entropy_train") for c in range(1, last + 1)]
    assert all(b < a for a, b in zip(h, h[1:]))                       # H(D_n) falls every cycle
    assert 14 < at("vanilla", last, "fd") / at("vanilla", 1, "fd") < 17  # "about fifteenfold"
    for arm in ("greedy", "tdf"):
        assert abs(at(arm, last, "entropy_train") - at(arm, 1, "entropy_train")) < 4
        assert 1.8 < at(arm, last, "generalization_score") / at("vanilla", last, "generalization_score") < 2.2
        assert 1 / 7.5 < at(arm, last, "fd") / at("vanilla", last, "fd") < 1 / 5.5
    assert round(at("vanilla", 1, "memorization_rate_lineage"), 2) == 0.42
    assert round(at("vanilla", last, "memorization_rate_lineage"), 2) == 0.25
    assert (round(at("greedy", last, "memorization_rate_lineage"), 2), round(at("tdf", last, "memorization_rate_lineage"), 2)) == (0.54, 0.46)
    assert round(at("vanilla", last, "memorization_rate"), 2) == 0.01
    sp = (round(at("vanilla", 1, "mean_nn_train")), round(at("vanilla", last, "mean_nn_train")))
    gs = (round(at("vanilla", 1, "generalization_score")), round(at("vanilla", last, "generalization_score")))
    assert sp == (451, 83) and gs == (158, 68) and round(sp[0] / sp[1], 1) == 5.4 and round(gs[0] / gs[1], 1) == 2.3
    rel = (round(at("vanilla", 1, "relative_nn_median"), 2), round(at("vanilla", last, "relative_nn_median"), 2))
    assert rel == (0.35, 0.75)
    phase = shipped("phase_digits")
    first_over = {n: min(r["steps"] for r in phase if r["n"] == n and r["memorization_rate"] >= 0.5) for n in (16, 32, 64)}
    assert first_over == {16: 1000, 32: 2000, 64: 4000}
    cell = next(r for r in phase if r["n"] == 32 and r["steps"] == 1000)
    assert round(cell["final_loss"], 3) == 0.035 and round(cell["memorization_rate"], 2) == 0.42
    cyc = shipped("phase_cycles")
    for steps in (700, 1000, 1400):
        m = [r["memorization_rate_lineage"] for r in sorted((r for r in cyc if r["steps"] == steps), key=lambda r: r["cycle"])]
        assert max(m[1:]) - m[0] < 0.15                                 # copying never rises by 0.15
        if steps >= 1000:
            assert m[-1] < m[0]                                        # at and above the boundary it falls
    assert np.all([r["generalization_score"] < 0.8 * 247.2 for r in cyc if r["cycle"] == 4])


def test_readme_accumulate_prose_matches_the_shipped_numbers():
    rows = shipped("digits_accumulate")
    rep = shipped("digits")
    at = lambda rs, arm, c, k: next(r[k] for r in rs if r["arm"] == arm and r["cycle"] == c)  # noqa: E731
    fall = lambda rs: 1 - at(rs, "vanilla", 5, "generalization_score") / at(rs, "vanilla", 1, "generalization_score")  # noqa: E731
    assert round(fall(rows) * 100) == 21 and round(fall(rep) * 100) == 57
    assert round(at(rows, "vanilla", 5, "fd")) == 9 and round(at(rep, "vanilla", 5, "fd")) == 43
    shares = [round(at(rows, a, 5, "real_share"), 2) for a in ("greedy", "tdf", "vanilla")]
    assert shares == [0.19, 0.16, 0.22]
    for arm in ("greedy", "tdf"):
        assert abs(at(rows, arm, 5, "entropy_train") - at(rows, arm, 1, "entropy_train")) < 8
        assert at(rows, arm, 5, "fd") < at(rows, "vanilla", 5, "fd")


def test_readme_replicate_prose_matches_the_shipped_numbers():
    import json
    rows = shipped("digits_seeds")
    seed0 = [json.dumps({k: v for k, v in r.items() if k != "run"}, sort_keys=True) for r in rows if r["seed"] == 0]
    assert seed0 == [json.dumps({k: v for k, v in r.items() if k != "run"}, sort_keys=True) for r in shipped("digits")]
    fd = {r["seed"]: r["fd"] for r in rows if r["arm"] == "vanilla" and r["cycle"] == 5}
    assert (round(fd[0]), round(fd[1])) == (43, 11)
