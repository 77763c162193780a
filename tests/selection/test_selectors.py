import numpy as np
import pytest

from collapse_diffusion.measure.entropy import kl_entropy
from collapse_diffusion.selection.registry import select


def clustered(seed=0):
    """One dense cluster of 600 points and four sparse ones of 60: random selection over-samples
    the dense one, entropy-raising selection spreads out."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 12)) * 40
    parts = [c + rng.normal(size=(600 if i == 0 else 60, 12)) * 4 for i, c in enumerate(centres)]
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("name", ["random", "greedy", "tdf"])
def test_unique_and_deterministic(name):
    x = clustered()
    a = select(name, x, 150, np.random.default_rng(7), tau0=200.0)
    b = select(name, x, 150, np.random.default_rng(7), tau0=200.0)
    c = select(name, x, 150, np.random.default_rng(8), tau0=200.0)
    assert len(a) == 150 and len(set(a.tolist())) == 150 and a.min() >= 0 and a.max() < len(x)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_greedy_and_tdf_raise_entropy_over_random():
    x = clustered(1)
    h = {n: kl_entropy(x[select(n, x, 150, np.random.default_rng(0), tau0=200.0)]).nats
         for n in ("random", "greedy", "tdf")}
    assert h["greedy"] > h["random"] + 2 and h["tdf"] > h["random"] + 2


def test_tdf_alpha_near_one_approaches_greedy():
    x = clustered(2)
    h_greedy = kl_entropy(x[select("greedy", x, 150, np.random.default_rng(0))]).nats
    h_rand = kl_entropy(x[select("random", x, 150, np.random.default_rng(0))]).nats
    gaps = [h_greedy - kl_entropy(x[select("tdf", x, 150, np.random.default_rng(0), 200.0, a)]).nats
            for a in (0.5, 0.99)]
    assert gaps[1] < gaps[0] and abs(gaps[1]) < 0.2 * (h_greedy - h_rand)


def test_greedy_is_farthest_point():
    x = np.array([[0.0], [1.0], [10.0], [4.0], [6.0]], np.float32)
    rng = np.random.default_rng(0)
    first = np.random.default_rng(0).integers(5)
    idx = select("greedy", x, 3, rng)
    assert idx[0] == first
    d = np.abs(x[:, 0][:, None] - x[idx[:2], 0][None]).min(1)
    assert idx[2] == int(np.argmax(np.where(np.isin(np.arange(5), idx[:2]), -1, d)))


def test_tdf_respects_threshold():
    x = np.arange(0, 100, dtype=np.float32)[:, None]
    # a random packing of [0, 99] at spacing > 9.5 always holds 4 points, so no decay happens
    for seed in range(5):
        idx = select("tdf", x, 4, np.random.default_rng(seed), tau0=9.5, alpha=0.5)
        assert (np.diff(np.sort(x[idx, 0])) > 9.5).all()
    # more points than one pass can hold: tau decays and the spacing shrinks
    idx = select("tdf", x, 40, np.random.default_rng(0), tau0=9.5, alpha=0.5)
    assert len(set(idx.tolist())) == 40 and np.diff(np.sort(x[idx, 0])).min() < 9.5


def test_too_many():
    with pytest.raises(ValueError):
        select("greedy", np.zeros((5, 2)), 6, np.random.default_rng(0))
