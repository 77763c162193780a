"""Triton kernels for the kNN hot loops (docs/method.md §3-§4), with the torch engine as the fallback.

- ``knn_candidates_triton``: for a block of queries, stream the reference in tiles, form the tile
  of ||r||^2 - 2 q.r (fp32, IEEE dot: no TF32), and keep a running top-M per query in registers.
  The per-row constant ||q||^2 is left out: it does not change the order. The caller re-measures
  the M candidates exactly (``knn._refine``), so the kernel only has to rank.
- ``min_update_triton``: the running min-distance update that greedy farthest-point selection
  repeats N times: mind_i <- min(mind_i, ||x_i - c||^2), from exact differences, fused in one pass.

Both run on CPU under ``TRITON_INTERPRET=1`` (set before import), which is how CI tests them.
"""
from __future__ import annotations

import os

import torch

try:
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - triton ships with CUDA torch on Linux only
    triton = None

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


def triton_available() -> bool:
    return triton is not None and (INTERPRET or torch.cuda.is_available())


def use_triton(device: torch.device, backend: str = "auto") -> bool:
    """Whether a kNN or selection kernel runs in Triton: ``triton`` forces it (an error when it cannot
    run), ``torch`` never, ``auto`` on CUDA when Triton is importable."""
    if backend == "torch":
        return False
    if backend == "triton":
        if not triton_available():
            raise RuntimeError("backend='triton' needs triton and a CUDA device (or TRITON_INTERPRET=1)")
        return True
    return device.type == "cuda" and triton_available()


if triton is not None:
    @triton.jit
    def _knn_topm_kernel(Q, R, RN, OUT_I, nq, nr, d, stride_q, stride_r, SAME: tl.constexpr,
                         M: tl.constexpr, BQ: tl.constexpr, BR: tl.constexpr, BD: tl.constexpr):
        rq = tl.program_id(0) * BQ + tl.arange(0, BQ)
        qmask = rq < nq
        slots = tl.arange(0, M)
        best_d = tl.full((BQ, M), float("inf"), tl.float32)
        best_i = tl.full((BQ, M), -1, tl.int32)
        for r0 in range(0, nr, BR):
            rr = r0 + tl.arange(0, BR)
            rmask = rr < nr
            acc = tl.zeros((BQ, BR), tl.float32)
            for d0 in range(0, d, BD):
                dd = d0 + tl.arange(0, BD)
                dmask = dd < d
                q = tl.load(Q + rq[:, None] * stride_q + dd[None, :], mask=qmask[:, None] & dmask[None, :], other=0.0)
                r = tl.load(R + rr[:, None] * stride_r + dd[None, :], mask=rmask[:, None] & dmask[None, :], other=0.0)
                acc += tl.dot(q, tl.trans(r), input_precision="ieee")
            rn = tl.load(RN + rr, mask=rmask, other=0.0)
            dist = tl.where(rmask[None, :], rn[None, :] - 2.0 * acc, float("inf"))
            if SAME:
                dist = tl.where(rq[:, None] == rr[None, :], float("inf"), dist)
            cols = tl.arange(0, BR)
            for _ in tl.static_range(M):  # insert the tile's M smallest into the running top-M
                tmin = tl.min(dist, axis=1)
                targ = tl.argmin(dist, axis=1)
                worst = tl.max(best_d, axis=1)
                wpos = tl.argmax(best_d, axis=1)
                slot = (slots[None, :] == wpos[:, None]) & (tmin < worst)[:, None]
                best_d = tl.where(slot, tmin[:, None], best_d)
                best_i = tl.where(slot, (r0 + targ)[:, None], best_i)
                dist = tl.where(cols[None, :] == targ[:, None], float("inf"), dist)
        tl.store(OUT_I + rq[:, None] * M + slots[None, :], best_i, mask=qmask[:, None])

    @triton.jit
    def _min_update_kernel(X, C, MIND, n, d, stride, BN: tl.constexpr, BD: tl.constexpr):
        rows = tl.program_id(0) * BN + tl.arange(0, BN)
        rmask = rows < n
        acc = tl.zeros((BN,), tl.float32)
        for d0 in range(0, d, BD):
            dd = d0 + tl.arange(0, BD)
            dmask = dd < d
            x = tl.load(X + rows[:, None] * stride + dd[None, :], mask=rmask[:, None] & dmask[None, :], other=0.0)
            c = tl.load(C + dd, mask=dmask, other=0.0)
            diff = x - c[None, :]
            acc += tl.sum(diff * diff, axis=1)
        old = tl.load(MIND + rows, mask=rmask, other=0.0)
        tl.store(MIND + rows, tl.minimum(old, acc), mask=rmask)


def knn_candidates_triton(q: torch.Tensor, r: torch.Tensor, m: int, same: bool,
                          bq: int = 32, br: int = 64, bd: int = 32) -> torch.Tensor:
    """(Q, >=m) candidate indices holding the m smallest ||q - r|| of each query; -1 marks empty slots."""
    mp = 1 << max(1, (m - 1).bit_length())  # the kernel's slot count: a power of two >= m
    q, r = q.float().contiguous(), r.float().contiguous()
    rn = (r * r).sum(1).contiguous()
    out = torch.empty((len(q), mp), dtype=torch.int32, device=q.device)
    grid = (triton.cdiv(len(q), bq),)
    _knn_topm_kernel[grid](q, r, rn, out, len(q), len(r), q.shape[1], q.stride(0), r.stride(0),
                           SAME=same, M=mp, BQ=bq, BR=br, BD=bd)
    return out.long()


def min_update_triton(x: torch.Tensor, centre: torch.Tensor, mind: torch.Tensor, bn: int = 64, bd: int = 64) -> None:
    """In place: mind <- min(mind, ||x_i - centre||^2) for every row i of the contiguous (n, d) x."""
    grid = (triton.cdiv(len(x), bn),)
    _min_update_kernel[grid](x, centre, mind, len(x), x.shape[1], x.stride(0), BN=bn, BD=bd)
