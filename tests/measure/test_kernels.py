"""Triton kernels against the torch reference, on CPU under TRITON_INTERPRET=1 (set in conftest)."""
import numpy as np
import pytest
import torch

from collapse_diffusion.measure import kernels
from collapse_diffusion.measure.knn import knn

pytestmark = pytest.mark.skipif(not kernels.triton_available(), reason="triton is not installed")


@pytest.mark.parametrize("m,n,d,k", [(70, 300, 40, 2), (33, 65, 7, 1), (50, 20, 64, 3)])
def test_knn_kernel_matches_torch(m, n, d, k):
    rng = np.random.default_rng(m)
    x = (rng.random((n, d)) * 255).astype(np.float32)
    q = (rng.random((m, d)) * 255).astype(np.float32)
    q[:5] = x[:5]
    a, b = knn(q, x, k=k, backend="triton"), knn(q, x, k=k, backend="torch")
    assert np.allclose(a.dist, b.dist) and np.array_equal(a.idx, b.idx)
    a, b = knn(x, None, k=k, backend="triton"), knn(x, None, k=k, backend="torch")
    assert np.allclose(a.dist, b.dist) and (a.idx != np.arange(n)[:, None]).all()


def test_min_update_kernel_matches_torch():
    rng = np.random.default_rng(0)
    x = torch.tensor((rng.random((130, 70)) * 255).astype(np.float32))
    mind = torch.tensor(rng.random(130).astype(np.float32) * 4e5)
    ref = torch.minimum(mind, ((x - x[7]) ** 2).sum(1))
    kernels.min_update_triton(x, x[7].clone(), mind)
    assert torch.allclose(mind, ref, rtol=1e-5) and mind[7] == 0
