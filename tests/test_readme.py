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
    gs = lambda arm: at(arm, last, "generalization_score")  # noqa: E731
    assert (round(gs("vanilla")), round(at("vanilla", 1, "generalization_score"))) == (81, 158)
    h = [at("vanilla", c, "entropy_train") for c in range(1, last + 1)]
    assert all(b < a for a, b in zip(h, h[1:])) and (round(h[0], 1), round(h[-1], 1)) == (347.6, 251.9)
    assert 9 < at("vanilla", last, "fd") / at("vanilla", 1, "fd") < 11  # "about tenfold"
    assert (round(at("greedy", last, "entropy_train")), round(at("tdf", last, "entropy_train"))) == (303, 300)
    assert (round(gs("greedy") / gs("vanilla"), 2), round(gs("tdf") / gs("vanilla"), 2)) == (1.31, 1.25)
    assert [round(gs(a) / at(a, 1, "generalization_score") * 100 - 100) for a in ("greedy", "tdf")] == [-33, -36]
    assert [round(at(a, last, "fd"), 1) for a in ("greedy", "tdf", "vanilla")] == [13.7, 12.3, 28.0]
    assert round(at("vanilla", 1, "memorization_rate_lineage"), 2) == 0.42
    assert round(at("vanilla", last, "memorization_rate_lineage"), 2) == 0.10
    assert [round(at(a, last, "memorization_rate_lineage"), 2) for a in ("greedy", "tdf")] == [0.20, 0.20]
    assert round(at("vanilla", last, "memorization_rate"), 2) == 0.08 and round(at("vanilla", last, "duplicate_share"), 2) == 0.12
    sp = (round(at("vanilla", 1, "mean_nn_train")), round(at("vanilla", last, "mean_nn_train")))
    assert sp == (451, 112) and round(sp[0] / sp[1], 1) == 4.0
    assert round(at("vanilla", 1, "generalization_score") / gs("vanilla"), 1) == 1.9
    rel = (round(at("vanilla", 1, "relative_nn_median"), 2), round(at("vanilla", last, "relative_nn_median"), 2))
    assert rel == (0.35, 0.82)
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
    fall = lambda rs, arm="vanilla": 1 - at(rs, arm, 5, "generalization_score") / at(rs, arm, 1, "generalization_score")  # noqa: E731
    assert round(fall(rows) * 100) == 28 and round(fall(rep) * 100) == 48
    assert round(at(rows, "vanilla", 5, "fd"), 1) == 17.6 and round(at(rep, "vanilla", 5, "fd"), 1) == 28.0
    assert [round(at(rows, a, 5, "entropy_train"), 1) for a in ("greedy", "tdf")] == [349.9, 350.6]
    assert all(fall(rows, a) < 0.05 for a in ("greedy", "tdf"))
    assert [round(at(rows, a, 5, "fd"), 1) for a in ("greedy", "tdf")] == [4.8, 5.3]
    assert [round(at(rows, a, 5, "real_share"), 2) for a in ("greedy", "tdf", "vanilla")] == [0.53, 0.47, 0.22]
    assert [round(at(rows, a, 5, "memorization_rate_lineage"), 2) for a in ("greedy", "tdf", "vanilla")] == [0.46, 0.43, 0.43]
    assert round(at(rows, "vanilla", 5, "memorization_rate"), 2) == 0.16 and round(at(rows, "vanilla", 5, "duplicate_share"), 2) == 0.28


def test_the_default_and_accumulate_runs_are_the_mitigation_studys_rows():
    """Common random numbers: the default and accumulate studies' rows are, byte for byte, the
    vanilla/greedy/tdf rows of the mitigations study (an arm's seeds do not depend on the other arms)."""
    import json
    mit = (ROOT / "docs" / "results" / "digits_mitigations.jsonl").read_text().splitlines()
    for name, paradigm in (("digits", "replace"), ("digits_accumulate", "accumulate-subsample")):
        mine = [l for l in mit if json.loads(l)["paradigm"] == paradigm and json.loads(l)["arm"] in ("vanilla", "greedy", "tdf")]
        assert (ROOT / "docs" / "results" / f"{name}.jsonl").read_text().splitlines() == mine


