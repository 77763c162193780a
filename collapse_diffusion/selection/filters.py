"""Filters that act on the pool before an arm's selector picks D_{n+1} (docs/method.md §9).

- memorization filter (``memfilter``): drop candidates the 1/3 rule calls copies of the current
  training set D_n (lineage-aware, pixel space, the memorization rate's own engine and threshold),
  or of every training set so far; the arm's base selector picks N among the survivors.
- self-verification (``selfverify``): the generating model's own per-sample denoising loss
  (``verify.py``); keep the N most confident, or reject the least confident fraction first.
- provenance filter (``provenance``): a simulated detector flags generated images with probability
  ``recall`` and real images with probability ``false_positive``; flagged images leave the pool.

When fewer than the target size survive, the least suspect dropped images top the set up (counted).
Each filter takes the arm's ``pipeline.Chooser`` (its ``ArmInputs``: arm, cycle, threshold, the
paths of the arm's cycles) and the pool indices still in play, and returns the indices it keeps, how
many of them it took back, and what it dropped.
"""
from __future__ import annotations

import numpy as np

from ..core.seeds import derive_seed
from ..data.images import ImageSet


def detector_flags(provenance: np.ndarray, recall: float, false_positive: float, seed: int) -> np.ndarray:
    """(n,) bool: the simulated detector's verdict per image, from its provenance (cycle 0 = real).

    The verdict on an image is fixed (a uniform draw keyed by the seed and the image's provenance),
    as a watermark check's would be: an image missed once stays missed in every later pool, and a
    higher recall flags a superset of what a lower one flags."""
    prov = np.asarray(provenance).reshape(-1, 2)
    u = np.array([np.random.default_rng([seed, int(c), int(i)]).random() for c, i in prov.tolist()])
    return np.where(prov[:, 0] > 0, u < recall, u < false_positive)


def keep_or_top_up(keep: np.ndarray, badness: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """(indices to select from, how many dropped ones were taken back): the survivors of a filter and,
    when fewer than ``size`` survive, the least bad dropped images (lowest ``badness``, stable order)."""
    kept = np.flatnonzero(keep)
    missing = size - len(kept)
    if missing <= 0:
        return kept, 0
    dropped = np.flatnonzero(~keep)
    back = dropped[np.argsort(badness[dropped], kind="stable")[:missing]]
    return np.sort(np.concatenate([kept, back])), int(missing)


def memorization_filter(ch, pool: ImageSet, idx: np.ndarray, size: int) -> tuple[np.ndarray, int, dict]:
    """Drop the candidates whose lineage-aware NN1/NN2 ratio is below the memorization threshold."""
    ratios = copy_ratios(ch, pool.take(idx))
    copies = ratios < ch.inputs.threshold
    sub, back = keep_or_top_up(~copies, -ratios, size)
    return idx[sub], back, {"memfilter_dropped": int(copies.sum())}


def self_verification(ch, pool: ImageSet, idx: np.ndarray, size: int) -> tuple[np.ndarray, int, dict]:
    """Drop the candidates the generating model denoises least well: all but N (verify: top) or the
    least confident reject_fraction (verify: reject), never below N."""
    from .verify import denoising_scores
    a, inp = ch.arm, ch.inputs
    scores = denoising_scores(inp.files(ch.cycle).model, pool.images[idx], inp.diffusion, a.verify_timesteps,
                              a.verify_noise, derive_seed(inp.seed, ch.cycle, "verify"), inp.device)
    drop = len(idx) - size if a.verify == "top" else int(np.floor(a.reject_fraction * len(idx)))
    drop = max(0, min(drop, len(idx) - size))
    keep = np.ones(len(idx), bool)
    keep[np.argsort(-scores, kind="stable")[:drop]] = False
    return idx[keep], 0, {"verify_dropped": int(drop)}


def copy_ratios(ch, pool: ImageSet) -> np.ndarray:
    """Lineage-aware NN1/NN2 ratio of each generated image of ``pool`` against the training set of
    the cycle that generated it (the ratio its evaluation recorded in nn.npz), or against every
    training set up to that cycle (filter_against: all); inf for real images."""
    ratios = np.full(len(pool), np.inf)
    for c in np.unique(pool.provenance[:, 0]):
        if c == 0:
            continue
        rows = np.flatnonzero(pool.provenance[:, 0] == c)
        j = pool.provenance[rows, 1]
        with np.load(ch.inputs.files(int(c)).nn) as z:
            ratios[rows] = z["ratios_lineage"][j]
        if ch.arm.filter_against == "all":
            ratios[rows] = np.minimum(ratios[rows], _ratios_vs_all(ch, pool.take(rows), int(c)))
    return ratios


def _ratios_vs_all(ch, images: ImageSet, cycle: int) -> np.ndarray:
    from ..data.images import load_npz
    from ..measure.memorization import nn_report
    sets = [load_npz(ch.inputs.files(i).train) for i in range(1, cycle + 1)]
    ref = ImageSet.concat(sets)
    roots = np.concatenate([ch.inputs.lineage_roots(s) for s in sets])
    _, arrays = nn_report(images.flat(), ref.flat(), ch.inputs.threshold, roots)
    return arrays["ratios_lineage"]
