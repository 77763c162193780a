"""An arm's choice of ``size`` images from a pool (docs/method.md §3, §9), as its registry entry says:

    pool -> provenance filter (any arm with `provenance`)
         -> the selector's own filter (memfilter: drop copies; selfverify: drop the least confident)
         -> the picking selector (random, greedy, tdf, klprune; a filter's `base`) on the survivors
         -> sorted indices into the pool, and the SelectionReport of what each step did

The pipeline reads the run it selects for through :class:`ArmRun` (``loop.study.Study`` is one;
:class:`PoolRun` is a pool outside any study): the config, the files of the arm's cycles, feature
extraction and lineage roots.
"""
from __future__ import annotations

from typing import Any, Optional, Protocol

import numpy as np

from ..core.errors import UserError
from ..core.layout import CycleFiles
from ..core.seeds import derive_seed
from ..data.images import ImageSet, load_npz
from .filters import detector_flags, keep_or_top_up
from .record import SelectionReport
from .registry import ArmConfig, choose


class ArmRun(Protocol):
    """What the pipeline reads of the run it selects for."""
    cfg: Any  # loop.config.ExperimentConfig

    def arm(self, name: str) -> ArmConfig: ...

    def files(self, paradigm: str, arm: str, cycle: int) -> CycleFiles: ...

    def features(self, key: str, images: ImageSet) -> np.ndarray: ...

    def lineage_roots(self, paradigm: str, arm: str, s: ImageSet) -> np.ndarray: ...


class Chooser:
    """The arm's choice of ``size`` images from a pool; keeps the SelectionReport of its last call."""

    def __init__(self, run: ArmRun, paradigm: str, arm: str, cycle: int, current: Optional[ImageSet] = None):
        self.run, self.paradigm, self.name, self.cycle = run, paradigm, arm, cycle
        self.current = current  # D_cycle, when the caller has it loaded (klprune's fixed neighbours)
        self.arm = run.arm(arm)
        self.report: Optional[SelectionReport] = None

    def __call__(self, pool: ImageSet, size: int, rng: np.random.Generator) -> np.ndarray:
        a, gen = self.arm, pool.provenance[:, 0] > 0
        stats = dict(pool=len(pool), size=size, pool_generated=int(gen.sum()), pool_real=int((~gen).sum()))
        idx, topped = np.arange(len(pool)), 0
        if a.provenance is not None:
            flags = detector_flags(pool.provenance, a.provenance.recall, a.provenance.false_positive,
                                   derive_seed(self.run.cfg.seed, 0, "detector", f"{self.paradigm}/{self.name}"))
            stats.update(detector_recall=float(flags[gen].mean()) if gen.any() else None,
                         detector_false_positive=float(flags[~gen].mean()) if (~gen).any() else None)
            idx, topped = keep_or_top_up(~flags, rng.random(len(pool)), size)
        if a.entry.filter is not None:
            idx, back, dropped = a.entry.filter(self, pool, idx, size)
            topped += back
            stats.update(dropped)
        chosen = idx[self.pick(pool.take(idx), size, rng)]
        self.report = SelectionReport(**stats, topped_up=int(topped))
        return np.sort(chosen)

    def pick(self, pool: ImageSet, size: int, rng: np.random.Generator) -> np.ndarray:
        """The picking selector on ``pool``, in the arm's space (klprune: D_n as fixed neighbours
        when the arm asks)."""
        a, key = self.arm, f"{self.paradigm}/{self.name}"
        x = pool.flat() if a.space == "pixel" else self.run.features(key, pool)
        ref = None
        if a.picker.wants_reference and a.prune_with_train:
            current = self.current if self.current is not None else load_npz(
                self.run.files(self.paradigm, self.name, self.cycle).train)
            ref = current.flat() if a.space == "pixel" else self.run.features(key, current)
        return choose(a, x, size, rng, ref)


class PoolRun:
    """An :class:`ArmRun` for a pool outside any study (the `select` command): features from the
    configured extractor, every image its own lineage, and no earlier cycles on disk."""

    def __init__(self, cfg: Any, extractor=None):
        self.cfg, self.extractor = cfg, extractor

    def arm(self, name: str) -> ArmConfig:
        return next(a for a in self.cfg.study.arms if a.name == name)

    def files(self, paradigm: str, arm: str, cycle: int) -> CycleFiles:
        raise RuntimeError("a pool outside a study has no cycle files")

    def features(self, key: str, images: ImageSet) -> np.ndarray:
        return self.extractor(images.images)

    def lineage_roots(self, paradigm: str, arm: str, s: ImageSet) -> np.ndarray:
        return s.provenance


def select_pool(run: PoolRun, arm: str, pool: ImageSet, size: int, seed: int,
                current: Optional[ImageSet] = None) -> tuple[ImageSet, SelectionReport]:
    """``size`` images of ``pool`` chosen as the arm chooses them in a study (the rng of cycle 0 of
    ``seed``), and the record; ``all`` keeps the whole pool. A selector whose filter reads a study's
    earlier cycles (memfilter, selfverify) is refused: select inside the run directory instead."""
    a = run.arm(arm)
    if a.entry.filter is not None:
        raise UserError(f"arm '{arm}' ({a.selector}) reads a study's earlier cycles; select inside a run "
                        f"directory instead: collapse-diffusion select RUN --arm PARADIGM/{arm} --cycle N")
    if a.entry.keeps_all:
        return pool, SelectionReport(pool=len(pool), size=len(pool), pool_generated=int((pool.provenance[:, 0] > 0)
                                     .sum()), pool_real=int((pool.provenance[:, 0] == 0).sum()))
    if not 1 <= size <= len(pool):
        raise UserError(f"cannot select {size} of {len(pool)} images; pass --n between 1 and {len(pool)}")
    if a.picker.wants_reference and a.prune_with_train and current is None:
        raise UserError(f"arm '{arm}' prunes with D_n as fixed neighbours (prune_with_train); pass it with --train")
    chooser = Chooser(run, "pool", arm, 0, current)
    idx = chooser(pool, size, np.random.default_rng(derive_seed(seed, 0, "select", f"pool/{arm}")))
    return pool.take(idx), chooser.report
