import numpy as np
import pytest

from collapse_diffusion.data.images import ImageSet, make_set
from collapse_diffusion.selection.paradigms import equal_shares, next_training_set, real_pool_size
from collapse_diffusion.selection.registry import ArmConfig

N, R = 12, 2.0


def setup(cycle):
    rng = np.random.default_rng(0)
    real = make_set(rng.integers(0, 255, (N + 10, 1, 4, 4)).astype(np.uint8), cycle=0)
    gens = [make_set(rng.integers(0, 255, (int(R * N), 1, 4, 4)).astype(np.uint8), cycle=c)
            for c in range(1, cycle + 1)]
    return real, gens


def first_n(pool, size, rng):
    return np.arange(size)


@pytest.mark.parametrize("cycle", [1, 2, 3])
def test_replace_and_vanilla_rn(cycle):
    real, gens = setup(cycle)
    d, _ = next_training_set("replace", ArmConfig(selector="random"), first_n, real, real.take(np.arange(N)), gens,
                             N, cycle, R, 0.2, np.random.default_rng(0))
    assert len(d) == N and d.real_share == 0 and (d.provenance[:, 0] == cycle).all()
    d, _ = next_training_set("replace", ArmConfig(selector="all"), first_n, real, real.take(np.arange(N)), gens,
                             N, cycle, R, 0.2, np.random.default_rng(0))
    assert len(d) == R * N


@pytest.mark.parametrize("cycle", [1, 2, 3, 5])
def test_accumulate_subsample_equal_shares(cycle):
    real, gens = setup(cycle)
    d, report = next_training_set("accumulate-subsample", ArmConfig(selector="random"), first_n, real,
                                  real.take(np.arange(N)), gens, N, cycle, R, 0.2, np.random.default_rng(0))
    assert len(d) == N
    # nothing chose (equal shares): the record counts the pool the paradigm drew from
    made = sum(len(g) for g in gens)
    assert (report.pool, report.pool_generated, report.pool_real, report.size) == (made + N, made, N, N)
    counts = np.bincount(d.provenance[:, 0], minlength=cycle + 1)
    assert counts.tolist() == equal_shares(N, cycle + 1)
    assert d.real_share == pytest.approx(equal_shares(N, cycle + 1)[0] / N)
    assert abs(d.real_share - 1 / (cycle + 1)) <= 1 / N
    assert (d.provenance[d.provenance[:, 0] == 0, 1] < N).all()  # real images come from R = D_1
    assert len({tuple(p) for p in d.provenance}) == N


def test_accumulate_subsample_selector_uses_whole_pool():
    real, gens = setup(2)
    d, _ = next_training_set("accumulate-subsample", ArmConfig(selector="greedy"), first_n, real,
                             real.take(np.arange(N)), gens, N, 2, R, 0.2, np.random.default_rng(0))
    assert len(d) == N and d.real_share == 1.0  # first_n picks the pool's first rows: R


def test_accumulate_grows_and_fresh_uses_unseen_real():
    real, gens = setup(2)
    cur = real.take(np.arange(N))
    rng = np.random.default_rng(0)
    d, _ = next_training_set("accumulate", ArmConfig(), first_n, real, cur, gens, N, 2, R, 0.2, rng)
    assert len(d) == 2 * N and d.real_share == 0.5
    f, _ = next_training_set("fresh", ArmConfig(), first_n, real, cur, gens, N, 2, R, 0.25, np.random.default_rng(0))
    fresh_ids = f.provenance[f.provenance[:, 0] == 0, 1]
    assert len(f) == N and len(fresh_ids) == 3 and (fresh_ids >= N + 3).all()  # cycle 2 skips cycle 1's 3
    assert real_pool_size(N, 3, ("fresh",), 0.25) == N + 6 and real_pool_size(N, 3, ("replace",), 0.25) == N


def test_feature_cache_extracts_each_image_once(tmp_path):
    """Feature-space selection over a growing pool extracts only the images not seen before."""
    from collapse_diffusion.loop.experiment import ExperimentConfig
    from collapse_diffusion.loop.study import Study
    calls = []

    def fake_extractor(images):
        calls.append(len(images))
        return images.reshape(len(images), -1).astype(float)[:, :3]

    study = Study(tmp_path, ExperimentConfig())
    study.__dict__["extractor"] = fake_extractor
    real, gens = setup(2)
    pool1 = ImageSet.concat([real.take(np.arange(N)), gens[0]])
    pool2 = ImageSet.concat([pool1, gens[1]])
    f1 = study.features("replace/a", pool1)
    f2 = study.features("replace/a", pool2)
    assert calls == [N + len(gens[0]), len(gens[1])]
    assert np.array_equal(f2[: len(pool1)], f1) and np.array_equal(f2, fake_extractor(pool2.images))


def test_holdout_is_a_seeded_random_part_of_one_selection_and_never_an_anchor():
    """The membership test's non-members (docs/method.md §7): h of the N + h selected images, drawn
    at random, disjoint from D_{n+1}; real anchors stay in D_{n+1}; only replace and selecting arms hold out."""
    from collapse_diffusion.selection.paradigms import candidate_count, holdout_size, split_holdout
    selected = make_set(np.arange(40 * 4, dtype=np.uint8).reshape(40, 1, 2, 2) % 255, cycle=2)
    train, held = split_holdout(selected, 8, anchors=3, rng=np.random.default_rng(0))
    assert len(train) == 32 and len(held) == 8
    ids = lambda s: {tuple(p) for p in s.provenance.tolist()}  # noqa: E731
    assert ids(train) | ids(held) == ids(selected) and not ids(train) & ids(held)
    assert ids(selected.take(np.arange(3))) <= ids(train)
    again, _ = split_holdout(selected, 8, anchors=3, rng=np.random.default_rng(0))
    assert ids(again) == ids(train)
    assert holdout_size("replace", ArmConfig("greedy", "greedy"), 64) == 64
    assert holdout_size("accumulate", ArmConfig("greedy", "greedy"), 64) == 0
    assert holdout_size("replace", ArmConfig("rn", "all"), 64) == 0
    assert candidate_count(32, 2.0, 64) == 192 and candidate_count(32, 2.0) == 64
