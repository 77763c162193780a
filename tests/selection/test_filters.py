"""Mitigations (docs/method.md §9): entropy-score pruning, the memorization filter, real anchors,
self-verification and the simulated provenance detector."""
import numpy as np
import pytest
from test_selectors import clustered

from collapse_diffusion.data.images import ImageSet, make_set
from collapse_diffusion.loop.experiment import ExperimentConfig, StudyConfig
from collapse_diffusion.measure.entropy import kl_entropy
from collapse_diffusion.measure.memorization import clopper_pearson, nn_report
from collapse_diffusion.selection.filters import detector_flags, keep_or_top_up
from collapse_diffusion.selection.paradigms import next_training_set
from collapse_diffusion.selection.registry import ArmConfig, ProvenanceConfig, select
from collapse_diffusion.selection.selectors import select_klprune


def klprune_reference(x, n, ref=None):
    """The same rule from a full distance matrix: remove the point nearest to its nearest remaining
    neighbour (or to ref); a tie goes to the one whose second-nearest neighbour is closer."""
    x = x.astype(np.float64)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    fixed = (np.sqrt(((x[:, None] - ref[None]) ** 2).sum(-1)).min(1) if ref is not None else np.full(len(x), np.inf))
    alive = np.ones(len(x), bool)
    while alive.sum() > n:
        near = np.where(alive[None], d, np.inf)
        score = np.where(alive, np.minimum(near.min(1), fixed), np.inf)
        ties = np.flatnonzero(score <= score.min() * (1 + 1e-5) + 1e-6)
        second = [np.sort(np.append(near[i], fixed[i]))[1] for i in ties]
        alive[ties[int(np.argmin(second))]] = False
    return np.flatnonzero(alive)


@pytest.mark.parametrize("seed,with_ref", [(0, False), (1, False), (2, True), (3, True)])
def test_klprune_matches_brute_force(seed, with_ref):
    rng = np.random.default_rng(seed)
    x = (rng.random((40, 6)) * 100).astype(np.float32)
    x[5] = x[6]  # an exact duplicate: one of the pair must go first
    ref = (rng.random((8, 6)) * 100).astype(np.float32) if with_ref else None
    got = select_klprune(x, 15, ref)
    assert np.array_equal(got, klprune_reference(x, 15, ref))
    assert not {5, 6} <= set(got.tolist())


def test_klprune_unique_deterministic_and_raises_entropy():
    x = clustered(1)
    a = select("klprune", x, 150, np.random.default_rng(0))
    assert len(set(a.tolist())) == 150 and np.array_equal(a, select("klprune", x, 150, np.random.default_rng(5)))
    h_rand = kl_entropy(x[select("random", x, 150, np.random.default_rng(0))]).nats
    assert kl_entropy(x[a]).nats > h_rand + 2


def test_detector_matches_its_configured_rates():
    """On a large pool the measured recall and false-positive rate fall inside their Clopper-Pearson
    intervals around the configured values; the verdict on an image never changes."""
    prov = np.concatenate([np.stack([np.zeros(6000, int), np.arange(6000)], 1),
                           np.stack([np.repeat([1, 2, 3], 2000), np.tile(np.arange(2000), 3)], 1)])
    flags = detector_flags(prov, 0.7, 0.1, seed=11)
    gen = prov[:, 0] > 0
    for k, n, target in ((flags[gen].sum(), gen.sum(), 0.7), (flags[~gen].sum(), (~gen).sum(), 0.1)):
        lo, hi = clopper_pearson(int(k), int(n), 0.999)
        assert lo <= target <= hi
    assert np.array_equal(flags[::7], detector_flags(prov[::7], 0.7, 0.1, seed=11))
    assert (detector_flags(prov, 0.9, 0.1, seed=11) >= flags).all()  # higher recall: a superset
    assert not detector_flags(prov, 1.0, 0.0, seed=1)[~gen].any() and detector_flags(prov, 1.0, 0.0, seed=1)[gen].all()


