"""A study's run directory (docs/method.md §1): created from one config, refused for another,
reopened from its files, and the :class:`Study` object the stages read their inputs through.

Paths come from ``layout.RunLayout``; with ``study.seeds`` of two or more, RUN holds one
single-seed run directory per seed (RUN/seed_<s>/) and their rows together in RUN/metrics.jsonl.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..core import runtime as distributed
from ..core.errors import UserError
from ..core.io import check_sealed, seal
from ..core.layout import CycleFiles, RunLayout
from ..data.images import ImageSet, load_npz
from ..data.sources import extractor_pool, load_real, load_source
from ..diffusion.model import check_fits
from ..selection.paradigms import candidate_count, holdout_size, real_pool_size
from ..selection.registry import ArmConfig
from .experiment import ExperimentConfig, check_study, claim_folder, load_config

if TYPE_CHECKING:
    from ..measure.features import Extractor

log = logging.getLogger(__name__)


@dataclass
class Study:
    """A single-seed run directory and its config: everything a stage needs to find its inputs, and
    how this process runs its stages: the worker ``slot`` it is pinned to (recorded beside each
    stage's time; 'main', 'cpu:1', 'cuda:2') and whether it draws progress bars (``progress``: off in
    a study's worker processes, whose bars would interleave)."""
    root: Path
    cfg: ExperimentConfig
    slot: str = "main"
    progress: bool = True
    _feature_cache: dict = field(default_factory=dict, repr=False)

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.root)

    @property
    def n(self) -> int:
        return self.cfg.data.n

    def arm(self, name: str) -> ArmConfig:
        return next(a for a in self.cfg.study.arms if a.name == name)

    def arms(self) -> list[tuple[str, str]]:
        """Every (paradigm, arm) of the study."""
        return [(p, a.name) for p in self.cfg.study.paradigms for a in self.cfg.study.arms]

    def files(self, paradigm: str, arm: str, cycle: int) -> CycleFiles:
        return self.layout.cycle(paradigm, arm, cycle)

    @cached_property
    def real_pool(self) -> ImageSet:
        return load_npz(self.layout.real)

    @cached_property
    def extractor_images(self) -> ImageSet:
        """The classifier's labelled pool (runs from before it was saved fall back to the real pool)."""
        path = self.layout.extractor_data
        return load_npz(path) if path.exists() else self.real_pool

    @cached_property
    def extractor(self) -> Optional["Extractor"]:
        e = self.cfg.eval
        if e.extractor != "inception" and (self.real_pool.labels < 0).any():
            log.warning("real data has no labels and eval.extractor is not inception: FD is not computed")
            return None
        return extractor_for(self.cfg, self.extractor_images, self.layout.extractor)

    @cached_property
    def real_features(self) -> Optional[np.ndarray]:
        """Features of the FD reference: every image of the pool (eval.fid_real = 0) or its first
        eval.fid_real; computed once per content and extractor (``measure.features.cached_features``)."""
        if self.extractor is None:
            return None
        from ..measure.features import cached_features
        pool = self.extractor_images
        return cached_features(self.extractor, pool.images[:self.cfg.eval.fid_real or len(pool)])

    def features(self, key: str, images: ImageSet) -> np.ndarray:
        """Extractor features of ``images``; each image (by provenance, within ``key``'s arm) is
        extracted once per process, so a growing accumulate pool costs only its new images."""
        cache = self._feature_cache.setdefault(key, {})
        prov = [tuple(p) for p in images.provenance.tolist()]
        new = [i for i, p in enumerate(prov) if p not in cache]
        if new:
            for i, f in zip(new, self.extractor(images.images[new])):
                cache[prov[i]] = f
        return np.stack([cache[p] for p in prov])

    def holdout(self, paradigm: str, arm: str) -> int:
        """Non-members the arm holds out of each selection (selection.paradigms.holdout_size); none in a
        one-cycle study, which selects nothing."""
        if not self.cfg.eval.membership or self.cfg.study.cycles < 2:
            return 0
        return holdout_size(paradigm, self.arm(arm), self.cfg.eval.membership_holdout)

    def pool(self, paradigm: str, arm: str) -> int:
        """Candidates the arm selects from: r*(N + h) (h: its holdout), the first of each cycle's samples."""
        return candidate_count(self.n, self.cfg.study.oversample, self.holdout(paradigm, arm))

    @property
    def candidates(self) -> int:
        """Candidates every cycle generates: the most any arm selects from."""
        return max(self.pool(p, a) for p, a in self.arms())

    @property
    def real_holdout(self) -> Optional[ImageSet]:
        """Cycle 1's non-members: real images outside D_1 (and outside every fresh image), drawn by the
        same seeded order as D_1, from the end of the real pool; None when the run's pool lacks them."""
        s, h = self.cfg.study, self.cfg.eval.membership_holdout
        start = real_pool_size(self.n, s.cycles, s.paradigms, s.fresh_fraction)
        return self.real_pool.take(np.arange(start, start + h)) if len(self.real_pool) >= start + h > start else None

    def nonmembers(self, paradigm: str, arm: str, cycle: int) -> tuple[Optional[ImageSet], str]:
        """(the non-members of D_cycle, why none): real ones at cycle 1, the arm's held-out selection later."""
        if cycle == 1:
            held = self.real_holdout
            return held, "" if held is not None else ("the run's real pool holds no images outside D_1 "
                                                      "(started before eval.membership_holdout existed)")
        path = self.files(paradigm, arm, cycle).holdout
        if path.exists():
            return load_npz(path), ""
        return None, (f"no non-members exchangeable with D_n under {paradigm}/{arm} (held out under replace, "
                      f"by arms that select, with eval.membership_holdout > 0)")

    @property
    def n_samples(self) -> int:
        """Images generated per cycle: the candidates first, then more for evaluation."""
        return max(self.candidates, self.cfg.eval.n_generated)

    def lineage_roots(self, paradigm: str, arm: str, s: ImageSet) -> np.ndarray:
        """(n, 2) lineage root of each image of ``s`` (docs/method.md §7): a real image is its own
        root; a generated image (c, j) takes the root recorded for sample j when cycle c was evaluated."""
        roots = s.provenance.copy()
        for c in np.unique(s.provenance[:, 0]):
            rows = s.provenance[:, 0] == c
            path = self.files(paradigm, arm, int(c)).nn
            if c > 0 and path.exists():
                with np.load(path) as z:
                    if "root" in z:
                        roots[rows] = z["root"][s.provenance[rows, 1]]
        return roots