def test_readme_mitigations_prose_matches_the_shipped_numbers():
    rows = shipped("digits_mitigations")
    at = lambda p, arm, c, k: next(r[k] for r in rows if r["paradigm"] == p and r["arm"] == arm and r["cycle"] == c)  # noqa: E731
    R, A = "replace", "accumulate-subsample"
    drop = lambda p, a: round((at(p, a, 5, "generalization_score") / at(p, a, 1, "generalization_score") - 1) * 100)  # noqa: E731
    arms = sorted({r["arm"] for r in rows})
    held_off = {a for a in arms if drop(R, a) > -30}
    assert held_off == {"klprune"} and (drop(R, "klprune"), drop(R, "greedy"), drop(R, "tdf")) == (-27, -33, -36)
    assert round(at(R, "klprune", 5, "generalization_score")) == 115
    assert all(300 <= at(R, a, 5, "entropy_train") <= 306 and 12 <= at(R, a, 5, "fd") <= 16 for a in ("klprune", "greedy", "tdf"))
    others = set(arms) - {"klprune", "greedy", "tdf", "vanilla"}
    assert all(at(R, a, 5, "generalization_score") <= at(R, "vanilla", 5, "generalization_score") for a in others)
    assert (drop(A, "greedy"), drop(A, "tdf"), drop(A, "klprune"), drop(A, "vanilla")) == (-4, -1, -10, -28)
    assert round(at(A, "klprune", 5, "real_share"), 2) == 0.19
    lowest = lambda p: sorted(arms, key=lambda a: at(p, a, 5, "memorization_rate_lineage"))[:2]  # noqa: E731
    assert lowest(R) == ["memfilter_all", "memfilter"] == lowest(A)
    assert [round(at(R, a, 5, k)) for a in ("memfilter", "memfilter_all") for k in ("generalization_score", "fd")] == [62, 48, 61, 51]
    worst_gs = sorted(arms, key=lambda a: at(R, a, 5, "generalization_score"))[:3]
    assert worst_gs == ["selfverify", "memfilter_all", "memfilter"]
    assert [round(at(R, a, 5, k)) for a in ("anchor1", "anchor2") for k in ("generalization_score", "fd")] == [71, 19, 80, 24]
    assert [round(at(R, a, 5, "memorization_rate_lineage"), 2) for a in ("anchor1", "anchor2")] == [0.30, 0.28]
    for p, gs, fd, h in ((R, 47, 76, 205), (A, 39, 71, 183)):
        assert sorted(arms, key=lambda a: at(p, a, 5, "generalization_score"))[0] == "selfverify"
        assert (round(at(p, "selfverify", 5, "generalization_score")), round(at(p, "selfverify", 5, "fd")),
                round(at(p, "selfverify", 5, "entropy_train"))) == (gs, fd, h)
    assert round(at(A, "selfverify", 5, "real_share") * 32) == 1 and round(at(A, "vanilla", 5, "real_share") * 32) == 7
    assert (round(at(A, "provenance", 5, "detector_recall"), 2), round(at(A, "provenance", 5, "detector_false_positive"), 2)) == (0.82, 0.06)
    assert (round(at(A, "provenance", 5, "real_share"), 2), round(at(A, "provenance", 5, "fd"), 1),
            round(at(A, "provenance", 5, "generalization_score"))) == (0.34, 15.2, 102)
    assert at(R, "provenance", 5, "topped_up") == 19


def test_readme_replicate_prose_matches_the_shipped_numbers():
    import json
    rows = shipped("digits_seeds")
    seed0 = [json.dumps({k: v for k, v in r.items() if k != "run"}, sort_keys=True) for r in rows if r["seed"] == 0]
    assert seed0 == [json.dumps({k: v for k, v in r.items() if k != "run"}, sort_keys=True) for r in shipped("digits")]
    assert {r["seed"] for r in rows} == {0, 1}
    at = lambda arm, seed, k: next(r[k] for r in rows if r["arm"] == arm and r["seed"] == seed and r["cycle"] == 5)  # noqa: E731
    assert [round(at("greedy", s, "entropy_train"), 1) for s in (0, 1)] == [303.1, 303.0]
    assert [round(at("vanilla", s, "memorization_rate_lineage"), 2) for s in (0, 1)] == [0.10, 0.15]
    assert [round(at(a, s, "fd"), 1) for a in ("vanilla", "tdf") for s in (0, 1)] == [28.0, 35.5, 12.3, 27.2]


