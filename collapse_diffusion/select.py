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
Both raise the KL entropy of the selected set: they greedily maximise sum log of 1-NN distances.
"""
from __future__ import annotations

import numpy as np
import torch

from .knn import default_device, knn

TDF_BLOCK = 512


def select_random(n_pool: int, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n_pool, size=n, replace=False))


def select_greedy(x: np.ndarray, n: int, rng: np.random.Generator, device=None) -> np.ndarray:
    """Farthest-point selection from a random start; ties go to the lowest index."""
    device = torch.device(device) if device is not None else default_device(x)
    xt = torch.as_tensor(x).reshape(len(x), -1).to(device=device, dtype=torch.float32).contiguous()
    use_triton = _triton_ok(device)
    chosen = np.empty(n, np.int64)
    chosen[0] = rng.integers(len(xt))
    mind = torch.full((len(xt),), float("inf"), device=device)
    for i in range(1, n):
        _min_update(xt, xt[chosen[i - 1]], mind, use_triton)
        mind[chosen[i - 1]] = -1.0  # selected points never win again
        chosen[i] = int(torch.argmax(mind))
    return chosen


def _min_update(x: torch.Tensor, c: torch.Tensor, mind: torch.Tensor, use_triton: bool) -> None:
    """mind <- min(mind, ||x_i - c||^2), from exact differences."""
    if use_triton:
        from .kernels import min_update_triton
        min_update_triton(x, c.contiguous(), mind)
    else:
        torch.minimum(mind, (x - c).square().sum(1), out=mind)


def _triton_ok(device: torch.device) -> bool:
    from .kernels import triton_available
    return device.type == "cuda" and triton_available()


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


SELECTORS = ("random", "greedy", "tdf")


def select(name: str, x: np.ndarray, n: int, rng: np.random.Generator, tau0: float = 2000.0,
           alpha: float = 0.95, device=None) -> np.ndarray:
    """Dispatch by selector name; ``x`` is (|S|, D) features, n <= |S|."""
    if n > len(x):
        raise ValueError(f"cannot select {n} of {len(x)} candidates")
    if name == "random":
        return select_random(len(x), n, rng)
    if name == "greedy":
        return select_greedy(x, n, rng, device)
    if name == "tdf":
        return select_tdf(x, n, rng, tau0, alpha, device)
    raise ValueError(f"unknown selector '{name}' (choose from {', '.join(SELECTORS)})")
