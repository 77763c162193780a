"""Kozachenko-Leonenko kNN differential entropy (docs/method.md §2).

For n points x in R^d with eps_k(x) the distance to the k-th nearest neighbour in X \\ {x}:

    H_k(X) = psi(n) - psi(k) + log c_d + (d/n) * sum_x log eps_k(x),   c_d = pi^(d/2) / Gamma(d/2 + 1)

in nats. Exact duplicates give eps = 0: they are counted and clamped to ``floor`` (never -inf).
Values are comparable only at equal n, d, space and pixel scale; the result carries all four.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import digamma, gammaln

from ..core.records import Col, Record, detail, metric


@dataclass(frozen=True)
class EntropyStats(Record):
    """The estimate with everything it is comparable under (n, d, k, space), as stored in metrics.json."""
    nats: float = metric("KL entropy (nats)", fmt=".1f", n="n", columns={
        "train_set": Col("entropy_train", "KL entropy of D_n (nats, pixels)", "H(D_n)", rank=True),
        "generated_set": Col("entropy_generated", "KL entropy of G_n (its first |D_n| images; nats, pixels)",
                             "H(G_n)")})
    n: int = detail("points")
    d: int = detail("dimension")
    k: int = detail("k")
    space: str = detail("space")
    zero_distances: int = detail("zero distances (exact duplicates)")
    floor: float = detail("distance floor")


@dataclass(frozen=True)
class Entropy:
    nats: float              # H_k(X)
    n: int
    d: int
    k: int
    space: str               # e.g. "pixel 0-255" or "classifier-digits features"
    zero_distances: int      # points whose eps_k was 0 (exact duplicates), clamped to floor
    floor: float
    log_eps: np.ndarray = field(repr=False)  # (n,) per-sample log eps_k: the natural per-image score

    def stats(self) -> EntropyStats:
        return EntropyStats(self.nats, self.n, self.d, self.k, self.space, self.zero_distances, self.floor)

    def summary(self) -> dict:
        return self.stats().to_dict()


def log_unit_ball_volume(d: int) -> float:
    """log c_d, the log volume of the unit ball in R^d."""
    return 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1)


def kl_entropy(x: np.ndarray, k: int = 1, space: str = "pixel 0-255", floor: float = 1e-6,
               device=None) -> Entropy:
    """H_k of the (n, d) float array ``x`` (images are flattened) in nats; ``floor`` in x's units."""
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    if len(x) <= k:
        raise ValueError(f"the KL estimator with k={k} needs more than {k} points, got {len(x)}")
    from .knn import knn
    return kl_from_distances(knn(x, None, k=k, device=device).dist[:, k - 1], x.shape[1], k, space, floor)


def kl_from_distances(eps: np.ndarray, d: int, k: int, space: str, floor: float = 1e-6) -> Entropy:
    """H_k from the (n,) distances eps_k of every point to its k-th nearest other point."""
    n = len(eps)
    zeros = int((eps <= 0).sum())
    log_eps = np.log(np.maximum(eps, floor))
    nats = float(digamma(n) - digamma(k) + log_unit_ball_volume(d) + d * log_eps.mean())
    return Entropy(nats, n, d, k, space, zeros, floor, log_eps)
