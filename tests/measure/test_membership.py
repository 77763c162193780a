"""The membership test of memorization (docs/method.md §7): its AUC equals scikit-learn's, its
interval stays honest at 1, and on closed-form denoisers, on a real D_1 and on a contracted D_n, it
reads what they are: the exact memorizer memorizes, a Gaussian fitted to the distribution does not,
and kernel smoothings sit between them in order."""
import numpy as np
import pytest

from collapse_diffusion.core.config import DataConfig, DiffusionConfig
from collapse_diffusion.data.sources import load_real
from collapse_diffusion.diffusion.process import make_scheduler
from collapse_diffusion.experiments.groundtruth import CONTRACTED, contracted_sets, synthetic_samples
from collapse_diffusion.measure.membership import SUMMARY, auc, auc_interval, membership_of, tpr_at
from collapse_diffusion.measure.probe import gaussian, memorizer, smoothed_memorizer


@pytest.fixture(scope="module")
def sched():
    return make_scheduler(DiffusionConfig())


@pytest.fixture(scope="module")
def loop():
    """D_1..D_5 of a synthetic loop that contracts D_n as a study's vanilla chain does, with their
    exchangeable non-members, and each cycle's generator (for a Gaussian fitted to the distribution)."""
    both = load_real(DataConfig(n=32), 0, n=32 + 512)
    real, pool = both.take(np.arange(32)), both.take(np.arange(32, len(both)))
    return real, pool, contracted_sets(real, pool, seed=0)


def test_auc_matches_scikit_learn_with_ties_and_its_interval_is_honest_at_one():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(0)
    pos, neg = np.round(rng.normal(0.5, 1, 40), 1), np.round(rng.normal(0, 1, 70), 1)  # rounding makes ties
    a, var = auc(pos, neg)
    assert a == pytest.approx(roc_auc_score(np.r_[np.ones(40), np.zeros(70)], np.r_[pos, neg]), abs=1e-12)
    assert var > 0
    lo, hi = auc_interval(*auc(np.arange(10) + 100.0, np.arange(64.0)), 10, 64)
    assert hi == 1.0 and 0.6 < lo < 0.8  # every pair ordered: the interval still has width (10 members)
    assert tpr_at(np.arange(10) + 100.0, np.arange(64.0)) == 1.0
    assert tpr_at(np.arange(200.0), np.arange(200.0)) == pytest.approx(0.01, abs=0.006)


def test_exact_memorizer_memorizes_and_a_gaussian_of_the_distribution_does_not_on_real_digits(sched, loop):
    real, pool, sets = loop
    members, others = sets[0]
    mem = membership_of(memorizer(members.images, sched), sched, members.images, others.images, seed=0)
    assert mem.auc >= 0.99 and mem.twin_share == 0 and mem.n_nonmembers == 64
    assert set(mem.auc_by_level) == {"0.99", "0.97", "0.90", "0.66", "0.40", "0.08"}
    rest = pool.images[64:]  # a Gaussian fitted to the distribution (held-out real digits), not to D_1
    gen = membership_of(gaussian(rest, sched), sched, members.images, others.images, seed=0)
    assert abs(gen.auc - 0.5) <= 0.1


def test_on_a_contracted_training_set_memorizer_and_generalizer_still_read_apart(sched, loop):
    """Cycle 5 of the contracting loop (median 1-NN spacing ~50 px-L2, as the vanilla chains reach):
    the exact memorizer of D_5 reads AUC >= 0.9 at the summary level on the non-members without a
    near-twin among the members, a Gaussian fitted to the cycle's distribution within 0.1 of 1/2."""
    from collapse_diffusion.experiments.groundtruth import _spacing
    real, pool, sets = loop
    members, others = sets[4]
    assert _spacing(members.flat().astype(float)) < 120
    mem = membership_of(memorizer(members.images, sched), sched, members.images, others.images, seed=0)
    assert mem.level == SUMMARY and mem.auc_untwinned >= 0.9 and 0 < mem.twin_share < 0.5
    population = synthetic_samples(sets[3][0], CONTRACTED.copy_share[4], CONTRACTED.precision, 2048,
                                   np.random.default_rng(7), 5)[0]
    gen = membership_of(gaussian(population.images, sched), sched, members.images, others.images, seed=0)
    assert abs(gen.auc - 0.5) <= 0.1


def test_kernel_smoothings_order_between_memorizer_and_generalizer(sched, loop):
    """A mixture of Gaussians around D_n's images (width 0 to 512 grey levels) memorizes less as its
    width grows, at the summary level, on D_1 and on D_5, down to within 0.1 of 1/2."""
    for members, others in (loop[2][0], loop[2][4]):
        aucs = [membership_of(smoothed_memorizer(members.images, sched, s), sched, members.images, others.images,
                              seed=0).auc for s in (0.0, 32.0, 128.0, 256.0, 512.0)]
        assert all(a >= b - 0.01 for a, b in zip(aucs, aucs[1:])) and aucs[0] >= 0.9 and abs(aucs[-1] - 0.5) < 0.1


def test_too_few_images_read_as_not_measured(sched):
    x = np.zeros((1, 1, 8, 8), np.uint8)
    r = membership_of(memorizer(x, sched), sched, x, x, seed=0)
    assert r.auc is None and "at least 2" in r.reason


@pytest.mark.slow
def test_a_trained_model_with_four_times_the_steps_memorizes_a_contracted_set_more(tmp_path, loop):
    """On D_5 of the contracting loop, the default model trained 4x longer fits its members better
    against the exchangeable non-members: the membership AUC at the summary level rises."""
    import dataclasses
    from pathlib import Path

    from collapse_diffusion.core.config import TrainConfig
    from collapse_diffusion.diffusion.train import train
    from collapse_diffusion.loop.experiment import load_config
    from collapse_diffusion.measure.membership import membership
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "digits.yaml")  # the default study's model
    members, others = loop[2][4]
    aucs = []
    for steps in (100, 400):
        tc = dataclasses.replace(cfg.train, steps=steps, checkpoint_every=10_000)
        assert isinstance(tc, TrainConfig)
        model = train(members.images, tc, cfg.diffusion, cfg.model.preset, tmp_path / f"s{steps}", seed=0,
                      progress=False)
        aucs.append(membership(model, members.images, others.images, cfg.diffusion, seed=0).auc)
    assert aucs[1] > aucs[0], aucs
