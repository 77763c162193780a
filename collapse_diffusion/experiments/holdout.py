"""What holding out non-members does to a selecting arm (docs/method.md §7b): one selection step
from a model's samples, with and without the membership test's holdout.

Without it, the arm selects N of r*N candidates. With it, the arm selects N + h of r*(N + h)
candidates and a seeded random h are held out, so D_{n+1} is a random N of a wider selection. Per
trial, both training sets are drawn from the same pool of samples (fresh candidates each trial), and
each is measured as the evaluation stage measures D_n: its kNN entropy and its mean 1-NN distance,
in pixels 0-255.

    python scripts/holdout_effect.py RUN/cells/n32_s1000/replace/vanilla/cycle_01/samples.npz
"""
from __future__ import annotations

import numpy as np

from ..data.images import ImageSet
from ..selection.paradigms import candidate_count, split_holdout
from ..selection.registry import select


def holdout_effect(samples: ImageSet, n: int, h: int, oversample: float = 2.0, trials: int = 20, seed: int = 0,
                   selectors: tuple[str, ...] = ("random", "greedy", "tdf")) -> list[dict]:
    """One row per selector and trial: entropy and spacing of D_{n+1} selected without and with the
    holdout (``h`` non-members) from candidates drawn from ``samples``."""
    from ..measure.evaluate import set_stats
    rng = np.random.default_rng(seed)
    plain, wide = candidate_count(n, oversample), candidate_count(n, oversample, h)
    if wide > len(samples):
        raise ValueError(f"a trial needs {wide} samples, the pool has {len(samples)}")
    rows = []
    for trial in range(trials):
        pool = samples.take(rng.permutation(len(samples))[:wide])
        for name in selectors:
            x = pool.flat().astype(np.float64)
            no = pool.take(select(name, x[:plain], n, np.random.default_rng([seed, trial, 0])))
            picked = pool.take(select(name, x, n + h, np.random.default_rng([seed, trial, 1])))
            yes, _ = split_holdout(picked, h, 0, np.random.default_rng([seed, trial, 2]))
            a, b = set_stats(no, 1, duplicates=False), set_stats(yes, 1, duplicates=False)
            rows.append({"selector": name, "trial": trial, "n": n, "h": h, "candidates": plain,
                         "candidates_holdout": wide, "entropy": a.entropy.nats, "entropy_holdout": b.entropy.nats,
                         "spacing": a.mean_nn_distance, "spacing_holdout": b.mean_nn_distance})
    return rows


def effect_table(rows: list[dict]) -> list[str]:
    """Markdown: per selector, mean entropy and spacing of D_{n+1} without and with the holdout and the
    mean paired difference with its 95% t interval over trials (trials share one pool of samples, so
    the interval is about this pool)."""
    from ..analysis.stats import estimate
    out = ["| selector | trials | entropy (nats), no holdout | with holdout | difference [95% CI] | spacing (px-L2), "
           "no holdout | with holdout | difference [95% CI] |", "|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["selector"] for r in rows):
        sub = [r for r in rows if r["selector"] == name]
        cells = []
        for key in ("entropy", "spacing"):
            e = estimate([r[f"{key}_holdout"] - r[key] for r in sub])
            m, (lo, hi) = e.mean, e.ci95
            cells += [f"{np.mean([r[key] for r in sub]):.1f}", f"{np.mean([r[f'{key}_holdout'] for r in sub]):.1f}",
                      f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]"]
        out.append(f"| {name} | {len(sub)} | " + " | ".join(cells) + " |")
    return out
