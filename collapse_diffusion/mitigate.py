"""Filters that act on the pool before an arm's selector picks D_{n+1} (docs/method.md §9), and the
record of what one selection did.

- memorization filter (``memfilter``): drop candidates the 1/3 rule calls copies of the current
  training set D_n (lineage-aware, pixel space, the memorization rate's own engine and threshold),
  or of every training set so far; the arm's base selector picks N among the survivors.
- self-verification (``selfverify``): the generating model's own per-sample denoising loss
  (``verify.py``); keep the N most confident, or reject the least confident fraction first.
- provenance filter (``provenance``): a simulated detector flags generated images with probability
  ``recall`` and real images with probability ``false_positive``; flagged images leave the pool.

When fewer than the target size survive, the least suspect dropped images top the set up (counted).
Imports no torch: the record is part of the metrics.jsonl schema.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .records import Col, Record, detail, metric

SELECTION = "selection"  # the role of a selection record in a row: how this cycle's D_n was chosen


@dataclass(frozen=True)
class SelectionReport(Record):
    """What building one D_n did to its pool (cycle >= 2; written as selection.json beside train.npz)."""
    pool: int = detail("images in the pool", columns={SELECTION: Col("selection_pool", "images in the pool")})
    size: int = detail("images selected", columns={SELECTION: Col("selection_size", "images selected")})
    pool_generated: int = detail("generated images in the pool",
                                 columns={SELECTION: Col("pool_generated", "generated images in the pool")})
    pool_real: int = detail("real images in the pool", columns={SELECTION: Col("pool_real", "real images in the pool")})
    memfilter_dropped: Optional[int] = metric(
        "candidates dropped as copies of D_n (memorization filter)", fmt="d", n="pool",
        columns={SELECTION: Col("memfilter_dropped", "candidates dropped by the memorization filter", plot=False)},
        default=None)
    verify_dropped: Optional[int] = metric(
        "candidates dropped as least confident (self-verification)", fmt="d", n="pool",
        columns={SELECTION: Col("verify_dropped", "candidates dropped by self-verification", plot=False)},
        default=None)
    detector_recall: Optional[float] = metric(
        "simulated detector: share of generated images flagged", rate=True, n="pool_generated",
        columns={SELECTION: Col("detector_recall", "simulated detector: measured recall", plot=False)}, default=None)
    detector_false_positive: Optional[float] = metric(
        "simulated detector: share of real images flagged", rate=True, n="pool_real",
        columns={SELECTION: Col("detector_false_positive", "simulated detector: measured false-positive rate",
                                plot=False)}, default=None)
    topped_up: int = metric("dropped images taken back to reach the target size", fmt="d", n="size",
                            columns={SELECTION: Col("topped_up", "dropped images taken back", plot=False)}, default=0)
    real_anchors: int = detail("real anchor images kept",
                               columns={SELECTION: Col("real_anchors", "real anchor images in D_n")}, default=0)


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