def test_readme_mnist5k_phase_prose_matches_the_shipped_numbers():
    from collapse_diffusion.config import load_config
    rows = shipped("phase_mnist5k")
    cell = {r["n"]: r for r in rows}
    c = cell[32]
    assert (round(c["memorization_rate"], 2), round(c["final_loss"], 3), round(c["fd"], 2)) == (0.41, 0.015, 1.65)
    assert [round(x, 2) for x in c["memorization_lineage_ci95"]] == [0.37, 0.45]
    assert all(cell[n]["memorization_rate"] == 0 and cell[n]["n_generated"] == 512 for n in (64, 128))
    assert round(cell[64]["memorization_ci95"][1], 3) == 0.007
    n16 = shipped("mnist5k_n16_cycle1")[0]
    assert (n16["n"], n16["n_generated"], round(n16["memorization_rate_lineage"], 2)) == (16, 1024, 0.95)
    cfg = load_config(ROOT / "configs" / "mnist5k.yaml")
    assert (cfg.data.n, cfg.train.steps, cfg.model.preset, cfg.sample.sampler) == (32, 2000, c["preset"], "ddpm")


def test_readme_mnist5k_sampler_prose_matches_the_shipped_numbers():
    """The DDIM-20 study at N = 16 and the grey-background measurement that replaced its sampler."""
    from collapse_diffusion.config import load_config
    ddim = {(r["n"], r["steps"]): r for r in shipped("phase_mnist5k_ddim20")}
    assert round(ddim[16, 2000]["memorization_rate"], 2) == 0.47
    part = shipped("mnist5k_ddim20_partial")
    at = lambda p, a, c, k: next(r[k] for r in part if r["paradigm"] == p and r["arm"] == a and r["cycle"] == c)  # noqa: E731
    assert round(at("replace", "vanilla", 1, "fd"), 1) == 5.4
    fd3 = [at("replace", a, 3, "fd") for a in ("vanilla", "greedy", "tdf")]
    assert 67 <= min(fd3) and max(fd3) <= 74
    assert [round(at("replace", "vanilla", c, "memorization_rate_lineage"), 2) for c in (1, 3)] == [0.47, 0.14]
    drift = {(r["model"].split("/")[-2], r["sampler"]): r for r in shipped("sampler_drift_mnist5k")}
    pct = lambda r: [round(100 * r["grey_share"])] + [round(100 * x) for x in r["grey_ci95"]]  # noqa: E731
    assert pct(drift["cycle_01", "ddim"]) == [35, 29, 41] and pct(drift["cycle_01", "ddpm"]) == [3, 1, 6]
    assert [pct(drift["cycle_03", s])[0] for s in ("ddim", "ddpm")] == [100, 91]
    assert {r["n"] for r in drift.values()} == {256} and {r["real_grey"] for r in drift.values()} == {0}
    d100 = {(r["model"].split("/")[-2], r["sampler"]): r for r in shipped("sampler_drift100_mnist5k")}
    assert {r["steps"] for r in d100.values()} == {100} and {r["n"] for r in d100.values()} == {256}
    assert pct(d100["cycle_02", "ddim"]) == [93, 89, 96] and pct(d100["cycle_02", "ddpm"]) == [1, 0, 3]
    assert pct(d100["cycle_03", "ddpm"])[0] == 50
    assert load_config(ROOT / "configs" / "mnist.yaml").sample.sampler == "ddpm"