def test_top_up_takes_back_the_least_bad():
    keep = np.array([True, False, False, True, False])
    idx, back = keep_or_top_up(keep, np.array([0, 3.0, 1.0, 0, 2.0]), 4)
    assert back == 2 and idx.tolist() == [0, 2, 3, 4]
    assert keep_or_top_up(keep, np.zeros(5), 2) == (pytest.approx([0, 3]), 0)


N = 16


def real_and_gens(cycles, rng):
    real = make_set(rng.integers(0, 255, (N + 24, 1, 4, 4)).astype(np.uint8), cycle=0)
    gens = [make_set(rng.integers(0, 255, (2 * N, 1, 4, 4)).astype(np.uint8), cycle=c) for c in range(1, cycles + 1)]
    return real, gens


@pytest.mark.parametrize("paradigm", ["replace", "accumulate-subsample", "fresh"])
@pytest.mark.parametrize("selector", ["random", "greedy"])
def test_real_anchor_keeps_exactly_m_real_images(paradigm, selector):
    rng = np.random.default_rng(0)
    real, gens = real_and_gens(4, rng)
    arm = ArmConfig(name="a", selector=selector, real_anchor=3)
    choose = lambda pool, size, r: select(selector, pool.flat(), size, r)  # noqa: E731
    current = real.take(np.arange(N))
    for cycle in range(1, 5):
        current, _ = next_training_set(paradigm, arm, choose, real, current, gens[:cycle], N, cycle, 2.0, 0.25, rng)
        assert len(current) == N
        anchors = current.provenance[:3]
        assert (anchors == real.provenance[:3]).all()  # the first m images of R, every cycle
        real_rows = current.provenance[:, 0] == 0
        if paradigm == "replace":
            assert real_rows.sum() == 3
        assert len({tuple(p) for p in current.provenance.tolist()}) == N  # no image twice


def study_with_planted_pool(tmp_path, arm):
    """A run directory whose cycle 1 trained on D_1 and generated a pool of planted copies of D_1 and
    fresh images, with its evaluation's nn.npz, as the memorization filter reads it."""
    from collapse_diffusion.loop.study import Study
    rng = np.random.default_rng(4)
    train = make_set(rng.integers(0, 256, (N, 1, 8, 8)).astype(np.uint8))
    copies = np.clip(train.images.astype(int) + rng.integers(-2, 3, train.images.shape), 0, 255).astype(np.uint8)
    fresh = rng.integers(0, 256, (N, 1, 8, 8)).astype(np.uint8)
    pool = make_set(np.concatenate([copies, fresh]), cycle=1)
    cfg = ExperimentConfig(study=StudyConfig(arms=(arm,)))
    study = Study(tmp_path, cfg)
    f = study.files("replace", arm.name, 1)
    f.dir.mkdir(parents=True)
    train.save(f.train)
    _, arrays = nn_report(pool.flat(), train.flat(), 1 / 3)
    np.savez(f.nn, **arrays)
    return study, pool


@pytest.mark.parametrize("against", ["current", "all"])
def test_memfilter_drops_planted_copies_and_keeps_fresh(tmp_path, against):
    from collapse_diffusion.loop.stages import arm_inputs
    from collapse_diffusion.selection.pipeline import Chooser
    arm = ArmConfig(name="mf", selector="memfilter", base="random", filter_against=against)
    study, pool = study_with_planted_pool(tmp_path, arm)
    chooser = Chooser(arm_inputs(study, "replace", "mf", 1, None))
    chosen = chooser(pool, N, np.random.default_rng(0))
    assert len(set(chosen.tolist())) == N and (chosen >= N).all()  # the N fresh images, no copy
    assert chooser.report.memfilter_dropped == N and chooser.report.topped_up == 0
    # asked for more than survive: the least suspect copies top the set up, counted
    more = chooser(pool, N + 4, np.random.default_rng(0))
    assert len(more) == N + 4 and chooser.report.topped_up == 4


