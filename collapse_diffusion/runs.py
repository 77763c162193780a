"""A study's run directory: created from one config, refused for another, resumed from its files.

    RUN/config.yaml          the resolved config (a different config is refused)
    RUN/seed_<s>/            with study.seeds of two or more: one complete single-seed study per seed,
                             laid out as below; RUN/metrics.jsonl then holds the rows of every seed
    RUN/real.npz             the real pool: R = D_1 in the first N rows, unused real images after
    RUN/extractor_data.npz   labelled real images the FD classifier trains on (cached in RUN/extractor)
    RUN/shared/cycle_01/     D_1, its model and samples: shared by every paradigm and arm
    RUN/<paradigm>/<arm>/cycle_NN/   train.npz, model/, samples.npz, metrics.json, nn.png, ...
    RUN/metrics.jsonl        one row per paradigm, arm and cycle; written when the study completes
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from . import distributed
from .config import ExperimentConfig, check_same_config, save_config
from .cycle import Study, metrics_row, run_cycle, stage_select
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
    check_same_config(saved, cfg, str(root))
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


def seed_configs(cfg: ExperimentConfig) -> list[ExperimentConfig]:
    """One single-seed config per replicate (study.seeds; none given: the top-level seed)."""
    seeds = cfg.study.seeds or (cfg.seed,)
    return [dataclasses.replace(cfg, seed=s, study=dataclasses.replace(cfg.study, seeds=())) for s in seeds]


def open_studies(root: Path, cfg: ExperimentConfig | None = None) -> list[Study]:
    """The single-seed studies of ``root``: itself, or RUN/seed_<s> for each of two or more seeds."""
    root = Path(root)
    if cfg is None:
        if not (root / "config.yaml").exists():
            open_study(root)  # raises: not a run directory
        cfg = _saved(root)
    configs = seed_configs(cfg)
    if distributed.is_main() and root.is_dir():
        from .io import remove_stale_temporaries
        remove_stale_temporaries(root)  # what a killed run left half-written
    if len(configs) == 1:
        return [open_study(root, cfg if not cfg.study.seeds else configs[0])]
    _guard(root, cfg)
    studies = [open_study(root / f"seed_{c.seed}", c) for c in configs]
    if distributed.is_main() and not (root / "config.yaml").exists():
        save_config(cfg, root / "config.yaml")
    return studies


def _saved(root: Path) -> ExperimentConfig:
    from .config import load_config
    return load_config(root / "config.yaml")


def _guard(root: Path, cfg: ExperimentConfig, ignore: tuple[str, ...] = ()) -> None:
    check_same_config(root / "config.yaml", cfg, str(root), ignore)


def run_study(study: Study) -> Path:
    """Every cycle of every arm of one single-seed study, then metrics.jsonl (resumable)."""
    run_studies([study], study.root)
    return study.root / "metrics.jsonl"


def run_studies(studies: list[Study], root: Path) -> Path:
    """Every cycle of every arm of every seed, cycle by cycle; a cycle's trainings run in parallel
    worker processes on CPU (study.workers). Then metrics.jsonl. Idempotent and resumable."""
    cfg = studies[0].cfg
    progress = _Progress(sum(len(_jobs(s, c)) for s in studies for c in range(1, cfg.study.cycles + 1)))
    workers = _workers(cfg, max(len(_jobs(s, 2)) for s in studies) * len(studies))
    for s in studies:  # the FD extractor is trained once, here, before workers read its cache
        s.extractor
    quiet = os.environ.get("TQDM_DISABLE")
    if workers > 1:
        os.environ["TQDM_DISABLE"] = "1"  # workers inherit it at spawn: no progress bars interleaved
    pool = ProcessPoolExecutor(workers, mp_context=_spawn(), initializer=_init_worker) if workers > 1 else None
    try:
        for cycle in range(1, cfg.study.cycles + 1):
            jobs = [(s, p, a) for s in studies for p, a in _jobs(s, cycle)]
            if pool is None:
                for s, p, a in jobs:
                    progress.done(produce(s, p, a, cycle))
            else:
                futures = [pool.submit(_produce_job, str(s.root), p, a, cycle) for s, p, a in jobs]
                for f in futures:
                    progress.done(f.result())
            if cycle < cfg.study.cycles:
                for s in studies:
                    for p, a in arms(s):
                        distributed.main_first(stage_select, s, p, a, cycle)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if quiet is None:
            os.environ.pop("TQDM_DISABLE", None)
    for s in studies:
        distributed.main_first(write_metrics, s)
    if len(studies) > 1 and distributed.is_main():
        rows = [line for s in studies for line in (s.root / "metrics.jsonl").read_text().splitlines()]
        atomic_write_text(root / "metrics.jsonl", "".join(line + "\n" for line in rows))
    return root / "metrics.jsonl"


def _jobs(study: Study, cycle: int) -> list[tuple[str, str]]:
    """The (paradigm, arm) folders of one cycle: cycle 1 is one shared folder."""
    return arms(study)[:1] if cycle == 1 else arms(study)


def produce(study: Study, paradigm: str, arm: str, cycle: int) -> dict:
    """Train, sample and evaluate one cycle of one arm (files skipped when present); its metrics row."""
    with distributed.cpu_threads(study.cfg.train.threads):
        run_cycle(study, paradigm, arm, cycle, select_next=False)
    return metrics_row(study, paradigm, arm, cycle)


_WORKER_STUDIES: dict[str, Study] = {}


def _produce_job(root: str, paradigm: str, arm: str, cycle: int) -> dict:
    if root not in _WORKER_STUDIES:
        _WORKER_STUDIES[root] = open_study(Path(root))
    return produce(_WORKER_STUDIES[root], paradigm, arm, cycle)


def _init_worker() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")


def _spawn():
    import multiprocessing
    return multiprocessing.get_context("spawn")


def _workers(cfg: ExperimentConfig, jobs: int) -> int:
    """study.workers, or up to two per CPU core (at most one per job); 1 on CUDA and under torchrun.

    Two per core: three single-thread trainings on two cores finish together in 1.6x the time of one
    (measured: 89 against 54 ms per step), where two workers would take two rounds."""
    if distributed.world_size() > 1 or distributed.local_device(cfg.train.device).type == "cuda":
        return 1
    per = cfg.train.threads or 1
    return max(1, min(cfg.study.workers or 2 * (os.cpu_count() or 1) // per, jobs))


class _Progress:
    """One status line per finished arm-cycle: its metrics, k of K, elapsed and ETA."""

    def __init__(self, total: int):
        self.total, self.k, self.t0 = total, 0, time.perf_counter()

    def done(self, row: dict) -> None:
        self.k += 1
        el = time.perf_counter() - self.t0
        eta = el / self.k * (self.total - self.k)
        fd = f" {row.get('fd_label', 'FD')} {row['fd']:.2f}" if row.get("fd") is not None else ""
        lin = row.get("memorization_rate_lineage")
        log.info("[%d/%d] seed %d %s/%s cycle %d: mem %.3f%s GS %.1f H(D_n) %.1f%s | %s elapsed, ETA %s",
                 self.k, self.total, row["seed"], row["paradigm"], row["arm"] if row["cycle"] > 1 else "*",
                 row["cycle"], row["memorization_rate"], f" (lineage {lin:.3f})" if lin is not None else "",
                 row["generalization_score"], row["entropy_train"], fd, _clock(el), _clock(eta))


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s"


def write_metrics(study: Study) -> Path:
    rows = [metrics_row(study, p, a, c) for p, a in arms(study) for c in range(1, study.cfg.study.cycles + 1)]
    path = study.root / "metrics.jsonl"
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    log.info("wrote %s (%d rows)", path, len(rows))
    return path