def test_readme_mnist5k_study_prose_matches_the_shipped_numbers():
    """The real-MNIST study: copying rises at cycle 2, backgrounds drift from cycle 3 on."""
    from collapse_diffusion.config import load_config
    rows = shipped("mnist5k")
    cfg = load_config(ROOT / "configs" / "mnist5k.yaml")
    assert {(r["n"], r["steps"], r["preset"]) for r in rows} == {(cfg.data.n, cfg.train.steps, cfg.model.preset)}
    assert len(rows) == len(cfg.study.paradigms) * len(cfg.study.arms) * cfg.study.cycles
    at = lambda p, a, c, k: next(r[k] for r in rows if r["paradigm"] == p and r["arm"] == a and r["cycle"] == c)  # noqa: E731
    lin = lambda p, a, c: round(at(p, a, c, "memorization_rate_lineage"), 2)  # noqa: E731
    assert (lin("replace", "vanilla", 1), lin("replace", "vanilla", 2)) == (0.40, 0.42)
    assert (lin("replace", "greedy", 2), lin("replace", "tdf", 2), lin("accumulate-subsample", "vanilla", 2)) == (0.58, 0.56, 0.62)
    assert [round(at("replace", "vanilla", c, "generalization_score")) for c in (1, 2)] == [798, 447]
    assert [round(at("replace", "vanilla", c, "entropy_train")) for c in (1, 2)] == [4410, 3896]
    assert [round(at("replace", "vanilla", c, "fd"), 2) for c in (1, 2)] == [1.65, 3.64]
    assert [round(at("replace", a, 2, "entropy_train")) for a in ("greedy", "tdf")] == [4282, 4288]
    assert (lin("replace", "vanilla", 3), round(at("replace", "vanilla", 3, "fd"), 1)) == (0.18, 20.5)
    grey = {(r["paradigm"], r["arm"], r["cycle"]): r for r in shipped("grey_mnist5k")}
    assert grey["shared", "*", 1]["grey"] == 0 and grey["shared", "*", 1]["n"] == 1024
    pct = lambda c: sorted(round(100 * grey["replace", a, c]["grey_share"]) for a in ("vanilla", "greedy", "tdf"))  # noqa: E731
    assert (pct(2)[0], pct(2)[-1], pct(3)[0], pct(3)[-1]) == (4, 8, 53, 65)
    acc = lambda a: round(100 * grey["accumulate-subsample", a, 3]["grey_share"])  # noqa: E731
    assert [acc(a) for a in ("greedy", "tdf", "vanilla")] == [28, 36, 37]
    assert [round(100 * at("accumulate-subsample", a, 3, "real_share")) for a in ("greedy", "tdf", "vanilla")] == [75, 69, 34]
    assert sorted(round(100 * grey["replace", a, 5]["grey_share"]) for a in ("vanilla", "greedy", "tdf")) == [78, 78, 79]
    acc5 = sorted(round(100 * grey["accumulate-subsample", a, 5]["grey_share"]) for a in ("vanilla", "greedy", "tdf"))
    assert (acc5[0], acc5[-1]) == (68, 73)
    assert [round(100 * at("accumulate-subsample", a, 5, "real_share")) for a in ("greedy", "tdf", "vanilla")] == [69, 59, 22]
    assert lin("replace", "vanilla", 5) == 0.19
    fd5 = lambda p: sorted(round(at(p, a, 5, "fd")) for a in ("vanilla", "greedy", "tdf"))  # noqa: E731
    assert (fd5("replace")[0], fd5("replace")[-1], fd5("accumulate-subsample")[0], fd5("accumulate-subsample")[-1]) == (64, 75, 42, 51)
    assert [round(at("replace", a, 5, "entropy_train")) for a in ("vanilla", "greedy", "tdf")] == [3475, 4025, 4071]
    assert [round(at("replace", a, 5, "fd")) for a in ("vanilla", "greedy", "tdf")] == [75, 68, 64]
    assert [round(at("replace", a, 5, "memorization_rate_lineage"), 2) for a in ("greedy", "tdf")] == [0.33, 0.43]
    gs = [at("replace", "vanilla", c, "generalization_score") for c in (1, 5)]
    assert round(100 * (gs[1] / gs[0] - 1)) == -47


def test_readme_mnist5k_4000_step_prose_matches_the_shipped_numbers():
    """Twice the training: where 4000 steps sits, and a replace/vanilla chain that stays black and copies."""
    import dataclasses
    from collapse_diffusion.config import load_config
    cell = {r["n"]: r for r in shipped("phase_mnist5k_4000")}
    assert {r["steps"] for r in cell.values()} == {4000} and {r["n_generated"] for r in cell.values()} == {512}
    assert round(100 * cell[64]["memorization_rate"]) == 56
    assert [round(100 * x) for x in cell[64]["memorization_lineage_ci95"]] == [52, 61]
    assert cell[128]["memorization_rate"] == 0 and [round(cell[n]["fd"], 2) for n in (64, 128)] == [1.06, 1.02]
    chain = {r["cycle"]: r for r in shipped("mnist5k_4000_vanilla")}
    assert {(r["n"], r["steps"], r["arm"], r["n_generated"]) for r in chain.values()} == {(32, 4000, "vanilla", 1024)}
    assert round(100 * chain[1]["memorization_rate_lineage"], 1) == 97.5
    assert [round(100 * x, 1) for x in chain[1]["memorization_lineage_ci95"]] == [96.3, 98.3]
    assert chain[5]["memorization_rate_lineage"] == 1.0
    assert [round(chain[c]["entropy_train"]) for c in (1, 5)] == [4410, 2068]
    assert [round(chain[c]["generalization_score"]) for c in (1, 5)] == [123, 55]
    assert [round(chain[c]["fd"], 1) for c in (1, 5)] == [1.7, 6.2] and round(100 * chain[5]["duplicate_share"]) == 88
    grey = {r["cycle"]: r for r in shipped("grey_mnist5k_4000")}
    assert all(g["grey"] == 0 and g["n"] == 1024 for g in grey.values()) and sorted(grey) == [1, 2, 3, 4, 5]
    assert [round(grey[c]["border_mean"], 1) for c in (1, 5)] == [2.4, 6.5]
    old = {(r["paradigm"], r["cycle"]): r for r in shipped("grey_mnist5k") if r["arm"] in ("vanilla", "*")}
    assert (round(old["shared", 1]["border_mean"], 1), round(old["replace", 5]["border_mean"])) == (6.7, 111)
    long = load_config(ROOT / "configs" / "mnist5k_long.yaml")
    short = load_config(ROOT / "configs" / "mnist5k.yaml")
    assert (long.data.n, long.train.steps) == (64, 4000)
    assert dataclasses.replace(long, data=short.data, train=short.train, phase=short.phase) == short