def test_provenance_filter_through_the_chooser(tmp_path):
    from collapse_diffusion.loop.stages import arm_inputs
    from collapse_diffusion.selection.pipeline import Chooser
    arm = ArmConfig(name="pf", selector="random", provenance=ProvenanceConfig(recall=1.0, false_positive=0.0))
    study, pool = study_with_planted_pool(tmp_path, arm)
    real = make_set(np.zeros((N, 1, 8, 8), np.uint8))
    both = ImageSet.concat([real, pool])
    chooser = Chooser(arm_inputs(study, "accumulate-subsample", "pf", 1, None))
    chosen = chooser(both, N, np.random.default_rng(0))
    assert (both.provenance[chosen, 0] == 0).all()  # recall 1: trained on real data only
    assert chooser.report.detector_recall == 1.0 and chooser.report.detector_false_positive == 0.0


@pytest.mark.slow
def test_selfverify_scores_own_training_images_as_more_confident(tmp_path):
    """A model trained on 16 digits denoises them better than uniform noise images."""
    from collapse_diffusion.core.config import DataConfig, DiffusionConfig, RuntimeConfig, TrainConfig
    from collapse_diffusion.data.sources import load_real
    from collapse_diffusion.diffusion.train import train
    from collapse_diffusion.selection.verify import denoising_scores
    real = load_real(DataConfig(n=16), 0)
    model = train(real.images, TrainConfig(steps=300, batch_size=16, warmup_steps=10, lr=3e-3),
                  DiffusionConfig(), "digits-tiny", tmp_path / "m", 0, runtime=RuntimeConfig("cpu"))
    noise = np.random.default_rng(0).integers(0, 256, real.images.shape).astype(np.uint8)
    s_own = denoising_scores(model, real.images, DiffusionConfig(), 8, 2, seed=1, device="cpu")
    s_noise = denoising_scores(model, noise, DiffusionConfig(), 8, 2, seed=1, device="cpu")
    assert s_own.max() < s_noise.min()
    assert np.array_equal(s_own, denoising_scores(model, real.images, DiffusionConfig(), 8, 2, seed=1, device="cpu"))


@pytest.mark.slow
def test_mitigations_study_end_to_end_tiny(tmp_path, cli, monkeypatch):
    """configs/digits_mitigations.yaml at tiny budgets: every arm of both paradigms runs two cycles,
    selection records reach metrics.jsonl, and the report ranks the arms."""
    import json

    from conftest import ROOT
    fast = ["data.n=16", "train.steps=3", "train.batch_size=8", "train.warmup_steps=1", "sample.steps=2",
            "eval.n_generated=40", "eval.membership_holdout=0", "eval.probe_draws=1", "eval.planted=64",
            "eval.classifier_steps=10", "eval.bootstrap=5", "study.cycles=2",
            "study.arms.selfverify.verify_timesteps=2", "study.arms.selfverify.verify_noise=1", "runtime.workers=1"]
    run = tmp_path / "mit"
    cli("run", ROOT / "configs" / "digits_mitigations.yaml", "--run-dir", run, *[a for s in fast for a in ("--set", s)])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 10 * 2
    second = {(r["paradigm"], r["arm"]): r for r in rows if r["cycle"] == 2}
    assert second[("replace", "memfilter")]["memfilter_dropped"] is not None
    anchor2 = second[("replace", "anchor2")]
    assert anchor2["real_anchors"] == 2 and anchor2["real_share"] == 2 / 16
    assert second[("accumulate-subsample", "provenance")]["detector_recall"] is not None
    assert second[("replace", "selfverify")]["verify_dropped"] == 16
    # the pool is the r*N = 32 candidates, never the extra evaluation images (eval.n_generated = 40)
    assert all(r["selection_pool"] == 32 for (p, _), r in second.items() if p == "replace")
    assert second[("accumulate-subsample", "greedy")]["selection_pool"] == 16 + 32
    import numpy as np
    with np.load(run / "replace" / "greedy" / "cycle_02" / "train.npz") as z:
        assert z["provenance"][:, 1].max() < 32
    report = (run / "report.md").read_text()
    assert "## Ranking of arms at the last cycle" in report and "| memfilter_all |" in report