def extractor_for(cfg: ExperimentConfig, images: Optional[ImageSet] = None, cache: Optional[Path] = None
                  ) -> "Extractor":
    """The FD extractor of ``cfg`` (eval.extractor): the classifier trains on ``images`` (default: the
    seeded labelled pool every study of this data and seed uses) and is cached under ``cache``
    (default: the user's cache folder); Inception reads its local weights."""
    from ..measure.features import default_cache, get_extractor
    images = extractor_pool(cfg.data, cfg.seed) if images is None else images
    return get_extractor(cfg.eval, images, cfg.data.source, cache or default_cache(), cfg.seed)


def open_study(root: Path, cfg: ExperimentConfig | None = None) -> Study:
    """Create ``root`` for ``cfg`` or reopen it; ``cfg=None`` reopens with the saved config.

    All checks that can fail (data present, sizes, config match) run before any training starts.
    """
    layout = RunLayout(root)
    if cfg is None:
        if not layout.config.exists():
            raise UserError(f"'{root}' is not a run directory (no config.yaml); start it with "
                            f"`collapse-diffusion run CONFIG`")
        return Study(layout.root, load_config(layout.config))
    claim_folder(layout.root, cfg, save=False)
    distributed.run_on_main(_init_run, layout, cfg)
    if not layout.real.exists():
        raise UserError(f"could not initialise '{root}'; see the error of rank 0")
    return Study(layout.root, cfg)


def _init_run(layout: RunLayout, cfg: ExperimentConfig) -> None:
    if layout.real.exists():
        check_sealed(layout.real, layout.extractor_data, layout.shared.train)
    if not layout.real.exists():
        _init_data(layout, cfg)
    claim_folder(layout.root, cfg)  # the config is recorded once the data is in place


def _init_data(layout: RunLayout, cfg: ExperimentConfig) -> None:
    s = cfg.study
    need = real_pool_size(cfg.data.n, s.cycles, s.paradigms, s.fresh_fraction)
    held = cfg.eval.membership_holdout if cfg.eval.membership else 0
    available = len(load_source(cfg.data))
    if need + held > available:
        raise UserError(f"the study needs {need + held} real images (N={cfg.data.n}"
                        f"{', plus fresh ones for later cycles' if need > cfg.data.n else ''}"
                        f"{f', plus {held} non-members for the membership test' if held else ''}) but "
                        f"{cfg.data.source} has {available}; lower data.n"
                        f"{' or eval.membership_holdout' if held else ''}")
    need += held
    check_study(cfg)
    real = load_real(cfg.data, cfg.seed, need)
    check_fits(cfg.model.preset, real.shape[-1])
    extractor_pool(cfg.data, cfg.seed).save(layout.extractor_data)
    real.take(np.arange(cfg.data.n)).save(layout.shared.train)
    real.save(layout.real)
    seal(layout.extractor_data, layout.shared.train, layout.real)


def seed_configs(cfg: ExperimentConfig) -> list[ExperimentConfig]:
    """One single-seed config per replicate (study.seeds; none given: the top-level seed)."""
    seeds = cfg.study.seeds or (cfg.seed,)
    return [dataclasses.replace(cfg, seed=s, study=dataclasses.replace(cfg.study, seeds=())) for s in seeds]


def open_studies(root: Path, cfg: ExperimentConfig | None = None, clean: bool = True) -> list[Study]:
    """The single-seed studies of ``root``: itself, or RUN/seed_<s> for each of two or more seeds.
    ``clean`` removes what killed processes left half-written: only for a process that holds the
    whole run (a chain job cleans its own folders, loop/driver.py)."""
    layout = RunLayout(root)
    if cfg is None:
        if not layout.config.exists():
            open_study(root)  # raises: not a run directory
        cfg = load_config(layout.config)
    configs = seed_configs(cfg)
    if clean and distributed.is_main() and layout.root.is_dir():
        from ..core.io import remove_stale_temporaries
        remove_stale_temporaries(layout.root)  # what a killed run left half-written
    if len(configs) == 1:
        return [open_study(layout.root, cfg if not cfg.study.seeds else configs[0])]
    claim_folder(layout.root, cfg, save=False)
    studies = [open_study(layout.seed(c.seed).root, c) for c in configs]
    claim_folder(layout.root, cfg)
    return studies


def resolve_arm(study: Study, spec: str) -> tuple[str, str]:
    """``paradigm/arm``, or ``arm`` when the study has one paradigm."""
    choices = study.arms()
    for p, a in choices:
        if spec in (f"{p}/{a}", a if len(study.cfg.study.paradigms) == 1 else None):
            return p, a
    raise UserError(f"unknown arm '{spec}'; choose from {', '.join(f'{p}/{a}' for p, a in choices)}")
