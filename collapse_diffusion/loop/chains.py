"""A study as units of work (docs/method.md §1): the shared cycle 1 of each seed, then one
independent **chain** per (seed, paradigm, arm), cycles 2..C. After cycle 1 a chain reads only its
own folder (and the shared cycle 1), so chains run side by side in any split: worker processes,
`make -j`, one per GPU, a SLURM array. Every stage is idempotent, so the full study is the sum of its
chains whatever the split, and `run` without `--only` merges them into the same metrics.jsonl.

Names: ``SEED/PARADIGM/ARM`` (``PARADIGM/ARM`` or ``ARM`` where the study has one seed or one
paradigm), ``SEED/shared`` for a seed's cycle 1 alone and ``shared`` for every seed's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from ..core.errors import UserError
from ..core.layout import RunLayout
from .experiment import ExperimentConfig

SHARED = "shared"


@dataclass(frozen=True)
class Chain:
    """Cycles 2..C of one (seed, paradigm, arm); ``paradigm == 'shared'`` is the seed's cycle 1 alone."""
    seed: int
    paradigm: str
    arm: str = ""

    @property
    def name(self) -> str:
        return f"{self.seed}/{SHARED}" if self.shared else f"{self.seed}/{self.paradigm}/{self.arm}"

    @property
    def shared(self) -> bool:
        return self.paradigm == SHARED


def seeds_of(cfg: ExperimentConfig) -> tuple[int, ...]:
    return cfg.study.seeds or (cfg.seed,)


def chains(cfg: ExperimentConfig) -> list[Chain]:
    """Every chain of a study, seed by seed, in the order of study.paradigms and study.arms."""
    return [Chain(s, p, a.name) for s in seeds_of(cfg) for p in cfg.study.paradigms for a in cfg.study.arms]


def parse_chains(cfg: ExperimentConfig, specs: list[str]) -> list[Chain]:
    """``--only`` values as chains, each once, in the study's order; a name the study does not hold
    is a UserError that lists the names it does."""
    every = chains(cfg)
    wanted: list[Chain] = []
    for spec in specs:
        for part in filter(None, (p.strip() for p in spec.split(","))):
            found = _match(cfg, part, every)
            if found is None:
                names = ", ".join(c.name for c in every)
                raise UserError(f"--only '{part}' is not a chain of this study; chains: {names} "
                                f"(and SEED/{SHARED} for a seed's cycle 1)")
            wanted += [c for c in found if c not in wanted]
    return wanted


def _match(cfg: ExperimentConfig, part: str, every: list[Chain]) -> Optional[list[Chain]]:
    bits = part.split("/")
    seeds = seeds_of(cfg)
    if bits == [SHARED]:  # every seed's cycle 1
        return [Chain(s, SHARED) for s in seeds]
    if bits[0].isdigit():
        if int(bits[0]) not in seeds:
            return None
        seed, bits = int(bits[0]), bits[1:]
    elif len(seeds) == 1:
        seed = seeds[0]
    else:
        return None  # several seeds: the seed must be named
    if bits == [SHARED]:
        return [Chain(seed, SHARED)]
    if len(bits) == 1 and len(cfg.study.paradigms) == 1:
        bits = [cfg.study.paradigms[0], bits[0]]
    hit = [c for c in every if c.seed == seed and [c.paradigm, c.arm] == bits]
    return hit or None


def make_rules(cfg: ExperimentConfig, run: str, cli: str = "$(CD)") -> str:
    """Makefile rules for one study (`collapse-diffusion chains --make`): a file target per chain
    and cycle, so `make -j N` runs chains side by side and a rerun does only what is missing.

    Every target is a finished cycle's metrics.json; its recipe is `collapse-diffusion cycle`, which
    selects the cycle's training set from the previous cycle when it is missing. RUN/config.yaml is
    an order-only prerequisite: its own rule (`init`) refuses a changed config with the keys that
    differ, and touching it does not redo finished cycles. RUN/metrics.jsonl depends on
    CHAIN_TARGETS, every chain's last cycle, and is written by `run`, which finds every stage done.
    JOBS, the default of `make -j`, is the worker slots the driver would use on this CPU."""
    several = len(seeds_of(cfg)) > 1
    lines = [f"# made by `collapse-diffusion chains --make` for {run}: one target per chain and cycle", ""]
    last: list[str] = []
    layout = RunLayout(run)
    for seed in seeds_of(cfg):
        study = layout.seed(seed) if several else layout
        first = study.shared.metrics
        p0, a0 = cfg.study.paradigms[0], cfg.study.arms[0].name
        lines += [f"{first}: | {layout.config}", f"\t{cli} cycle {study.root} {p0}/{a0} 1 --wait", ""]
        for chain in (c for c in chains(cfg) if c.seed == seed):
            before = first
            for cycle in range(2, cfg.study.cycles + 1):
                target = study.cycle(chain.paradigm, chain.arm, cycle).metrics
                lines += [f"{target}: {before}",
                          f"\t{cli} cycle {study.root} {chain.paradigm}/{chain.arm} {cycle} --wait", ""]
                before = target
            last.append(before)
    jobs = len(placement(cfg, len(chains(cfg)), gpus=0))
    lines += [f"CHAIN_TARGETS := {' '.join(map(str, last))}", f"JOBS ?= {jobs}", ""]
    return "\n".join(lines)


def placement(cfg: ExperimentConfig, jobs: int, gpus: Optional[int] = None) -> list[str]:
    """The worker slots of a study: one process per slot, each job on whichever slot is free.

    On a machine with several GPUs and runtime.device 'auto' or 'cuda', one slot per GPU
    (runtime.workers, when set, caps them): chains run side by side, one per GPU, and a result does
    not depend on the GPU it ran on. On CPU, runtime.workers slots, or up to two per core (a
    cycle's single-thread trainings are overhead-bound, so three on two cores end in one round
    rather than two: benchmarks/RESULTS.md, "Training"). One slot under torchrun, on one GPU, or
    on a named GPU (DDP and single-device runs train one model at a time). Never more than ``jobs``."""
    from ..core import runtime as distributed
    device = cfg.runtime.device
    if distributed.world_size() > 1:
        return ["main"]
    if gpus is None:
        import torch
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus and device in ("auto", "cuda"):
        n = min(gpus, cfg.runtime.workers or gpus, jobs)
        return [f"cuda:{i}" for i in range(n)] if n > 1 else ["main"]
    if distributed.local_device(device).type == "cuda":
        return ["main"]
    per = cfg.runtime.threads or 1
    n = max(1, min(cfg.runtime.workers or 2 * (os.cpu_count() or 1) // per, jobs))
    return [f"cpu:{i}" for i in range(n)] if n > 1 else ["main"]
