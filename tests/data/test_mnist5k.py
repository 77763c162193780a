"""Real MNIST offline (data.source=mnist5k): its study configs validate and a tiny run reaches its report."""
import json

import numpy as np
import pytest
from conftest import ROOT

from collapse_diffusion.experiments import grey as sampler_drift


@pytest.mark.parametrize("name", ["mnist5k.yaml", "mnist5k_long.yaml", "mnist5k_gpu.yaml"])
def test_mnist5k_configs_validate(name):
    from collapse_diffusion.diffusion.model import check_fits
    from collapse_diffusion.loop.experiment import load_config
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.data.source == "mnist5k" and cfg.study.cycles >= 5
    assert set(cfg.study.paradigms) == {"replace", "accumulate-subsample"}
    assert [a.selector for a in cfg.study.arms] == ["random", "greedy", "tdf"]
    check_fits(cfg.model.preset, cfg.data.resolution or 28)
    assert cfg.eval.n_generated >= max(cfg.study.oversample * cfg.data.n, 4 * 128)  # FD: images >> 128 features
    assert cfg.data.n in cfg.phase.n and cfg.train.steps in cfg.phase.steps  # the config sits on its phase grid


@pytest.mark.slow
def test_mnist5k_tiny_study_end_to_end(tmp_path, cli, monkeypatch):
    """configs/mnist5k.yaml at tiny budgets: two cycles of both paradigms on real 28x28 MNIST, to a report
    whose FD is over the classifier trained on the 5,000 digits."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = tmp_path / "run"
    fast = ["data.n=8", "train.steps=4", "train.batch_size=8", "train.warmup_steps=1", "train.checkpoint_every=2",
            "sample.steps=2", "eval.n_generated=32", "eval.membership_holdout=8", "eval.membership_draws=2",
            "eval.probe_draws=1", "eval.planted=64", "eval.bootstrap=10", "eval.classifier_steps=10",
            "eval.fid_real=200", "study.cycles=2", "runtime.workers=1"]
    cli("run", ROOT / "configs" / "mnist5k.yaml", "--run-dir", run, *[a for s in fast for a in ("--set", s)])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 3 * 2 and {r["preset"] for r in rows} == {"mnist-tiny"}
    assert {r["fd_label"] for r in rows} == {"FD (classifier-mnist5k)"}
    metrics = json.loads((run / "shared" / "cycle_01" / "metrics.json").read_text())
    assert metrics["fd"]["n_real"] == 200 and 0 <= metrics["fd"]["classifier_accuracy"] <= 1
    real = np.load(run / "real.npz")
    # D_1 (8 images of 8 classes), then the membership test's 8 real non-members
    assert real["images"].shape == (16, 1, 28, 28) and len(set(real["labels"][:8].tolist())) == 8
    assert (run / "report.md").exists() and (run / "plots" / "replace_samples.png").exists()
    grey = sampler_drift.run_rows(run)                 # the grey count per cycle, read through RunLayout
    assert [(g["paradigm"], g["arm"], g["cycle"]) for g in grey] == [("shared", "*", 1)] + [
        (p, a, 2) for p in ("replace", "accumulate-subsample") for a in ("vanilla", "greedy", "tdf")]
    assert all(0 <= g["grey"] <= g["n"] and g["n"] >= 32 for g in grey)
    assert sampler_drift.run_rows(tmp_path / "missing") == []


def test_sampler_drift_counts_grey_backgrounds():
    """the grey-share measure (experiments/grey.py): a digit on black is not grey, the same digit on a background of
    40 is, a grey patch inside the border does not count, and the real 5,000 digits have none."""
    from collapse_diffusion.data.sources import load_mnist5k
    drift = sampler_drift
    black = np.zeros((3, 1, 28, 28), np.uint8)
    black[:, :, 8:20, 12:16] = 255                      # a stroke
    grey = black.copy()
    grey[1][grey[1] == 0] = 40                          # image 1: grey background
    grey[2, :, 4:24, 4:24] = 90                         # image 2: a patch that stays inside the border
    assert drift.grey_share(black)[0] == 0
    assert drift.grey_share(grey)[0] == 1
    assert drift.grey_share(load_mnist5k().images)[0] == 0
