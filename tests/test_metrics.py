import numpy as np

from collapse_diffusion.data import make_set
from collapse_diffusion.evaluate import set_stats
from collapse_diffusion.metrics import bootstrap_ci, nn_report, trace_cov


def images(rng, n, d=64):
    return (rng.random((n, d)) * 255).astype(np.float32)


def test_planted_copies_flagged():
    rng = np.random.default_rng(0)
    train = images(rng, 300)
    fresh = images(rng, 150)
    exact = train[:30].copy()
    noisy = train[30:60] + rng.normal(0, 2.0, (30, 64)).astype(np.float32)
    gen = np.concatenate([exact, noisy, fresh])
    rep = nn_report(gen, train, n_boot=2000, seed=1)
    flags = rep["ratios"] < 1 / 3
    assert flags[:60].all() and not flags[60:].any()
    assert rep["memorization_rate"] == 60 / 210
    lo, hi = rep["memorization_ci95"]
    assert lo < 60 / 210 < hi and hi - lo < 0.2
    assert rep["exact_copies"] == 30
    assert (rep["nn_index"][:30, 0] == np.arange(30)).all()
    assert rep["n_generated"] == 210 and rep["n_reference"] == 300


def test_fresh_samples_not_flagged_and_gs():
    rng = np.random.default_rng(1)
    train, gen = images(rng, 200), images(rng, 100)
    rep = nn_report(gen, train, seed=0)
    assert rep["memorization_rate"] == 0.0
    d = np.sqrt(((gen[:, None] - train[None]) ** 2).sum(-1)).min(1)
    assert np.isclose(rep["generalization_score"], d.mean(), rtol=1e-5)


def test_bootstrap_and_set_stats():
    flags = np.array([1.0] * 20 + [0.0] * 80)
    lo, hi = bootstrap_ci(flags, 1000, 0)
    assert lo < 0.2 < hi
    x = np.random.default_rng(0).normal(size=(50, 3))
    assert np.isclose(trace_cov(x), np.trace(np.cov(x.T)))
    imgs = np.random.default_rng(1).integers(0, 256, (50, 1, 4, 4)).astype(np.uint8)
    f = imgs.reshape(50, -1).astype(np.float64)
    d = np.sqrt(((f[:, None] - f[None]) ** 2).sum(-1)) + np.eye(50) * 1e9
    s = set_stats(make_set(imgs), k=1)
    assert np.isclose(s["mean_nn_distance"], d.min(1).mean(), rtol=1e-5) and s["n"] == 50
    assert np.isclose(s["trace_cov"], np.trace(np.cov(f.T)))
