import numpy as np
import pytest

from collapse_diffusion.data.images import make_set
from collapse_diffusion.measure.evaluate import sample_roots, set_stats
from collapse_diffusion.measure.memorization import clopper_pearson, nn_report, trace_cov


def images(rng, n, d=64):
    return (rng.random((n, d)) * 255).astype(np.float32)


def test_planted_copies_flagged():
    rng = np.random.default_rng(0)
    train = images(rng, 300)
    fresh = images(rng, 150)
    exact = train[:30].copy()
    noisy = train[30:60] + rng.normal(0, 2.0, (30, 64)).astype(np.float32)
    gen = np.concatenate([exact, noisy, fresh])
    rep, arr = nn_report(gen, train)
    flags = arr["ratios"] < 1 / 3
    assert flags[:60].all() and not flags[60:].any()
    assert rep.memorization_rate == 60 / 210
    lo, hi = rep.memorization_ci95
    assert lo < 60 / 210 < hi and hi - lo < 0.2
    assert rep.exact_copies == 30
    assert (arr["nn_index"][:30, 0] == np.arange(30)).all()
    assert rep.n_generated == 210 and rep.n_reference == 300
    # distinct training images: the lineage-aware rule and the relative measure agree with the plain rule
    assert rep.memorization_rate_lineage == rep.memorization_rate
    assert rep.relative_copy_share == pytest.approx(60 / 210) and rep.duplicate_share == 0.0


def test_fresh_samples_not_flagged_and_gs():
    rng = np.random.default_rng(1)
    train, gen = images(rng, 200), images(rng, 100)
    rep, arr = nn_report(gen, train)
    assert rep.memorization_rate == 0.0 and rep.memorization_rate_lineage == 0.0
    d = np.sqrt(((gen[:, None] - train[None]) ** 2).sum(-1)).min(1)
    assert np.isclose(rep.generalization_score, d.mean(), rtol=1e-5)


def test_clopper_pearson_exact_and_honest_at_the_edges():
    from scipy.stats import binomtest
    for k, n in ((0, 64), (64, 64), (7, 50), (1, 3)):
        ref = binomtest(k, n).proportion_ci(0.95, method="exact")
        assert clopper_pearson(k, n) == pytest.approx((ref.low, ref.high), abs=1e-9)
    lo, hi = clopper_pearson(0, 64)
    assert lo == 0.0 and 0.05 < hi < 0.06  # 0 of 64 does not mean a rate of exactly 0


def clustered(rng, centres=20, per=4, spread=40.0, d=64):
    """A planted clustered training set: well separated centres, a few members each."""
    c = rng.random((centres, d)) * 2000
    members = c[:, None] + rng.normal(0, spread, (centres, per, d))
    return members.reshape(-1, d).astype(np.float32)


def test_copies_of_duplicated_training_images_need_the_lineage_rule():
    """A training set whose images come in near-identical pairs (two copies of one ancestor): an
    exact copy of one of them has the other as NN2, so the plain rule misses it; the lineage-aware
    rule, told the pairs share a root, flags it. Fresh points drawn inside the clusters are not copies."""
    rng = np.random.default_rng(2)
    ancestors = images(rng, 40) * 8
    train = np.concatenate([ancestors + rng.normal(0, 3, ancestors.shape),
                            ancestors + rng.normal(0, 3, ancestors.shape)])
    roots = np.stack([np.zeros(80, int), np.concatenate([np.arange(40), np.arange(40)])], 1)
    copies = train[:40] + rng.normal(0, 3, (40, 64))
    fresh = ancestors + rng.normal(0, 400, ancestors.shape)
    gen = np.concatenate([copies, fresh]).astype(np.float32)
    rep, arr = nn_report(gen, train.astype(np.float32), train_roots=roots)
    plain, lineage = arr["ratios"] < 1 / 3, arr["ratios_lineage"] < 1 / 3
    assert plain[:40].mean() < 0.2                    # masked by the duplicate
    assert lineage[:40].all() and not lineage[40:].any()
    assert rep.duplicate_share == 1.0
    # a copy inherits its ancestor's root; a fresh sample starts its own lineage
    gs = make_set(gen.reshape(80, 1, 8, 8).clip(0, 255).astype(np.uint8), cycle=2)
    r = sample_roots(arr, gs, roots, 1 / 3)
    assert (r[:40, 1] == roots[arr["nn_index"][:40, 0], 1]).all() and (r[40:] == gs.provenance[40:]).all()


def test_relative_measure_tells_copying_from_contraction():
    """Planted clustered set: exact and noisy copies are < 1/3 of their image's own spacing; fresh points
    drawn inside the clusters (a contracted, not copied, distribution) are not."""
    rng = np.random.default_rng(3)
    train = clustered(rng)
    exact, noisy = train[:20].copy(), train[20:40] + rng.normal(0, 2.0, (20, 64)).astype(np.float32)
    centres = train.reshape(20, 4, 64).mean(1)
    fresh = (centres + rng.normal(0, 40.0, centres.shape)).astype(np.float32)
    rep, arr = nn_report(np.concatenate([exact, noisy, fresh]), train)
    assert rep.relative_copy_share == pytest.approx(40 / 60)
    fresh_only, _ = nn_report(fresh, train)
    assert fresh_only.relative_copy_share == 0.0 and fresh_only.relative_nn_median > 1 / 3


def test_set_stats_and_trace():
    x = np.random.default_rng(0).normal(size=(50, 3))
    assert np.isclose(trace_cov(x), np.trace(np.cov(x.T)))
    imgs = np.random.default_rng(1).integers(0, 256, (50, 1, 4, 4)).astype(np.uint8)
    f = imgs.reshape(50, -1).astype(np.float64)
    d = np.sqrt(((f[:, None] - f[None]) ** 2).sum(-1)) + np.eye(50) * 1e9
    s = set_stats(make_set(imgs), k=1)
    assert np.isclose(s.mean_nn_distance, d.min(1).mean(), rtol=1e-5) and s.n == 50
    assert np.isclose(s.trace_cov, np.trace(np.cov(f.T)))
