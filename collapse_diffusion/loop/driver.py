"""Driving studies to completion (docs/method.md §1): each seed's shared cycle 1, then every chain
(loop/chains.py) cycle by cycle, in parallel worker processes on a CPU or one per GPU; then
metrics.jsonl. Idempotent and resumable: every stage skips what its files already hold.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

from ..core import lock
from ..core.errors import UserError
from ..core.io import atomic_write_text, remove_stale_temporaries
from ..core.layout import RunLayout
from ..diffusion import distributed
from .chains import SHARED, Chain, chains, parse_chains, placement
from .config import ExperimentConfig
from .stages import metrics_row, run_cycle, stage_select
from .study import Study, open_studies, open_study, resolve_arm

log = logging.getLogger(__name__)


def cycle_command(study: Study, spec: str, cycle: int) -> Path:
    """Run one cycle of one arm (the CLI's `cycle`), holding its chain (and for cycle 1 the shared
    cycle) against other processes; D_n is selected first when the previous cycle is done and it
    is missing, so `cycle RUN p/a n` needs only cycle n-1 finished (the Makefile's targets)."""
    paradigm, arm = resolve_arm(study, spec)
    if not 1 <= cycle <= study.cfg.study.cycles:
        raise UserError(f"cycle must be between 1 and {study.cfg.study.cycles}")
    with ExitStack() as held:
        held.enter_context(distributed.cpu_threads(study.cfg.runtime.threads))
        for part in ([SHARED] if cycle == 1 else []) + [chain_part(paradigm, arm)]:
            held.enter_context(_rank0(lock.part, study.root, part))
        clean_parts(study, [(paradigm, arm)], shared=cycle == 1)
        if cycle > 1 and not study.files(paradigm, arm, cycle).train.exists():
            if not study.files(paradigm, arm, cycle - 1).metrics.exists():
                raise UserError(f"D_{cycle} of {paradigm}/{arm} does not exist yet; run cycle {cycle - 1} first")
            distributed.run_on_main(stage_select, study, paradigm, arm, cycle - 1)
        return run_cycle(study, paradigm, arm, cycle)


def run_only(root: Path, cfg: ExperimentConfig, specs: list[str], wait: bool) -> list[Chain]:
    """`run --only`: some chains of a study, beside other processes that work on other chains of
    the same run directory (a `make -j` target, a SLURM array task, a GPU of its own). Their seeds'
    cycle 1 comes first, made here unless another process has made it or is making it (then this
    one waits for it). Returns the chains run; `run` without --only merges them into metrics.jsonl."""
    wanted = parse_chains(cfg, specs)
    with ExitStack() as held:
        held.enter_context(_rank0(lock.shared, root, wait))
        with _rank0(lock.part, root, "init"):  # chain jobs started at once on a fresh folder: one initialises
            studies = open_studies(root, cfg, clean=False)
        seeds = list(dict.fromkeys(c.seed for c in wanted))
        mine = [s for s in studies if s.cfg.seed in seeds]
        for s in mine:
            if s.root != root:
                held.enter_context(_rank0(lock.shared, s.root, wait))
        with ExitStack() as first:
            for s in mine:
                first.enter_context(_rank0(lock.part, s.root, SHARED))
                clean_parts(s, [], shared=True)
            run_studies(mine, root, only=[Chain(seed, SHARED) for seed in seeds])
        rest = [c for c in wanted if not c.shared]
        for c in rest:
            s = next(x for x in mine if x.cfg.seed == c.seed)
            held.enter_context(_rank0(lock.part, s.root, chain_part(c.paradigm, c.arm)))
            clean_parts(s, [(c.paradigm, c.arm)], shared=False)
        if rest:
            run_studies(mine, root, only=rest)
    return wanted


def _rank0(locker, *args):
    """A lock held by rank 0 alone: torchrun's ranks work on one run together."""
    from contextlib import nullcontext
    return locker(*args) if distributed.is_main() else nullcontext()


def chain_part(paradigm: str, arm: str) -> str:
    """The lock name of a chain's folder (core/lock.py)."""
    return f"{paradigm}.{arm}"


def clean_parts(study: Study, arms: list[tuple[str, str]], shared: bool) -> None:
    """What a killed process left half-written in the parts of ``study`` this process now holds."""
    if not distributed.is_main():
        return
    folders = [study.layout.shared.dir] if shared else []
    folders += [study.root / p / a for p, a in arms]
    for folder in folders:
        if folder.exists():
            remove_stale_temporaries(folder)


def run_study(study: Study) -> Path:
    """Every cycle of every arm of one single-seed study, then metrics.jsonl (resumable)."""
    return run_studies([study], study.root)


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
    slots = placement(cfg, sum(max(1, len(wanted[s.root])) for s in studies))
    with distributed.cpu_threads(cfg.runtime.threads):  # every stage on runtime.threads, wherever it runs
        return _drive(studies, root, wanted, slots, only is None)


def _drive(studies: list[Study], root: Path, wanted: dict, slots: list[str], merge: bool) -> Optional[Path]:
    cfg = studies[0].cfg
    progress = _Progress(sum(1 + len(wanted[s.root]) * (cfg.study.cycles - 1) for s in studies))
    for s in studies:  # the FD extractor is trained once, here, before workers read its cache
        s.extractor
    quiet = os.environ.get("TQDM_DISABLE")
    if len(slots) > 1:
        os.environ["TQDM_DISABLE"] = "1"  # workers inherit it at spawn: no progress bars interleaved
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
        if quiet is None:
            os.environ.pop("TQDM_DISABLE", None)
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
    worker) and given one arm-cycle at a time; with the single slot 'main' every job runs here, in
    the order it is started (the same on every torchrun rank)."""

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
        self.busy[slot] = (_submit(self.pools[slot], study, paradigm, arm, cycle), key)

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
    with distributed.cpu_threads(study.cfg.runtime.threads):
        run_cycle(study, paradigm, arm, cycle, select_next=False)
    return metrics_row(study, paradigm, arm, cycle)


_WORKER_STUDIES: dict[str, Study] = {}


def _produce_job(root: str, paradigm: str, arm: str, cycle: int) -> dict:
    if root not in _WORKER_STUDIES:
        _WORKER_STUDIES[root] = open_study(Path(root))
    return produce(_WORKER_STUDIES[root], paradigm, arm, cycle)


def _submit(pool: ProcessPoolExecutor, study: Study, paradigm: str, arm: str, cycle: int) -> Future:
    """One arm-cycle in a worker. Workers the pool starts meanwhile begin with Ctrl-C ignored
    (SIG_IGN is inherited across exec), so an interrupt reaches the study process alone, at any moment."""
    import signal
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return pool.submit(_produce_job, str(study.root), paradigm, arm, cycle)
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
    ('cpu:1') changes nothing. The slot is recorded beside each stage's time (timings.jsonl)."""
    distributed.SLOT = slot
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
