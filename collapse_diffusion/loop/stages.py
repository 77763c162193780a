"""One cycle of the self-consuming loop as files (docs/method.md §1), stage by stage, in order
(``run_cycle``; the driver runs the same stages for a whole study, selecting between cycles):

    train.npz (D_n) -> train -> model/ -> sample -> samples.npz (G_n: r*N candidates first, then
                    more images up to eval.n_generated) -> evaluate -> metrics.json, nn.npz (with
                    each sample's lineage root) -> select -> next cycle's train.npz (D_{n+1})

Each stage reads the previous stage's files (``layout.CycleFiles``), writes its own atomically,
and is skipped when they exist, so a killed run resumes where it stopped. The model code (torch,
diffusers) is imported by the stages that run it, so a process that finds every stage done (`run`
merging the rows of finished chains) starts in a second.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..core import runtime as distributed
from ..core.io import atomic_write_json, check_sealed, read_json, seal
from ..core.layout import CycleFiles, is_model
from ..core.seeds import derive_seed
from ..data.images import load_npz
from ..measure.evaluate import CycleMetrics, evaluate_to
from ..selection.paradigms import next_training_set, split_holdout
from ..selection.pipeline import ArmInputs, Chooser
from ..selection.record import SelectionReport
from .rows import cycle_row
from .study import Study

if TYPE_CHECKING:
    from ..measure.membership import MembershipReport

log = logging.getLogger(__name__)


@contextmanager
def timed(files: CycleFiles, stage: str, slot: str) -> Iterator[None]:
    """Append the stage's wall time and the worker slot that ran it (``Study.slot``) to timings.jsonl
    once it succeeds, from rank 0 only (every rank runs the stage; the time is counted once).
    Informational: nothing reads it back but the report and the benchmarks."""
    t0 = time.perf_counter()
    yield
    if distributed.is_main():
        with open(files.timings, "a") as fh:
            fh.write(json.dumps({"stage": stage, "seconds": round(time.perf_counter() - t0, 3),
                                 "slot": slot}) + "\n")


def stage_train(study: Study, f: CycleFiles, cycle: int) -> None:
    if is_model(f.model):  # finished: reused once its files are what was written
        check_sealed(f.model)
        return
    from ..diffusion.train import train
    c = study.cfg
    log.info("train %s", f.dir)
    with timed(f, "train", study.slot):
        train(load_npz(f.train).images, c.train, c.diffusion, c.model.preset, f.dir,
              derive_seed(c.seed, cycle, "train"), runtime=c.runtime, progress=study.progress)


def stage_sample(study: Study, f: CycleFiles, cycle: int, n: int) -> None:
    if f.samples.exists():  # finished: reused once its files are what was written
        check_sealed(f.samples)
        return
    from ..diffusion.sample import generate, save_grid
    c = study.cfg
    log.info("sample %d images %s", n, f.dir)
    with timed(f, "sample", study.slot):
        g = generate(f.model, n, derive_seed(c.seed, cycle, "sample"), c.sample, c.diffusion, c.runtime, cycle,
                     progress=study.progress)
        if distributed.is_main():
            save_grid(g.images[:64], f.samples_grid, nrow=8)
            g.save(f.samples)
            seal(f.samples)
    distributed.barrier()


def stage_evaluate(study: Study, paradigm: str, arm: str, cycle: int) -> None:
    """metrics.json and nn.npz of every generated image (equal counts for every arm) vs D_n and R = D_1."""
    f = study.files(paradigm, arm, cycle)
    if f.metrics.exists():  # finished: reused once its files are what was written
        check_sealed(f.nn, f.metrics)
        return
    from ..measure.calibration import model_copies_of
    from ..measure.probe import probe_model
    c = study.cfg
    with timed(f, "evaluate", study.slot):
        train_set = load_npz(f.train)
        first = study.real_pool.take(np.arange(study.n))  # R = D_1: the frozen yardsticks' reference
        probe = (probe_model(f.model, train_set.images, derive_seed(c.seed, cycle, "probe"), c.diffusion, c.runtime,
                             first=first.images, first_seed=derive_seed(c.seed, 1, "probe"),
                             draws=c.eval.probe_draws or None) if c.eval.probe else None)
        members = membership_of_cycle(study, paradigm, arm, cycle, train_set) if c.eval.membership else None
        planted = (model_copies_of(f.model, train_set.images, derive_seed(c.seed, cycle, "planted"), c.diffusion,
                                   c.runtime, m=c.eval.planted // 2) if c.eval.calibration else None)
        evaluate_to(f, load_npz(f.samples), train_set, first, c.eval, derive_seed(c.seed, cycle, "evaluate"),
                    study.extractor, study.real_features, study.lineage_roots(paradigm, arm, train_set), probe=probe,
                    membership=members, model_copies=planted, cycle=cycle)


def membership_of_cycle(study: Study, paradigm: str, arm: str, cycle: int, train_set) -> "MembershipReport":
    """The membership test of the cycle's model (measure.membership): D_n against its non-members
    (Study.nonmembers), the same noise for every arm of a cycle; a report with the reason where none."""
    from ..measure.membership import MembershipReport, membership
    c = study.cfg
    others, reason = study.nonmembers(paradigm, arm, cycle)
    if others is None:
        return MembershipReport(reason=reason)
    return membership(study.files(paradigm, arm, cycle).model, train_set.images, others.images, c.diffusion,
                      derive_seed(c.seed, cycle, "membership"), c.runtime, c.eval.membership_draws)


def stage_select(study: Study, paradigm: str, arm: str, cycle: int) -> None:
    """Write D_{cycle+1} of (paradigm, arm) from the pool of cycles 1..cycle, and selection.json
    (what the arm's filters did to the pool: selection.record.SelectionReport)."""
    out = study.files(paradigm, arm, cycle + 1)
    if out.train.exists():  # finished: reused once its files are what was written
        check_sealed(out.train, out.selection)
        return
    c = study.cfg
    # the pool: the r*N candidates of each cycle (samples.npz holds more images after them, for evaluation only)
    pool, h = study.pool(paradigm, arm), study.holdout(paradigm, arm)
    generated = [load_npz(study.files(paradigm, arm, i).samples).take(np.arange(pool)) for i in range(1, cycle + 1)]
    current = load_npz(study.files(paradigm, arm, cycle).train)
    inputs = arm_inputs(study, paradigm, arm, cycle, current)
    rng = np.random.default_rng(derive_seed(c.seed, cycle, "select", inputs.key))
    nxt, report = next_training_set(paradigm, inputs.arm, Chooser(inputs), study.real_pool, current, generated,
                                    study.n + h, cycle, c.study.oversample, c.study.fresh_fraction, rng)
    if h:  # N + h selected; a seeded h held out as the membership test's non-members (docs/method.md §7)
        held_rng = np.random.default_rng(derive_seed(c.seed, cycle, "holdout", inputs.key))
        nxt, held = split_holdout(nxt, h, report.real_anchors, held_rng)
        report = dataclasses.replace(report, size=len(nxt), held_out=h)
        held.save(out.holdout)
    log.info("select %s/%s cycle %d -> %d images (real share %.3f)", paradigm, arm, cycle + 1, len(nxt),
             nxt.real_share)
    atomic_write_json(out.selection, report.to_dict())
    nxt.save(out.train)
    seal(out.selection, out.train, *((out.holdout,) if h else ()))


def arm_inputs(study: Study, paradigm: str, arm: str, cycle: int, current) -> ArmInputs:
    """What the arm's selection of D_{cycle+1} reads (selection.pipeline.ArmInputs), from the study."""
    c, key = study.cfg, f"{paradigm}/{arm}"
    return ArmInputs(study.arm(arm), paradigm, c.seed, cycle, c.eval.memorization_threshold, c.diffusion,
                     c.runtime.device, cycle_files=lambda i: study.files(paradigm, arm, i),
                     features=lambda s: study.features(key, s),
                     lineage_roots=lambda s: study.lineage_roots(paradigm, arm, s), current=current)


def run_cycle(study: Study, paradigm: str, arm: str, cycle: int, select_next: bool = True) -> Path:
    """Run (or finish) cycle ``cycle`` of one arm: every stage whose outputs are missing; with
    ``select_next`` also D_{cycle+1} (the study driver selects for every arm of a shared cycle itself)."""
    f = study.files(paradigm, arm, cycle)
    if not f.train.exists():
        raise FileNotFoundError(f.train)
    stage_train(study, f, cycle)
    stage_sample(study, f, cycle, study.n_samples)
    distributed.run_on_main(stage_evaluate, study, paradigm, arm, cycle)
    if select_next and cycle < study.cfg.study.cycles:
        distributed.run_on_main(stage_select, study, paradigm, arm, cycle)
    return f.dir


def metrics_row(study: Study, paradigm: str, arm: str, cycle: int) -> dict:
    """The metrics.jsonl row (rows.py) of one arm and cycle, from its metrics.json."""
    a = study.arm(arm)
    f = study.files(paradigm, arm, cycle)
    metrics = CycleMetrics.from_dict(read_json(f.metrics))
    selection = SelectionReport.from_dict(read_json(f.selection)) if f.selection.exists() else None
    context = {"seed": study.cfg.seed, "n": study.n, "steps": study.cfg.train.steps,
               "preset": study.cfg.model.preset, "paradigm": paradigm, "arm": arm, "selector": a.selector,
               "space": a.space, "cycle": cycle}
    return cycle_row(context, metrics, selection)
