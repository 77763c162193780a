import numpy as np
import pytest

from collapse_diffusion.measure.entropy import kl_entropy


def gaussian_entropy(cov):
    d = len(cov)
    return 0.5 * np.log((2 * np.pi * np.e) ** d * np.linalg.det(cov))


@pytest.mark.parametrize("d,tol", [(1, 0.05), (2, 0.08), (5, 0.15), (10, 0.35)])
def test_gaussian_closed_form(d, tol):
    """KL (k=1) on 4000 Gaussian samples is within tol nats of 1/2 log((2 pi e)^d det S).
    The tolerances grow with d as the estimator's bias does."""
    rng = np.random.default_rng(d)
    a = rng.normal(size=(d, d))
    cov = a @ a.T / d + np.eye(d)
    x = rng.multivariate_normal(np.zeros(d), cov, size=4000)
    assert abs(kl_entropy(x).nats - gaussian_entropy(cov)) < tol


def test_permutation_invariance_and_scaling():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6))
    h = kl_entropy(x)
    assert kl_entropy(x[rng.permutation(500)]).nats == pytest.approx(h.nats, abs=1e-5)
    s = 3.7
    assert kl_entropy(x * s).nats == pytest.approx(h.nats + 6 * np.log(s), abs=1e-5)
    assert h.n == 500 and h.d == 6 and h.k == 1 and len(h.log_eps) == 500


def test_k_parameter():
    x = np.random.default_rng(1).normal(size=(3000, 3))
    exact = gaussian_entropy(np.eye(3))
    assert abs(kl_entropy(x, k=4).nats - exact) < 0.08


def test_duplicates_counted_and_finite():
    x = np.random.default_rng(2).normal(size=(100, 4))
    x[:10] = x[10:20]
    h = kl_entropy(x, floor=1e-3)
    assert h.zero_distances == 20 and np.isfinite(h.nats)
    assert h.summary()["zero_distances"] == 20
