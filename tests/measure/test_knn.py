import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from collapse_diffusion.measure import knn as knn_mod
from collapse_diffusion.measure.knn import knn


def data(seed=0, n=400, m=120, d=48):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, d)) * 255).astype(np.float32)
    q = (rng.random((m, d)) * 255).astype(np.float32)
    q[:10] = x[:10]                                              # exact duplicates
    q[10:20] = x[20:30] + rng.normal(0, 1e-2, (10, d)).astype(np.float32)  # near-duplicates
    return q, x


def check_parity(nb, d_ref, i_ref):
    assert np.allclose(nb.dist, d_ref, rtol=1e-4, atol=1e-4)
    mism = nb.idx != i_ref
    # index disagreements only where distances tie
    assert np.allclose(nb.dist[mism], d_ref[mism], rtol=1e-6)


def test_parity_with_sklearn_including_duplicates():
    q, x = data()
    nb = knn(q, x, k=3)
    d_ref, i_ref = NearestNeighbors(n_neighbors=3, algorithm="brute").fit(x).kneighbors(q)
    check_parity(nb, d_ref, i_ref)
    assert (nb.dist[:10, 0] == 0).all() and (nb.idx[:10, 0] == np.arange(10)).all()
    assert np.allclose(nb.dist[10:20, 0], np.linalg.norm(q[10:20] - x[20:30], axis=1), rtol=1e-3)


def test_within_set_excludes_self_but_keeps_copies():
    _, x = data()
    x[5] = x[6]
    nb = knn(x, None, k=2)
    d_ref, i_ref = NearestNeighbors(n_neighbors=3, algorithm="brute").fit(x).kneighbors(x)
    assert (nb.idx != np.arange(len(x))[:, None]).all()
    assert nb.dist[5, 0] == 0 and nb.idx[5, 0] == 6 and nb.dist[6, 0] == 0
    assert np.allclose(nb.dist[7:], d_ref[7:, 1:], rtol=1e-4)


def brute_force(q, x, k, exclude_self=False):
    """The reference: every pairwise distance in float64, sorted."""
    d = np.sqrt(((q[:, None].astype(np.float64) - x[None].astype(np.float64)) ** 2).sum(-1))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, 1), idx


def test_streaming_chunks_match_brute_force(monkeypatch):
    """Tiny chunks (37 reference rows, 7 queries per tile) force many streamed tiles and merges,
    across and within a set; the result must equal the exhaustive float64 search."""
    q, x = data(1)
    monkeypatch.setattr(knn_mod, "REF_CHUNK", 37)
    monkeypatch.setattr(knn_mod, "MEMORY_BUDGET", 37 * 4 * 7)
    check_parity(knn(q, x, k=2), *brute_force(q, x, 2))
    check_parity(knn(x, None, k=3), *brute_force(x, x, 3, exclude_self=True))


def test_errors():
    with pytest.raises(ValueError):
        knn(np.zeros((3, 4)), np.zeros((3, 5)), k=1)
    with pytest.raises(ValueError):
        knn(np.zeros((3, 4)), None, k=3)
