"""Driving studies to completion (docs/method.md §1): each seed's shared cycle 1, then every chain
(loop/chains.py) cycle by cycle, in parallel worker processes on a CPU or one per GPU; then
metrics.jsonl. Idempotent and resumable: every stage skips what its files already hold.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

from ..core import runtime as distributed
from ..core.io import atomic_write_text
from ..core.layout import RunLayout
from .chains import Chain, chains, placement
from .stages import metrics_row, run_cycle, stage_select
from .study import Study, open_study

log = logging.getLogger(__name__)


def run_studies(studies: list[Study], root: Path, only: Optional[list[Chain]] = None) -> Optional[Path]:
    """Every chain of every study (``only``: just these chains, and their seeds' cycle 1), then each
    study's metrics.jsonl and, for several, RUN's (not with ``only``: the full run merges).

    Cycle 1 of each seed comes first; then each chain's next cycle is started as soon as its
    previous one is done (no waiting for the other arms), in worker processes on CPU
    (runtime.workers) or one per GPU (:func:`placement`)."""
    cfg = studies[0].cfg
    studies = [s for s in studies if only is None or any(c.seed == s.cfg.seed for c in only)]
    wanted = {s.root: [(c.paradigm, c.arm) for c in (only if only is not None else chains(s.cfg))
                       if c.seed == s.cfg.seed and not c.shared] for s in studies}
    pending = any(not _done(s, p, a, c) for s in studies for p, a in [_first(s)] + wanted[s.root]
                  for c in range(1, cfg.study.cycles + 1))
    # nothing to compute (the Makefile's final `run`): no worker processes, no model code imported
    slots = placement(cfg, sum(max(1, len(wanted[s.root])) for s in studies)) if pending else ["main"]
    # every stage on runtime.threads, wherever it runs (nothing to run: torch is not even imported)
    with distributed.cpu_threads(cfg.runtime.threads) if pending else nullcontext():
        return _drive(studies, root, wanted, slots, only is None, pending)


def _done(study: Study, paradigm: str, arm: str, cycle: int) -> bool:
    """Whether every file the cycle's stages write is there (they are checked when reused)."""
    f = study.files(paradigm, arm, cycle)
    return all(p.exists() for p in (f.model, f.samples, f.metrics, f.nn))


def _drive(studies: list[Study], root: Path, wanted: dict, slots: list[str], merge: bool,
           pending: bool = True) -> Optional[Path]:
    cfg = studies[0].cfg
    progress = _Progress(sum(1 + len(wanted[s.root]) * (cfg.study.cycles - 1) for s in studies))
    for s in studies if pending else ():  # the FD extractor is trained once, here, before workers read its cache
        s.extractor
    workers = _Workers(slots)
    try:
        todo = [(s, None, 1) for s in studies]  # (study, (paradigm, arm) or None for cycle 1, cycle)
        while todo or workers.busy:
            while todo and workers.free():
                s, chain, cycle = todo.pop(0)
                workers.start((s, chain, cycle), s, *(chain or _first(s)), cycle)
            for (s, chain, cycle), row in workers.finished():
                progress.done(row)
                following = wanted[s.root] if chain is None else [chain]
                for p, a in following if cycle < cfg.study.cycles else ():
                    distributed.run_on_main(stage_select, s, p, a, cycle)
                    todo.append((s, (p, a), cycle + 1))
    except BaseException:  # an interrupt or a failed job: leave at once; workers die with this process
        workers.close(now=True)
        raise
    finally:
        workers.close()
    if not merge:
        return None
    for s in studies:
        distributed.run_on_main(write_metrics, s)
    out = RunLayout(root).metrics
    if len(studies) > 1 and distributed.is_main():
        rows = [line for s in studies for line in s.layout.metrics.read_text().splitlines()]
        atomic_write_text(out, "".join(line + "\n" for line in rows))
    return out


class _Workers:
    """One worker process per slot (:func:`placement`), each pinned to its slot (one GPU, or a CPU
    worker) and given one arm-cycle at a time, its studies opened with that slot and without progress
    bars; with the single slot 'main' every job runs here, in the order it is started (the same on
    every torchrun rank)."""

    def __init__(self, slots: list[str]):
        self.slots = slots
        self.pools: dict[str, ProcessPoolExecutor] = {}
        self.busy: dict[str, tuple[Future, tuple]] = {}
        self.done: list[tuple[tuple, dict]] = []

    def free(self) -> bool:
        return len(self.busy) < len(self.slots)

    def start(self, key: tuple, study: Study, paradigm: str, arm: str, cycle: int) -> None:
        if self.slots == ["main"]:
            self.done.append((key, produce(study, paradigm, arm, cycle)))
            self.busy["main"] = (None, key)
            return
        slot = next(x for x in self.slots if x not in self.busy)
        if slot not in self.pools:
            self.pools[slot] = ProcessPoolExecutor(1, mp_context=_spawn(), initializer=_init_worker,
                                                   initargs=(os.getpid(), slot))
        self.busy[slot] = (_submit(self.pools[slot], slot, study, paradigm, arm, cycle), key)

    def finished(self) -> list[tuple[tuple, dict]]:
        """The jobs that have ended, in the order of the slots: (key, metrics row)."""
        if self.slots == ["main"]:
            out, self.done, self.busy = self.done, [], {}
            return out
        wait([f for f, _ in self.busy.values()], return_when=FIRST_COMPLETED)
        out = []
        for slot in [x for x in self.slots if x in self.busy and self.busy[x][0].done()]:
            f, key = self.busy.pop(slot)
            out.append((key, f.result()))
        return out

    def close(self, now: bool = False) -> None:
        for pool in self.pools.values():
            pool.shutdown(wait=not now, cancel_futures=True)
        self.pools = {}


def _first(study: Study) -> tuple[str, str]:
    """Any (paradigm, arm) names cycle 1: it is one shared folder."""
    return study.arms()[0]


def produce(study: Study, paradigm: str, arm: str, cycle: int) -> dict:
    """Train, sample and evaluate one cycle of one arm (files skipped when present); its metrics row."""
    done = _done(study, paradigm, arm, cycle)  # its finished files are checked, nothing computed
    with distributed.cpu_threads(study.cfg.runtime.threads) if not done else nullcontext():
        run_cycle(study, paradigm, arm, cycle, select_next=False)
    return metrics_row(study, paradigm, arm, cycle)


_WORKER_STUDIES: dict[str, Study] = {}  # a worker process's studies, opened once (their features cached)


def _produce_job(root: str, slot: str, paradigm: str, arm: str, cycle: int) -> dict:
    if root not in _WORKER_STUDIES:
        _WORKER_STUDIES[root] = dataclasses.replace(open_study(Path(root)), slot=slot, progress=False)
    return produce(_WORKER_STUDIES[root], paradigm, arm, cycle)


def _submit(pool: ProcessPoolExecutor, slot: str, study: Study, paradigm: str, arm: str, cycle: int) -> Future:
    """One arm-cycle in a worker. Workers the pool starts meanwhile begin with Ctrl-C ignored
    (SIG_IGN is inherited across exec), so an interrupt reaches the study process alone, at any moment."""
    import signal
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return pool.submit(_produce_job, str(study.root), slot, paradigm, arm, cycle)
    finally:
        signal.signal(signal.SIGINT, before)


def _init_worker(parent: int, slot: str) -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the study process's to report, once
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    _die_with_parent(parent)
    pin(slot)


def pin(slot: str) -> None:
    """Pin this worker process to its slot before anything touches CUDA: a GPU slot ('cuda:2')
    becomes the only GPU it sees, so its `auto` and `cuda` devices are that GPU; a CPU slot
    ('cpu:1') changes nothing. The slot itself travels with each job (``Study.slot``)."""
    if slot.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = slot.split(":")[1]


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
