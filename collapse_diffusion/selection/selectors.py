"""Choosing N of a candidate pool S (docs/method.md §3). Inputs are (|S|, D) float features: pixels on
the 0-255 scale (the paper) or embeddings. Every selector returns N unique indices into S, and is
deterministic given its numpy Generator.

- random: N uniformly at random (the vanilla arm).
- greedy: farthest-point (k-center) selection. A running min-distance vector holds each
  candidate's distance to the selected set; each step adds the argmax and updates the vector with
  the distances to the new point: O(|S| N) distance evaluations, never an |S| x |S| matrix.
- tdf: threshold decay filter. Passes over the shuffled pool accept x when its distance to every
  accepted point exceeds tau (accepted points count at once); a pass that accepts nothing sets
  tau <- alpha tau; stop at N. Candidates are screened against the accepted set in blocks through
  the kNN engine; only the survivors of a block are compared with each other.
- klprune: entropy-score pruning, from the other side: remove, one at a time, the candidate closest
  to its nearest remaining neighbour (optionally counting a reference set such as D_n as
  neighbours) until N remain. Of a mutually nearest pair, the one whose second-nearest remaining
  neighbour is closer goes. Only the points whose nearest neighbour was removed are searched again.
Greedy, tdf and klprune raise the KL entropy of the selected set: each greedily maximises the sum of
log 1-NN distances (random is the control).
"""
from __future__ import annotations

import numpy as np
import torch

from ..measure.knn import default_device, knn

TDF_BLOCK = 512


def select_greedy(x: np.ndarray, n: int, rng: np.random.Generator, device=None) -> np.ndarray:
    """Farthest-point selection from a random start; ties go to the lowest index."""
    device = torch.device(device) if device is not None else default_device(x)
    xt = torch.as_tensor(x).reshape(len(x), -1).to(device=device, dtype=torch.float32).contiguous()
    from ..measure.kernels import use_triton
    fused = use_triton(device)
    chosen = np.empty(n, np.int64)
    chosen[0] = rng.integers(len(xt))
    mind = torch.full((len(xt),), float("inf"), device=device)
    for i in range(1, n):
        _min_update(xt, xt[chosen[i - 1]], mind, fused)
        mind[chosen[i - 1]] = -1.0  # selected points never win again
        chosen[i] = int(torch.argmax(mind))
    return chosen


def _min_update(x: torch.Tensor, c: torch.Tensor, mind: torch.Tensor, fused: bool) -> None:
    """mind <- min(mind, ||x_i - c||^2), from exact differences (the Triton kernel when ``fused``)."""
    if fused:
        from ..measure.kernels import min_update_triton
        min_update_triton(x, c.contiguous(), mind)
    else:
        torch.minimum(mind, (x - c).square().sum(1), out=mind)


def select_tdf(x: np.ndarray, n: int, rng: np.random.Generator, tau0: float = 2000.0, alpha: float = 0.95,
               device=None) -> np.ndarray:
    """Threshold decay filter; distances (and tau) in the units of ``x``."""
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    order = rng.permutation(len(x))
    accepted = [int(order[0])]
    taken = np.zeros(len(x), bool)
    taken[order[0]] = True
    tau = float(tau0)
    while len(accepted) < n:
        before = len(accepted)
        for start in range(0, len(order), TDF_BLOCK):
            block = order[start:start + TDF_BLOCK]
            block = block[~taken[block]]
            if len(block) == 0:
                continue
            near = knn(x[block], x[accepted], k=1, device=device).dist[:, 0]
            survivors = block[near > tau]
            for j in _mutually_far(x[survivors], tau, n - len(accepted)):
                accepted.append(int(survivors[j]))
                taken[survivors[j]] = True
            if len(accepted) >= n:
                break
        if len(accepted) == before:
            tau *= alpha
    return np.asarray(accepted[:n], np.int64)


def _mutually_far(x: np.ndarray, tau: float, limit: int) -> list[int]:
    """Sequential acceptance inside one block: row j is kept when it is farther than tau from every
    earlier kept row. One vectorised row of exact distances per kept point."""
    alive = np.ones(len(x), bool)
    kept: list[int] = []
    for j in range(len(x)):
        if not alive[j]:
            continue
        kept.append(j)
        if len(kept) == limit:
            break
        close = np.sqrt(((x[j + 1:] - x[j]) ** 2).sum(1)) <= tau
        alive[j + 1:] &= ~close
    return kept


def select_klprune(x: np.ndarray, n: int, ref: np.ndarray | None = None, device=None) -> np.ndarray:
    """Entropy-score pruning of (|S|, D) ``x`` down to ``n`` indices (sorted); ``ref`` (m, D): fixed
    neighbours that are never removed (D_n). Deterministic; no |S| x |S| matrix."""
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    alive = np.ones(len(x), bool)
    fixed = (knn(x, np.asarray(ref, np.float32).reshape(len(ref), -1), k=1, device=device).dist[:, 0]
             if ref is not None and len(ref) else np.full(len(x), np.inf))
    d1, j1 = np.full(len(x), np.inf), np.full(len(x), -1)
    if len(x) > 1:
        nb = knn(x, None, k=1, device=device)
        d1, j1 = nb.dist[:, 0].astype(np.float64), nb.idx[:, 0]
    for _ in range(len(x) - n):
        score = np.where(alive, np.minimum(d1, fixed), np.inf)
        ties = np.flatnonzero(score <= score.min() * (1 + 1e-5) + 1e-6)  # a mutual pair, up to float error
        out = ties[0] if len(ties) == 1 else ties[np.argmin(_second_nearest(x, ties, alive, fixed, device))]
        alive[out] = False
        stale = np.flatnonzero(alive & (j1 == out))  # their nearest remaining neighbour just left
        if len(stale):
            d, j = _nearest_alive(x, stale, alive, device)
            d1[stale], j1[stale] = d[:, 0], j[:, 0]
    return np.flatnonzero(alive)


def _nearest_alive(x: np.ndarray, rows: np.ndarray, alive: np.ndarray, device, count: int = 1):
    """(distances, indices), each (len(rows), count): the ``count`` nearest alive points of each of
    ``rows``, themselves excluded (inf and -1 where fewer exist). One kNN search."""
    others = np.flatnonzero(alive)
    dist, idx = np.full((len(rows), count), np.inf), np.full((len(rows), count), -1)
    k = min(count + 1, len(others))
    if k < 1:
        return dist, idx
    nb = knn(x[rows], x[others], k=k, device=device)
    found = others[nb.idx]
    order = np.argsort(found == rows[:, None], axis=1, kind="stable")[:, :count]  # self moved to the end
    got_d = np.take_along_axis(nb.dist, order, 1)
    got_i = np.take_along_axis(found, order, 1)
    valid = got_i != rows[:, None]
    dist[:, :got_d.shape[1]] = np.where(valid, got_d, np.inf)
    idx[:, :got_i.shape[1]] = np.where(valid, got_i, -1)
    return dist, idx


def _second_nearest(x: np.ndarray, rows: np.ndarray, alive: np.ndarray, fixed: np.ndarray, device) -> np.ndarray:
    """The tie-break of klprune: each tied point's second-nearest distance among the alive points and
    the fixed reference (the reference's nearest counts as one neighbour)."""
    d, _ = _nearest_alive(x, rows, alive, device, count=2)
    f = fixed[rows]
    return np.where(f <= d[:, 0], d[:, 0], np.minimum(d[:, 1], f))