def test_readme_mnist5k_long_study_prose_matches_the_shipped_numbers():
    """The 4000-step study at N = 64: from the transition into copying, with black backgrounds throughout."""
    from collapse_diffusion.config import load_config
    rows = shipped("mnist5k_long")
    cfg = load_config(ROOT / "configs" / "mnist5k_long.yaml")
    assert {(r["n"], r["steps"], r["preset"], r["n_generated"]) for r in rows} == {(64, 4000, "mnist-tiny", 1024)}
    assert (cfg.data.n, cfg.train.steps) == (64, 4000)
    assert len(rows) == len(cfg.study.paradigms) * len(cfg.study.arms) * cfg.study.cycles
    at = lambda p, a, c, k: next(r[k] for r in rows if r["paradigm"] == p and r["arm"] == a and r["cycle"] == c)  # noqa: E731
    lin = lambda p, a, c: round(at(p, a, c, "memorization_rate_lineage"), 2)  # noqa: E731
    assert [round(100 * x) for x in at("replace", "vanilla", 1, "memorization_lineage_ci95")] == [51, 58]
    assert round(at("replace", "vanilla", 1, "fd"), 2) == 0.94
    assert [lin("replace", "vanilla", c) for c in range(1, 6)] == [0.55, 0.69, 0.75, 0.81, 0.73]
    assert [round(at("replace", "vanilla", c, "entropy_train")) for c in range(1, 6)] == [4336, 3629, 3097, 2716, 2332]
    gs = [at("replace", "vanilla", c, "generalization_score") for c in (1, 5)]
    assert [round(x) for x in gs] == [600, 112] and round(100 * (gs[1] / gs[0] - 1)) == -81
    assert round(100 * at("replace", "vanilla", 5, "duplicate_share")) == 73
    assert round(at("replace", "vanilla", 5, "fd"), 2) == 4.66
    assert round(at("replace", "vanilla", 5, "memorization_rate"), 2) == 0.06
    assert [round(100 * x) for x in at("replace", "vanilla", 5, "memorization_lineage_ci95")] == [70, 75]
    assert [lin("replace", a, 5) for a in ("greedy", "tdf")] == [0.57, 0.62]
    assert [round(at("replace", a, 5, "entropy_train")) for a in ("greedy", "tdf")] == [3707, 3818]
    assert [round(at("replace", a, 5, "generalization_score")) for a in ("greedy", "tdf")] == [232, 256]
    assert [round(at("replace", a, 5, "fd"), 2) for a in ("greedy", "tdf")] == [2.49, 2.50]
    acc = "accumulate-subsample"
    assert [lin(acc, a, 5) for a in ("greedy", "tdf", "vanilla")] == [0.56, 0.51, 0.64]
    assert [round(at(acc, a, 5, "real_share"), 2) for a in ("greedy", "tdf", "vanilla")] == [0.61, 0.44, 0.20]
    grey = shipped("grey_mnist5k_long")
    assert len(grey) == len(rows) - len(cfg.study.paradigms) * len(cfg.study.arms) + 1
    assert all(g["grey"] == 0 and g["n"] == 1024 for g in grey)
    assert round(grey[0]["border_mean"], 1) == 3.0 and round(max(g["border_mean"] for g in grey), 1) == 9.6
    text = (ROOT / "README.md").read_text()
    assert "r = 0.925 [95% CI 0.836, 0.967] over 25 distinct D_n" in text
