"""An arm's choice of ``size`` images from a pool (docs/method.md §3, §8), as its registry entry says:

    pool -> provenance filter (any arm with `provenance`)
         -> the selector's own filter (memfilter: drop copies; selfverify: drop the least confident)
         -> the picking selector (random, greedy, tdf, klprune; a filter's `base`) on the survivors
         -> sorted indices into the pool, and the SelectionReport of what each step did

Everything the pipeline reads comes in as :class:`ArmInputs`, built by its caller (the loop for a
study's arm, :func:`pool_inputs` for a pool outside any study): the arm, seed and cycle, the
memorization threshold, the diffusion config and device of the model that made the pool, the paths
of the arm's cycles, and the arm's feature space and lineage roots as functions. Nothing of a run is
read back through a study object.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..core.errors import UserError
from ..core.layout import CycleFiles
from ..core.seeds import derive_seed
from ..data.images import ImageSet
from .filters import detector_flags, keep_or_top_up
from .record import SelectionReport
from .registry import ArmConfig, choose


@dataclass(frozen=True)
class ArmInputs:
    """What an arm's selection reads, passed in by its caller."""
    arm: ArmConfig
    paradigm: str                    # 'pool' for a pool outside any study
    seed: int                        # the study seed (the simulated detector's verdicts, selfverify's noise)
    cycle: int                       # the last cycle of the pool: D_{cycle+1} is chosen
    threshold: float = 1 / 3         # eval.memorization_threshold (memfilter)
    diffusion: Any = None            # core.config.DiffusionConfig of the model that made the pool (selfverify)
    device: str = "auto"             # runtime.device (selfverify's scoring)
    cycle_files: Optional[Callable[[int], CycleFiles]] = None       # the arm's files of cycle c
    features: Optional[Callable[[ImageSet], np.ndarray]] = None     # the arm's feature space
    lineage_roots: Optional[Callable[[ImageSet], np.ndarray]] = None  # (n, 2) roots (docs/method.md §7)
    current: Optional[ImageSet] = None  # D_cycle (klprune's fixed neighbours)

    @property
    def key(self) -> str:
        return f"{self.paradigm}/{self.arm.name}"

    def files(self, cycle: int) -> CycleFiles:
        if self.cycle_files is None:
            raise RuntimeError("a pool outside a study has no cycle files")
        return self.cycle_files(cycle)


class Chooser:
    """The arm's choice of ``size`` images from a pool; keeps the SelectionReport of its last call."""

    def __init__(self, inputs: ArmInputs):
        self.inputs, self.arm, self.cycle = inputs, inputs.arm, inputs.cycle
        self.report: Optional[SelectionReport] = None

    def __call__(self, pool: ImageSet, size: int, rng: np.random.Generator) -> np.ndarray:
        a, gen = self.arm, pool.provenance[:, 0] > 0
        stats = dict(pool=len(pool), size=size, pool_generated=int(gen.sum()), pool_real=int((~gen).sum()))
        idx, topped = np.arange(len(pool)), 0
        if a.provenance is not None:
            flags = detector_flags(pool.provenance, a.provenance.recall, a.provenance.false_positive,
                                   derive_seed(self.inputs.seed, 0, "detector", self.inputs.key))
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
        a, space = self.arm, self._space
        ref = None
        if a.picker.wants_reference and a.prune_with_train:
            if self.inputs.current is None:
                raise UserError(f"arm '{a.name}' prunes with D_n as fixed neighbours (prune_with_train); pass D_n")
            ref = space(self.inputs.current)
        return choose(a, space(pool), size, rng, ref)

    def _space(self, images: ImageSet) -> np.ndarray:
        if self.arm.space == "pixel":
            return images.flat()
        if self.inputs.features is None:
            raise UserError(f"arm '{self.arm.name}' selects in feature space but no feature extractor is configured")
        return self.inputs.features(images)


def pool_inputs(arm: ArmConfig, seed: int, features=None, current: Optional[ImageSet] = None) -> ArmInputs:
    """The inputs of a pool outside any study (the `select` command): every image its own lineage,
    no earlier cycles on disk, the rng of cycle 0 of ``seed``."""
    return ArmInputs(arm, "pool", seed, 0, features=features, lineage_roots=lambda s: s.provenance, current=current)


def select_pool(inputs: ArmInputs, pool: ImageSet, size: int) -> tuple[ImageSet, SelectionReport]:
    """``size`` images of ``pool`` chosen as the arm chooses them in a study, and the record; ``all``
    keeps the whole pool. A selector whose filter reads a study's earlier cycles (memfilter,
    selfverify) is refused: select inside the run directory instead."""
    a = inputs.arm
    if a.entry.filter is not None:
        raise UserError(f"arm '{a.name}' ({a.selector}) reads a study's earlier cycles; select inside a run "
                        f"directory instead: collapse-diffusion select RUN --arm PARADIGM/{a.name} --cycle N")
    if a.entry.keeps_all:
        made = int((pool.provenance[:, 0] > 0).sum())
        return pool, SelectionReport(pool=len(pool), size=len(pool), pool_generated=made, pool_real=len(pool) - made)
    if not 1 <= size <= len(pool):
        raise UserError(f"cannot select {size} of {len(pool)} images; pass --n between 1 and {len(pool)}")
    if a.picker.wants_reference and a.prune_with_train and inputs.current is None:
        raise UserError(f"arm '{a.name}' prunes with D_n as fixed neighbours (prune_with_train); pass it with --train")
    chooser = Chooser(inputs)
    idx = chooser(pool, size, np.random.default_rng(derive_seed(inputs.seed, 0, "select", inputs.key)))
    return pool.take(idx), chooser.report
