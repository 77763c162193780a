"""What the CLI's loop commands call: each takes parsed arguments, holds the run directory's locks
as the policy below says, and runs the loop (docs/method.md §1).

Lock policy (core/lock.py), held by rank 0 alone (torchrun's ranks work on one run together):

- a whole-run command (`run` without --only, `init`, `phase`) holds RUN/.lock exclusive and, with
  several seeds, each seed's folder too: no chain command works on any of them meanwhile;
- a chain command (`run --only`, `cycle`, `select` in a run) holds RUN/.lock shared, so chains run
  side by side (`make -j`, a SLURM array, one per GPU), and its chain's folder (and for cycle 1 the
  shared cycle) exclusive: one process per chain.
"""
from __future__ import annotations

from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Optional

from ..core import lock
from ..core import runtime as distributed
from ..core.errors import UserError
from ..core.io import remove_stale_temporaries
from .chains import SHARED, Chain, parse_chains, seeds_of
from .driver import run_studies
from .experiment import ExperimentConfig
from .stages import run_cycle, stage_select
from .study import Study, open_studies, open_study, resolve_arm


def run_lock(root: Path, wait: bool, shared: bool = False):
    """RUN/.lock on rank 0: exclusive, or shared with other chain commands."""
    if not distributed.is_main():
        return nullcontext()
    return lock.shared(root, wait) if shared else lock.exclusive(root, wait)


def whole_run(root: Path, cfg: ExperimentConfig, wait: bool) -> ExitStack:
    """RUN/.lock alone and, with several seeds, each seed's folder alone too."""
    stack = ExitStack()
    stack.enter_context(run_lock(root, wait))
    if len(seeds_of(cfg)) > 1:
        for s in seeds_of(cfg):
            stack.enter_context(run_lock(root / f"seed_{s}", wait))
    return stack


def _rank0(locker, *args):
    """A lock held by rank 0 alone."""
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


def _reopen(root: Path, wait: bool):
    """RUN/.lock shared, and the study of ``root`` reopened under it (refused: not a run directory)."""
    if not (Path(root) / "config.yaml").exists():
        open_study(root)  # refuses: not a run directory
    return run_lock(root, wait, shared=True)


def run_command(root: Path, cfg: ExperimentConfig, wait: bool) -> Path:
    """`run`: every chain of every seed of ``root`` (resuming), then metrics.jsonl."""
    with whole_run(root, cfg, wait):
        return run_studies(open_studies(root, cfg), root)


def init_command(root: Path, cfg: ExperimentConfig, wait: bool) -> None:
    """`init`: the run directory (config, real pool, D_1) without running anything."""
    with whole_run(root, cfg, wait):
        open_studies(root, cfg)


def cycle_command(root: Path, spec: str, cycle: int, wait: bool) -> Path:
    """`cycle`: one cycle of one arm, holding its chain (and for cycle 1 the shared cycle) against
    other processes; D_n is selected first when the previous cycle is done and it is missing, so
    `cycle RUN p/a n` needs only cycle n-1 finished (the Makefile's targets)."""
    with _reopen(root, wait):  # other chains may run beside it; its own is locked below
        study = open_study(root)
        distributed.init(distributed.local_device(study.cfg.runtime.device))
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


def select_command(root: Path, spec: str, cycle: Optional[int]) -> Path:
    """`select` in a run: D_{cycle+1} of one arm from the pool of cycles 1..cycle, as `run` writes it
    between cycles; the path of the training set written."""
    with _reopen(root, False):
        study = open_study(root)
        paradigm, arm = resolve_arm(study, spec)
        last = study.cfg.study.cycles - 1
        if cycle is None or not 1 <= cycle <= last:
            raise UserError(f"run form: pass --cycle between 1 and {last} (D_{{cycle+1}} is chosen from cycles "
                            f"1..cycle)")
        missing = [i for i in range(1, cycle + 1) if not study.files(paradigm, arm, i).samples.exists()]
        if missing:
            raise UserError(f"cycle {missing[0]} of {paradigm}/{arm} has no samples yet; run it first "
                            f"(collapse-diffusion cycle {root} {paradigm}/{arm} {missing[0]})")
        with lock.part(root, chain_part(paradigm, arm)), distributed.cpu_threads(study.cfg.runtime.threads):
            stage_select(study, paradigm, arm, cycle)
    return study.files(paradigm, arm, cycle + 1).train


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
