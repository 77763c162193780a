"""The one exact k-nearest-neighbour engine every metric and selector uses (docs/method.md §2-§4).

Euclidean distances between a query set Q (m, D) and a reference set R (n, D), float features
(pixels on the 0-255 scale, or embeddings). The reference is streamed in chunks and the queries in
blocks sized to a memory budget, so no m x n matrix is ever held. Candidates come from the fast
form ||q||^2 + ||r||^2 - 2 q.r on mean-centred data; that form loses precision for near-duplicates,
so the best ``k + refine`` candidates of each query are re-measured exactly as ||q - r|| before the
final sort. Exact duplicates therefore get distance 0, and they are counted, not hidden.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

MEMORY_BUDGET = 256 * 2 ** 20   # bytes for one query-block x reference-chunk distance tile
REF_CHUNK = 32768               # reference rows per streamed chunk


@dataclass(frozen=True)
class Neighbours:
    """``dist`` (m, k) float64 Euclidean distances ascending, ``idx`` (m, k) int64 reference indices."""
    dist: np.ndarray
    idx: np.ndarray


def _as_tensor(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(x)
    return t.reshape(len(t), -1).to(device=device, dtype=torch.float32)


def default_device(x: np.ndarray | torch.Tensor) -> torch.device:
    if isinstance(x, torch.Tensor):
        return x.device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def knn(query: np.ndarray | torch.Tensor, ref: Optional[np.ndarray | torch.Tensor] = None, k: int = 2,
        device: Optional[torch.device | str] = None, refine: int = 8, backend: str = "auto") -> Neighbours:
    """k nearest reference points of every query; ``ref=None`` searches Q within itself, self excluded.

    Only a point's own row is excluded: other copies of it are neighbours at distance 0.
    ``backend``: ``torch`` (chunked matmul), ``triton`` (fused kernel, CUDA) or ``auto``.
    """
    device = torch.device(device) if device is not None else default_device(query)
    q = _as_tensor(query, device)
    same = ref is None
    r = q if same else _as_tensor(ref, device)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"query has {q.shape[1]} features, reference {r.shape[1]}")
    available = len(r) - (1 if same else 0)
    if not 1 <= k <= available:
        raise ValueError(f"k={k} needs at least {k} reference points, have {available}")
    centre = r.mean(0, keepdim=True)
    q, r = q - centre, (q - centre if same else r - centre)
    m = min(k + refine, available)
    from .kernels import use_triton
    if use_triton(device, backend) and m <= 16:
        from .kernels import knn_candidates_triton
        cand = knn_candidates_triton(q, r, m, same)
    else:
        cand = _candidates(q, r, m, same)
    return _refine(q, r, cand, k)


def _candidates(q: torch.Tensor, r: torch.Tensor, m: int, same: bool) -> torch.Tensor:
    """(Q, m) indices of the m smallest approximate distances, streaming R in chunks."""
    rn = (r * r).sum(1)
    rc = min(len(r), REF_CHUNK)
    qb = max(1, MEMORY_BUDGET // (4 * rc))
    out = torch.empty((len(q), m), dtype=torch.long, device=q.device)
    for qs in range(0, len(q), qb):
        qq = q[qs:qs + qb]
        best_d = best_i = None
        for rs in range(0, len(r), rc):
            d2 = torch.addmm(rn[None, rs:rs + rc], qq, r[rs:rs + rc].T, alpha=-2.0)
            if same:
                rows = torch.arange(len(qq), device=q.device)
                cols = rows + qs - rs
                ok = (cols >= 0) & (cols < d2.shape[1])
                d2[rows[ok], cols[ok]] = float("inf")
            cd, ci = torch.topk(d2, min(m, d2.shape[1]), dim=1, largest=False, sorted=False)
            ci += rs
            if best_d is None:
                best_d, best_i = cd, ci
            else:  # merge two short candidate lists, never the tile
                d_all, i_all = torch.cat([best_d, cd], 1), torch.cat([best_i, ci], 1)
                best_d, pos = torch.topk(d_all, m, dim=1, largest=False, sorted=False)
                best_i = torch.gather(i_all, 1, pos)
        out[qs:qs + qb] = best_i
    return out


def _refine(q: torch.Tensor, r: torch.Tensor, cand: torch.Tensor, k: int) -> Neighbours:
    """Exact ||q - r|| for each query's candidates (-1: none), then the k smallest in ascending order."""
    block = max(1, MEMORY_BUDGET // (4 * cand.shape[1] * q.shape[1]))
    dists, idxs = [], []
    for s in range(0, len(q), block):
        c = cand[s:s + block]
        diff = q[s:s + block, None, :] - r[c.clamp_min(0)]
        d = diff.square().sum(-1).sqrt().double().masked_fill(c < 0, float("inf"))
        d, order = torch.sort(d, dim=1, stable=True)
        dists.append(d[:, :k])
        idxs.append(torch.gather(c, 1, order)[:, :k])
    return Neighbours(torch.cat(dists).cpu().numpy(), torch.cat(idxs).cpu().numpy())
