"""Driving single-seed studies to completion (docs/method.md §1): every cycle of every paradigm,
arm and seed, cycle by cycle, the trainings of a cycle in parallel worker processes on a CPU;
then metrics.jsonl. Idempotent and resumable: every stage skips what its files already hold.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..core.errors import UserError
from ..core.io import atomic_write_text
from ..core.layout import RunLayout
from ..diffusion import distributed
from .config import ExperimentConfig
from .stages import metrics_row, run_cycle, stage_select
from .study import Study, open_study, resolve_arm

log = logging.getLogger(__name__)


def cycle_command(study: Study, spec: str, cycle: int) -> Path:
    """Run one cycle of one arm (the CLI's `cycle`); the previous cycle must have produced D_n."""
    paradigm, arm = resolve_arm(study, spec)
    if not 1 <= cycle <= study.cfg.study.cycles:
        raise UserError(f"cycle must be between 1 and {study.cfg.study.cycles}")
    if not study.files(paradigm, arm, cycle).train.exists():
        raise UserError(f"D_{cycle} of {paradigm}/{arm} does not exist yet; run cycle {cycle - 1} first")
    return run_cycle(study, paradigm, arm, cycle)


def run_study(study: Study) -> Path:
    """Every cycle of every arm of one single-seed study, then metrics.jsonl (resumable)."""
    return run_studies([study], study.root)


def run_studies(studies: list[Study], root: Path) -> Path:
    """Every cycle of every arm of every study, cycle by cycle; a cycle's trainings run in parallel
    worker processes on CPU (runtime.workers). Then each study's metrics.jsonl and, for several, RUN's."""
    cfg = studies[0].cfg
    progress = _Progress(sum(len(_jobs(s, c)) for s in studies for c in range(1, cfg.study.cycles + 1)))
    workers = _workers(cfg, max(len(_jobs(s, 2)) for s in studies) * len(studies))
    for s in studies:  # the FD extractor is trained once, here, before workers read its cache
        s.extractor
    quiet = os.environ.get("TQDM_DISABLE")
    if workers > 1:
        os.environ["TQDM_DISABLE"] = "1"  # workers inherit it at spawn: no progress bars interleaved
    pool = (ProcessPoolExecutor(workers, mp_context=_spawn(), initializer=_init_worker, initargs=(os.getpid(),))
            if workers > 1 else None)
    try:
        for cycle in range(1, cfg.study.cycles + 1):
            jobs = [(s, p, a) for s in studies for p, a in _jobs(s, cycle)]
            if pool is None:
                for s, p, a in jobs:
                    progress.done(produce(s, p, a, cycle))
            else:
                futures = _submit(pool, [(str(s.root), p, a, cycle) for s, p, a in jobs])
                for f in futures:
                    progress.done(f.result())
            if cycle < cfg.study.cycles:
                for s in studies:
                    for p, a in s.arms():
                        distributed.run_on_main(stage_select, s, p, a, cycle)
    except BaseException:  # an interrupt or a failed job: leave at once; workers die with this process
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            pool = None
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if quiet is None:
            os.environ.pop("TQDM_DISABLE", None)
    for s in studies:
        distributed.run_on_main(write_metrics, s)
    out = RunLayout(root).metrics
    if len(studies) > 1 and distributed.is_main():
        rows = [line for s in studies for line in s.layout.metrics.read_text().splitlines()]
        atomic_write_text(out, "".join(line + "\n" for line in rows))
    return out


def _jobs(study: Study, cycle: int) -> list[tuple[str, str]]:
    """The (paradigm, arm) folders of one cycle: cycle 1 is one shared folder."""
    return study.arms()[:1] if cycle == 1 else study.arms()


def produce(study: Study, paradigm: str, arm: str, cycle: int) -> dict:
    """Train, sample and evaluate one cycle of one arm (files skipped when present); its metrics row."""
    with distributed.cpu_threads(study.cfg.runtime.threads):
        run_cycle(study, paradigm, arm, cycle, select_next=False)
    return metrics_row(study, paradigm, arm, cycle)


_WORKER_STUDIES: dict[str, Study] = {}


def _produce_job(root: str, paradigm: str, arm: str, cycle: int) -> dict:
    if root not in _WORKER_STUDIES:
        _WORKER_STUDIES[root] = open_study(Path(root))
    return produce(_WORKER_STUDIES[root], paradigm, arm, cycle)


def _submit(pool: ProcessPoolExecutor, jobs: list[tuple]) -> list:
    """Submit the jobs; the workers the pool starts meanwhile begin with Ctrl-C ignored (SIG_IGN is
    inherited across exec), so an interrupt reaches the study process alone, at any moment."""
    import signal
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return [pool.submit(_produce_job, *job) for job in jobs]
    finally:
        signal.signal(signal.SIGINT, before)


def _init_worker(parent: int) -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the study process's to report, once
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """On Linux, a worker is killed when the study process ``parent`` dies (kill -9 included):
    otherwise it would finish its training unseen and race the resumed run for the same files. The
    parent's PID comes from the parent itself, so a parent that died while this worker was still
    starting (before the signal was armed) is noticed too."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _spawn():
    import multiprocessing
    return multiprocessing.get_context("spawn")


def _workers(cfg: ExperimentConfig, jobs: int) -> int:
    """runtime.workers, or up to two per CPU core (at most one per job); 1 on CUDA and under torchrun.

    Two per core: a cycle's single-thread trainings are overhead-bound, so three on two cores end in
    one round rather than two (benchmarks/RESULTS.md, "Training")."""
    if distributed.world_size() > 1 or distributed.local_device(cfg.runtime.device).type == "cuda":
        return 1
    per = cfg.runtime.threads or 1
    return max(1, min(cfg.runtime.workers or 2 * (os.cpu_count() or 1) // per, jobs))


class _Progress:
    """One status line per finished arm-cycle: its headline metrics, k of K, elapsed and ETA."""

    def __init__(self, total: int):
        self.total, self.k, self.t0 = total, 0, time.perf_counter()

    def done(self, row: dict) -> None:
        from .rows import headline
        self.k += 1
        el = time.perf_counter() - self.t0
        eta = el / self.k * (self.total - self.k)
        log.info("[%d/%d] seed %d %s/%s cycle %d: %s | %s elapsed, ETA %s", self.k, self.total, row["seed"],
                 row["paradigm"], row["arm"] if row["cycle"] > 1 else "*", row["cycle"], headline(row),
                 _clock(el), _clock(eta))


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s"


def write_metrics(study: Study) -> Path:
    rows = [metrics_row(study, p, a, c) for p, a in study.arms() for c in range(1, study.cfg.study.cycles + 1)]
    path = study.layout.metrics
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    log.info("wrote %s (%d rows)", path, len(rows))
    return path
