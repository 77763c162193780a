"""The phase diagram (docs/method.md §7), replicate seeds, and the findings generated from metrics."""
import json
from pathlib import Path

import numpy as np
import pytest

from collapse_diffusion.analysis.findings import findings
from collapse_diffusion.analysis.results import correlation, distinct
from collapse_diffusion.data.images import make_set
from collapse_diffusion.experiments.phase_grid import open_phase, run_phase
from collapse_diffusion.loop.experiment import load_config

ROOT = Path(__file__).resolve().parents[2]
FAST = ["data.n=16", "train.steps=4", "train.batch_size=8", "train.warmup_steps=1", "sample.steps=2",
        "eval.classifier_steps=10", "eval.bootstrap=10", "eval.n_generated=64", "runtime.workers=1"]


def test_phase_separates_a_planted_memorizer_from_a_generalizer(tmp_path):
    """Cells whose 'model' returns its training images plus small noise sit on the memorizing side;
    cells whose samples are unseen real digits sit on the generalizing side."""
    cfg = load_config(ROOT / "configs" / "tiny.yaml",
                      FAST + ["phase.n=[16,32]", "phase.steps=[10,20]", "eval.probe=false",
                               "eval.membership=false", "eval.calibration=false"])
    studies = open_phase(tmp_path, cfg)
    rng = np.random.default_rng(0)
    from collapse_diffusion.data.sources import load_digits_set
    digits = load_digits_set().images
    for s in studies:
        d = s.files("replace", "vanilla", 1).dir
        train = np.load(d / "train.npz")["images"]
        if s.cfg.train.steps == 20:  # the memorizing budget: near-copies of the training images
            idx = rng.integers(0, len(train), s.n_samples)
            noise = rng.integers(-3, 4, (s.n_samples, *train.shape[1:]))
            images = np.clip(train[idx].astype(int) + noise, 0, 255).astype(np.uint8)
        else:  # generalizing: real digits the model never saw
            seen = {t.tobytes() for t in train}
            images = np.stack([x for x in digits if x.tobytes() not in seen][:s.n_samples])
        (d / "model").mkdir(parents=True)
        (d / "model" / "config.json").write_text("{}")  # training is skipped: the samples are planted
        make_set(images, cycle=1).save(d / "samples.npz")
    run_phase(tmp_path, cfg)
    from collapse_diffusion.analysis.report import write_phase_report
    out = write_phase_report(tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "phase.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {(r["n"], r["steps"]) for r in rows} == {(16, 10), (16, 20), (32, 10), (32, 20)}
    for r in rows:
        if r["steps"] == 20:
            assert r["memorization_rate"] > 0.9 and r["memorization_ci95"][0] > 0.8
        else:
            assert r["memorization_rate"] < 0.1
    text = out.read_text()
    assert "| 16 | 20 |" in text and (tmp_path / "plots" / "phase_memorization_rate.png").exists()


def test_phase_with_an_impossible_size_leaves_nothing(tmp_path, tiny_config, cli):
    from conftest import assert_user_error
    r = cli("phase", tiny_config, "--run-dir", tmp_path / "ph", "--sizes", "16,5000", "--budgets", "2", ok=False)
    assert_user_error(r, "5000", "data.n")
    assert not (tmp_path / "ph").exists()


@pytest.mark.slow
def test_phase_command_end_to_end_and_resume(tmp_path, tiny_config, cli):
    sets = [a for f in FAST for a in ("--set", f)]
    args = ["phase", tiny_config, "--run-dir", tmp_path, "--sizes", "8,16", "--budgets", "2,4", "--cycles", "2", *sets]
    cli(*args)
    first = (tmp_path / "phase.jsonl").read_text()
    assert len(first.splitlines()) == 8
    cells = [json.loads(x) for x in first.splitlines()]
    for column in ("membership_auc", "membership_auc_by_level", "copy_recall", "memorizer_share_frozen", "near_share"):
        assert all(r[column] is not None for r in cells), column  # every cell and cycle: the three quantities
    assert (tmp_path / "phase.md").exists() and (tmp_path / "plots" / "phase_samples.png").exists()
    model = tmp_path / "cells" / "n8_s2" / "shared" / "cycle_01" / "model"
    stamp = model.stat().st_mtime_ns
    (tmp_path / "phase.jsonl").unlink()
    cli(*args)  # resumes: nothing retrained, the same rows
    assert model.stat().st_mtime_ns == stamp and (tmp_path / "phase.jsonl").read_text() == first


@pytest.mark.slow
def test_replicate_seeds_equal_single_seed_runs_whatever_the_workers(tmp_path, tiny_config, cli):
    common = ["--set", "study.cycles=2", "--set", "study.paradigms=[replace]",
              "--set", "study.arms=[{name: vanilla, selector: random}, {name: greedy, selector: greedy}]"]
    cli("run", tiny_config, "--run-dir", tmp_path / "multi", "--seeds", "0,1", "--set", "runtime.workers=2", *common)
    cli("run", tiny_config, "--run-dir", tmp_path / "one", "--set", "seed=1", *common)
    multi = [json.loads(x) for x in (tmp_path / "multi" / "metrics.jsonl").read_text().splitlines()]
    one = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert {r["seed"] for r in multi} == {0, 1} and len(multi) == 2 * len(one)
    assert [r for r in multi if r["seed"] == 1] == one
    assert [r for r in multi if r["seed"] == 0] != one  # the seeds are independent replicates
    report = (tmp_path / "multi" / "report.md").read_text()
    assert "mean over 2 seeds" in report and "range across seeds" in report


def row(paradigm, arm, selector, cycle, seed=0, **kw):
    base = dict(run="r", seed=seed, paradigm=paradigm, arm=arm, selector=selector, cycle=cycle,
                memorization_rate=0.0, memorization_rate_lineage=0.0, generalization_score=100.0,
                entropy_train=300.0, trace_cov_train=1e5, real_share=1.0 if cycle == 1 else 0.0)
    return {**base, **kw}


def test_correlation_counts_the_shared_first_cycle_once():
    rows = [row(p, a, s, 1, entropy_train=350.0, generalization_score=300.0)
            for p in ("replace", "accumulate-subsample") for a, s in (("vanilla", "random"), ("greedy", "greedy"))]
    rows += [row("replace", a, s, c, entropy_train=350.0 - 10 * c * (1 + (a == "vanilla")) + c,
                 generalization_score=300.0 * np.exp(-0.1 * c * (1 + (a == "vanilla"))))
             for a, s in (("vanilla", "random"), ("greedy", "greedy")) for c in (2, 3)]
    assert len(distinct(rows)) == 5
    c = correlation(rows, "entropy_train", "generalization_score", log_y=True)
    assert c["n"] == 5 and c["r"] > 0.95 and c["ci95"][0] < c["r"] < c["ci95"][1]
    every = np.array([(r["entropy_train"], np.log(r["generalization_score"])) for r in distinct(rows)])
    assert c["r"] == pytest.approx(np.corrcoef(every.T)[0, 1])


def _chains(seeds, rise=0.15):
    """Vanilla's copy share rises by ``rise`` a cycle (plus a seed offset), greedy's stays at 0.2."""
    rows = []
    for s in seeds:
        for arm, sel in (("vanilla", "random"), ("greedy", "greedy")):  # cycle 1 is shared
            rows.append(row("replace", arm, sel, 1, seed=s, copy_share=0.2 + 0.01 * s,
                            generalization_score=200, entropy_train=350, mean_nn_train=400.0, fd=5.0))
        for c in (2, 3):
            rows.append(row("replace", "vanilla", "random", c, seed=s, copy_share=0.2 + rise * (c - 1) + 0.01 * s,
                            generalization_score=200 * 0.75 ** (c - 1), entropy_train=350 - 15 * (c - 1) - s,
                            mean_nn_train=400.0 * 0.8 ** (c - 1), fd=10.0))
            rows.append(row("replace", "greedy", "greedy", c, seed=s, copy_share=0.2 + 0.01 * s,
                            generalization_score=190, entropy_train=349, mean_nn_train=390.0, fd=6.0 + s))
    return rows


def test_findings_judge_slopes_over_seeds_and_hold_only_on_three():
    """Copying, contraction and GS are judged on slopes over every cycle with a seed interval; one
    seed makes a claim 'suggested', three can make it 'held'; the selector claims are seed-paired."""
    one = {f.claim: f for f in findings(_chains([0]), "vanilla")}
    rise = next(f for k, f in one.items() if "copying rises over the loop" in k)
    assert rise.held and rise.verdict == "suggested" and "+0.150 a cycle over 1 seed" in rise.evidence
    three = {f.claim: f for f in findings(_chains([0, 1, 2]), "vanilla")}
    rise = next(f for k, f in three.items() if "copying rises over the loop" in k)
    assert rise.verdict == "held" and "over 3 seeds" in rise.evidence and "[95% CI" in rise.evidence
    gs = next(f for k, f in three.items() if "GS falls by at least 30%" in k)
    assert gs.held and "fitted x0.56" in gs.evidence  # 0.75 a cycle over two cycles
    assert next(f for k, f in three.items() if "contracts" in k).verdict == "held"
    slower = next(f for k, f in three.items() if "greedy" in k and "more slowly" in k)
    assert slower.verdict == "held" and "-0.150 a cycle" in slower.evidence
    below = next(f for k, f in three.items() if "greedy" in k and "0.10 below" in k)
    assert below.verdict == "held" and "-0.300" in below.evidence
    flat = {f.claim: f for f in findings(_chains([0, 1, 2], rise=0.01), "vanilla")}
    assert next(f for k, f in flat.items() if "copying rises over the loop" in k).verdict == "not held"


def test_williams_test_matches_its_closed_form_and_is_calibrated():
    from collapse_diffusion.analysis.stats import williams
    assert williams(0.5, 0.5, 0.3, 50)["t"] == 0.0
    w = williams(0.925, 0.913, 0.95, 20)   # two near-equal, strongly related predictors: no difference
    assert w["p"] > 0.3 and w["df"] == 17
    rng = np.random.default_rng(0)
    ps = []
    for _ in range(400):  # H0 true: y correlates equally with x2 and x3
        x2, x3 = rng.normal(size=(2, 30))
        y = x2 + x3 + rng.normal(size=30)
        r = np.corrcoef([y, x2, x3])
        ps.append(williams(r[0, 1], r[0, 2], r[1, 2], 30)["p"])
    assert 0.02 < np.mean(np.array(ps) < 0.05) < 0.09


def test_every_mitigation_arm_is_judged_like_the_papers_selectors():
    """An arm with the random selector and a real anchor is a mitigation, not a second vanilla: it gets
    the selector claims and the collapse-held-off claim against its own cycle 1."""
    rows = []
    for a in ("vanilla", "anchor1"):
        rows.append(row("replace", a, "random", 1, generalization_score=200, entropy_train=350))
        rows.append(row("replace", a, "random", 2, generalization_score=100 if a == "vanilla" else 150,
                        entropy_train=300 if a == "vanilla" else 340))
    by = {f.claim: f for f in findings(rows, "vanilla")}
    off = by["replace/anchor1: GS falls by less than 30% over cycles 1-2 (collapse held off, by the yardstick "
             "vanilla's collapse is judged on)"]
    assert off.held and "fitted x0.75" in off.evidence
    assert by["replace/vanilla: GS falls by at least 30% over cycles 1-2 (fitted on every cycle)"].held  # -50%
    assert by["replace/anchor1: at cycle 2 GS is at least 1.2x vanilla's"].held  # 150 vs 100
    assert not any(k.startswith("replace/vanilla: at cycle") for k in by)


def test_the_baseline_is_named_not_inferred_from_the_order_of_arms():
    """Listing anchor1 (a random-selector arm) before vanilla changes no verdict: the baseline is the
    config's study.baseline, not the first random arm."""
    rows = []
    for a in ("vanilla", "anchor1"):
        rows.append(row("replace", a, "random", 1, generalization_score=200, entropy_train=350))
        rows.append(row("replace", a, "random", 2, generalization_score=100 if a == "vanilla" else 150,
                        entropy_train=300 if a == "vanilla" else 340))
    swapped = rows[2:] + rows[:2]
    verdicts = lambda rs: sorted((f.claim, f.held, f.evidence) for f in findings(rs, "vanilla"))  # noqa: E731
    assert verdicts(rows) == verdicts(swapped)
    assert all("replace/vanilla: at cycle" not in c for c, _, _ in verdicts(swapped))


def test_every_metric_plot_shows_its_data():
    """Rates get a 0-based axis; other metrics (e.g. the entropy of G_n, ~300 nats) keep theirs."""
    import matplotlib
    matplotlib.use("Agg")
    from collapse_diffusion.analysis.results import METRICS, figure_metric
    rows = [row("replace", a, s, c, entropy_generated=300.0 - c, fd=float(c), memorization_rate_lineage=0.0,
                relative_copy_share=0.1, duplicate_share=0.0, memorization_rate_real=0.0, mean_nn_train=400.0,
                entropy_space="pixel")
            for a, s in (("vanilla", "random"), ("greedy", "greedy")) for c in (1, 2, 3)]
    for key, ci, label in METRICS:
        if all(r.get(key) is not None for r in rows):
            lo, hi = figure_metric(rows, key, ci, label).axes[0].get_ylim()
            values = [r[key] for r in rows]
            assert lo <= min(values) and max(values) <= hi, key
            if key in ("memorization_rate", "memorization_rate_lineage"):
                assert hi >= 0.1  # a flat zero is drawn on 0..0.1, not -0.04..0.04


def test_cells_table_says_memorization_and_copying_apart_by_rules_fixed_in_advance():
    """A cell memorizes when every seed's AUC interval lies above 0.6; it copies when every seed's
    calibrated copy share interval lies above 0.05, and reads "no copying" when every one lies below."""
    from collapse_diffusion.analysis.phase import cells_table

    def row(n, seed, auc_ci, cal_ci, cal=0.5):
        return {"n": n, "steps": 1000, "seed": seed, "cycle": 1, "membership_auc": sum(auc_ci) / 2,
                "membership_auc_ci95": auc_ci, "membership_auc_by_level": {"0.97": sum(auc_ci) / 2},
                "copy_share": cal, "copy_share_calibrated": cal, "copy_share_calibrated_ci95": cal_ci,
                "memorizer_share_frozen": 0.0}
    rows = [row(16, 0, [0.9, 1.0], [0.3, 0.5]), row(16, 1, [0.8, 0.95], [0.2, 0.4]),
            row(64, 0, [0.9, 1.0], [0.0, 0.02], 0.0), row(512, 0, [0.5, 0.62], [0.0, 0.01], 0.0),
            row(128, 0, [0.7, 0.8], [0.01, 0.3])]
    table = {line.split("|")[1].strip(): line for line in cells_table(rows)[2:]}
    assert "memorization seen" in table["16"] and "copying seen" in table["16"] and "| 2 |" in table["16"]
    assert "memorization seen" in table["64"] and "no copying" in table["64"]
    assert "not shown | no copying" in table["512"]
    assert "memorization seen | not shown" in table["128"]
    rows[0]["copy_share_calibrated_ci95"] = None
    assert "cannot tell" in {line.split("|")[1].strip(): line for line in cells_table(rows)[2:]}["16"]


def test_holdout_effect_selects_with_and_without_the_holdout():
    from collapse_diffusion.experiments.holdout import effect_table, holdout_effect
    rng = np.random.default_rng(0)
    samples = make_set(rng.integers(0, 256, (200, 1, 4, 4), dtype=np.uint8), cycle=1)
    rows = holdout_effect(samples, n=16, h=16, trials=3)
    assert len(rows) == 9 and {r["candidates"] for r in rows} == {32}
    assert {r["candidates_holdout"] for r in rows} == {64}
    assert all(r["entropy"] is not None and r["spacing_holdout"] > 0 for r in rows)
    assert len(effect_table(rows)) == 5


def test_slope_power_is_its_level_under_no_rise_and_grows_with_the_units():
    from collapse_diffusion.analysis.stats import slope_power
    assert slope_power(64, 0.0, sims=4000) <= 0.05  # one-sided 2.5% test (with ties at 0: at most)
    assert slope_power(32, 0.05) < slope_power(256, 0.05) and slope_power(256, 0.10) > 0.95
