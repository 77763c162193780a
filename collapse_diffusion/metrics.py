"""Nearest-neighbour metrics of generated images against training and real sets (METHOD.md §4).

All functions take float feature arrays (N, D); for the paper's metrics these are pixels on the
0-255 scale (``ImageSet.flat()``), so distances are in pixel L2 units.
"""
from __future__ import annotations

import numpy as np

from .knn import knn


def bootstrap_ci(flags: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of 0/1 ``flags`` (resampling generated images)."""
    if len(flags) == 0 or n_boot < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for s in range(0, n_boot, 256):
        draw = rng.integers(0, len(flags), size=(min(256, n_boot - s), len(flags)))
        means[s:s + len(draw)] = flags[draw].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def nn_report(gen: np.ndarray, train: np.ndarray, threshold: float = 1 / 3, n_boot: int = 1000,
              seed: int = 0) -> dict:
    """Memorization rate and generalization score of ``gen`` against ``train`` from one kNN call.

    Memorization (Yoon et al. 2023): x is a copy when ||x - NN1(x)|| / ||x - NN2(x)|| < threshold,
    NN1, NN2 its two nearest training images; the rate carries a 95% bootstrap interval.
    GS = mean_x ||x - NN1(x)|| (METHOD.md §4). Per-sample ratios and NN indices are kept.
    """
    nb = knn(gen, train, k=2)
    d1, d2 = nb.dist[:, 0], nb.dist[:, 1]
    ratio = np.where(d2 > 0, d1 / np.where(d2 > 0, d2, 1.0), 0.0)  # two exact copies: ratio 0, a copy
    flags = (ratio < threshold).astype(np.float64)
    lo, hi = bootstrap_ci(flags, n_boot, seed)
    return {"memorization_rate": float(flags.mean()), "memorization_ci95": [lo, hi],
            "generalization_score": float(d1.mean()), "n_generated": len(gen), "n_reference": len(train),
            "threshold": threshold, "exact_copies": int((d1 == 0).sum()),
            "ratios": ratio, "nn_index": nb.idx, "nn_dist": nb.dist}


def trace_cov(x: np.ndarray) -> float:
    """Trace of the sample covariance of (N, D) ``x``: the total variance."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return float(x.var(axis=0, ddof=1).sum())
