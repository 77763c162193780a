"""A study's run directory: created from one config, refused for another, resumed from its files.

    RUN/config.yaml          the resolved config (a different config is refused)
    RUN/real.npz             the real pool: R = D_1 in the first N rows, unused real images after
    RUN/extractor_data.npz   labelled real images the FD classifier trains on (cached in RUN/extractor)
    RUN/shared/cycle_01/     D_1, its model and samples: shared by every paradigm and arm
    RUN/<paradigm>/<arm>/cycle_NN/   train.npz, model/, samples.npz, metrics.json, nn.png, ...
    RUN/metrics.jsonl        one row per paradigm, arm and cycle; written when the study completes
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import yaml

from . import distributed
from .config import ExperimentConfig, save_config, to_dict
from .cycle import Study, metrics_row, run_cycle
from .data import ImageSet, balanced_order, fit_images, load_real, load_source
from .errors import UserError
from .io import atomic_write_text
from .model import check_fits
from .paradigms import real_pool_size

log = logging.getLogger(__name__)
EXTRACTOR_IMAGES = 20000  # cap on the classifier's training pool


def open_study(root: Path, cfg: ExperimentConfig | None = None) -> Study:
    """Create ``root`` for ``cfg`` or reopen it; ``cfg=None`` reopens with the saved config.

    All checks that can fail (data present, sizes, config match) run before any training starts.
    """
    root = Path(root)
    saved = root / "config.yaml"
    if cfg is None:
        if not saved.exists():
            raise UserError(f"'{root}' is not a run directory (no config.yaml); start it with `collapse-diffusion run CONFIG`")
        from .config import load_config
        return Study(root, load_config(saved))
    if saved.exists():
        if yaml.safe_load(saved.read_text()) != to_dict(cfg):
            raise UserError(f"'{root}' was started with a different config ({saved}); pass the same config "
                            f"or choose a new --run-dir")
    distributed.main_first(_init_run, root, cfg)
    if not (root / "real.npz").exists():
        raise UserError(f"could not initialise '{root}'; see the error of rank 0")
    return Study(root, cfg)


def _init_run(root: Path, cfg: ExperimentConfig) -> None:
    if not (root / "real.npz").exists():
        _init_data(root, cfg)
    if not (root / "config.yaml").exists():
        save_config(cfg, root / "config.yaml")


def _init_data(root: Path, cfg: ExperimentConfig) -> None:
    s = cfg.study
    need = real_pool_size(cfg.data.n, s.cycles, s.paradigms, s.fresh_fraction)
    full = load_source(cfg.data)
    if need > len(full):
        raise UserError(f"the study needs {need} real images (N={cfg.data.n}"
                        f"{', plus fresh ones for later cycles' if need > cfg.data.n else ''}) but "
                        f"{cfg.data.source} has {len(full)}; lower data.n")
    real = load_real(cfg.data, cfg.seed, need)
    check_fits(cfg.model.preset, real.shape[-1])
    pool = full.take(balanced_order(full.labels, cfg.seed + 1)[:EXTRACTOR_IMAGES])
    pool = ImageSet(fit_images(pool.images, cfg.data.fit, cfg.data.resolution), pool.labels, pool.provenance)
    pool.save(root / "extractor_data.npz")
    real.take(np.arange(cfg.data.n)).save(root / "shared" / "cycle_01" / "train.npz")
    real.save(root / "real.npz")


def arms(study: Study) -> list[tuple[str, str]]:
    return [(p, a.name) for p in study.cfg.study.paradigms for a in study.cfg.study.arms]


def resolve_arm(study: Study, spec: str) -> tuple[str, str]:
    """``paradigm/arm``, or ``arm`` when the study has one paradigm."""
    choices = arms(study)
    for p, a in choices:
        if spec in (f"{p}/{a}", a if len(study.cfg.study.paradigms) == 1 else None):
            return p, a
    raise UserError(f"unknown arm '{spec}'; choose from {', '.join(f'{p}/{a}' for p, a in choices)}")


def cycle_command(study: Study, spec: str, cycle: int) -> Path:
    """Run one cycle of one arm (the CLI's `cycle`); the previous cycle must have produced D_n."""
    paradigm, arm = resolve_arm(study, spec)
    if not 1 <= cycle <= study.cfg.study.cycles:
        raise UserError(f"cycle must be between 1 and {study.cfg.study.cycles}")
    if not (study.cycle_dir(paradigm, arm, cycle) / "train.npz").exists():
        raise UserError(f"D_{cycle} of {paradigm}/{arm} does not exist yet; run cycle {cycle - 1} first")
    return run_cycle(study, paradigm, arm, cycle)


def run_study(study: Study) -> Path:
    """Every cycle of every arm, cycle by cycle, then metrics.jsonl. Idempotent and resumable."""
    for cycle in range(1, study.cfg.study.cycles + 1):
        for paradigm, arm in arms(study):
            run_cycle(study, paradigm, arm, cycle)
    distributed.main_first(write_metrics, study)
    return study.root / "metrics.jsonl"


def write_metrics(study: Study) -> Path:
    rows = [metrics_row(study, p, a, c) for p, a in arms(study) for c in range(1, study.cfg.study.cycles + 1)]
    path = study.root / "metrics.jsonl"
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    log.info("wrote %s (%d rows)", path, len(rows))
    return path
