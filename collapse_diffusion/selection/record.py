"""The record of one selection (written as selection.json beside each D_n, cycle >= 2, and part of
the metrics.jsonl schema): what building D_n did to its pool. Imports no torch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..core.records import Col, Record, detail, metric

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
    held_out: int = detail("selected images held out as non-members (membership test)",
                           columns={SELECTION: Col("held_out", "selected images held out as non-members")},
                           default=0)
    real_anchors: int = detail("real anchor images kept",
                               columns={SELECTION: Col("real_anchors", "real anchor images in D_n")}, default=0)
