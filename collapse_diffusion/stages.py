"""One cycle of the self-consuming loop as files (docs/method.md §1). The only module that knows
the order of stages:

    train.npz (D_n) -> train -> model/ -> sample -> samples.npz (G_n: r*N candidates first, then
                    more images up to eval.n_generated) -> evaluate -> metrics.json, nn.npz (with
                    each sample's lineage root) -> select -> next cycle's train.npz (D_{n+1})

Each stage reads the previous stage's files (``layout.CycleFiles``), writes its own atomically,
and is skipped when they exist, so a killed run resumes where it stopped.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from . import distributed
from .data import ImageSet, load_npz
from .evaluate import CycleMetrics, evaluate_sets
from .io import atomic_save_npz, atomic_write_json, read_json
from .layout import CycleFiles
from .mitigate import SelectionReport, detector_flags, keep_or_top_up
from .paradigms import next_training_set
from .rows import cycle_row
from .sample import generate, save_grid
from .select import select
from .study import Study, derive_seed
from .train import is_model, train
from .verify import denoising_scores

log = logging.getLogger(__name__)


@contextmanager
def timed(files: CycleFiles, stage: str) -> Iterator[None]:
    """Append the stage's wall time to timings.jsonl once it succeeds, from rank 0 only (every rank
    runs the stage; the time is counted once). Informational: nothing reads it back but the report."""
    t0 = time.perf_counter()
    yield
    if distributed.is_main():
        with open(files.timings, "a") as fh:
            fh.write(json.dumps({"stage": stage, "seconds": round(time.perf_counter() - t0, 3)}) + "\n")


def stage_train(study: Study, f: CycleFiles, cycle: int) -> None:
    if is_model(f.model):
        return
    c = study.cfg
    log.info("train %s", f.dir)
    with timed(f, "train"):
        train(load_npz(f.train).images, c.train, c.diffusion, c.model.preset, f.dir, derive_seed(c.seed, cycle, "train"))


def stage_sample(study: Study, f: CycleFiles, cycle: int, n: int) -> None:
    if f.samples.exists():
        return
    c = study.cfg
    log.info("sample %d images %s", n, f.dir)
    with timed(f, "sample"):
        g = generate(f.model, n, derive_seed(c.seed, cycle, "sample"), c.sample, c.diffusion, c.train.device, cycle,
                     fast=c.train.fast)
        if distributed.is_main():
            save_grid(g.images[:64], f.samples_grid, nrow=8)
            g.save(f.samples)
    distributed.barrier()


def stage_evaluate(study: Study, paradigm: str, arm: str, cycle: int) -> None:
    """metrics.json and nn.npz of every generated image (equal counts for every arm) vs D_n and R = D_1."""
    f = study.files(paradigm, arm, cycle)
    if f.metrics.exists():
        return
    c = study.cfg
    with timed(f, "evaluate"):
        train_set = load_npz(f.train)
        metrics, arrays = evaluate_sets(load_npz(f.samples), train_set, study.real_pool.take(np.arange(study.n)),
                                        c.eval, derive_seed(c.seed, cycle, "evaluate"), study.extractor,
                                        study.real_features, study.lineage_roots(paradigm, arm, train_set))
        atomic_save_npz(f.nn, **arrays)
        atomic_write_json(f.metrics, {**metrics.to_dict(), "cycle": cycle})


def stage_select(study: Study, paradigm: str, arm: str, cycle: int) -> None:
    """Write D_{cycle+1} of (paradigm, arm) from the pool of cycles 1..cycle, and selection.json
    (what the arm's filters did to the pool: mitigate.SelectionReport)."""
    out = study.files(paradigm, arm, cycle + 1)
    if out.train.exists():
        return
    c, a = study.cfg, study.arm(arm)
    # the pool: the r*N candidates of each cycle (samples.npz holds more images after them, for evaluation only)
    generated = [load_npz(study.files(paradigm, arm, i).samples).take(np.arange(study.candidates))
                 for i in range(1, cycle + 1)]
    current = load_npz(study.files(paradigm, arm, cycle).train)
    chooser = Chooser(study, paradigm, arm, cycle, current)
    rng = np.random.default_rng(derive_seed(c.seed, cycle, "select", f"{paradigm}/{arm}"))
    nxt = next_training_set(paradigm, a, chooser, study.real_pool, current, generated, study.n, cycle,
                            c.study.oversample, c.study.fresh_fraction, rng)
    if chooser.report is None:  # no chooser call: vanilla's equal shares of accumulate-subsample, `all`
        pooled = generated if paradigm == "accumulate-subsample" else generated[-1:]
        made = sum(len(g) for g in pooled)
        real = study.n if paradigm == "accumulate-subsample" else 0
        chooser.report = SelectionReport(pool=made + real, size=len(nxt), pool_generated=made, pool_real=real)
    report = chooser.report
    report = dataclasses.replace(report, real_anchors=int(a.real_anchor if paradigm != "accumulate" else 0))
    log.info("select %s/%s cycle %d -> %d images (real share %.3f)", paradigm, arm, cycle + 1, len(nxt),
             nxt.real_share)
    atomic_write_json(out.selection, report.to_dict())
    nxt.save(out.train)


class Chooser:
    """The arm's choice of ``size`` images from a pool (docs/method.md §3, §9): the provenance
    filter, then the memorization filter or self-verification, then the (base) selector on the
    survivors, topped up with the least suspect dropped images when too few survive. Keeps the
    SelectionReport of its last call."""

    def __init__(self, study: Study, paradigm: str, arm: str, cycle: int, current: ImageSet | None = None):
        self.study, self.paradigm, self.name, self.cycle = study, paradigm, arm, cycle
        self.current = current  # D_cycle, when the caller has it loaded (klprune's fixed neighbours)
        self.arm = study.arm(arm)
        self.report: SelectionReport | None = None

    def __call__(self, pool: ImageSet, size: int, rng: np.random.Generator) -> np.ndarray:
        a, gen = self.arm, pool.provenance[:, 0] > 0
        stats = dict(pool=len(pool), size=size, pool_generated=int(gen.sum()), pool_real=int((~gen).sum()))
        idx, topped = np.arange(len(pool)), 0
        if a.provenance is not None:
            flags = detector_flags(pool.provenance, a.provenance.recall, a.provenance.false_positive,
                                   derive_seed(self.study.cfg.seed, 0, "detector", f"{self.paradigm}/{self.name}"))
            stats.update(detector_recall=float(flags[gen].mean()) if gen.any() else None,
                         detector_false_positive=float(flags[~gen].mean()) if (~gen).any() else None)
            idx, topped = keep_or_top_up(~flags, rng.random(len(pool)), size)
        if a.selector == "memfilter":
            ratios = self.copy_ratios(pool.take(idx))
            copies = ratios < self.study.cfg.eval.memorization_threshold
            stats["memfilter_dropped"] = int(copies.sum())
            sub, back = keep_or_top_up(~copies, -ratios, size)
            idx, topped = idx[sub], topped + back
        if a.selector == "selfverify":
            scores = denoising_scores(self.study.files(self.paradigm, self.name, self.cycle).model,
                                      pool.images[idx], self.study.cfg.diffusion, a.verify_timesteps, a.verify_noise,
                                      derive_seed(self.study.cfg.seed, self.cycle, "verify"), self.study.cfg.train.device)
            drop = len(idx) - size if a.verify == "top" else int(np.floor(a.reject_fraction * len(idx)))
            drop = max(0, min(drop, len(idx) - size))
            worst = np.argsort(-scores, kind="stable")[:drop]
            keep = np.ones(len(idx), bool)
            keep[worst] = False
            stats["verify_dropped"] = int(drop)
            idx = idx[keep]
        base = a.base if a.selector in ("memfilter", "selfverify") else a.selector
        chosen = idx[self.base_select(base, pool.take(idx), size, rng)]
        self.report = SelectionReport(**stats, topped_up=int(topped))
        return np.sort(chosen)

    def base_select(self, base: str, pool: ImageSet, size: int, rng: np.random.Generator) -> np.ndarray:
        a = self.arm
        x = pool.flat() if a.space == "pixel" else self.study.features(f"{self.paradigm}/{self.name}", pool)
        ref = None
        if base == "klprune" and a.prune_with_train:
            current = self.current if self.current is not None else load_npz(
                self.study.files(self.paradigm, self.name, self.cycle).train)
            ref = current.flat() if a.space == "pixel" else self.study.features(f"{self.paradigm}/{self.name}", current)
        return select(base, x, size, rng, a.tau0, a.alpha, ref=ref)

    def copy_ratios(self, pool: ImageSet) -> np.ndarray:
        """Lineage-aware NN1/NN2 ratio of each generated image of ``pool`` against the training set
        of the cycle that generated it (the ratio its evaluation recorded in nn.npz), or against
        every training set up to that cycle (filter_against: all); inf for real images."""
        ratios = np.full(len(pool), np.inf)
        for c in np.unique(pool.provenance[:, 0]):
            if c == 0:
                continue
            rows = np.flatnonzero(pool.provenance[:, 0] == c)
            j = pool.provenance[rows, 1]
            with np.load(self.study.files(self.paradigm, self.name, int(c)).nn) as z:
                ratios[rows] = z["ratios_lineage"][j]
            if self.arm.filter_against == "all":
                ratios[rows] = np.minimum(ratios[rows], self.ratios_vs_all(pool.take(rows), int(c)))
        return ratios

    def ratios_vs_all(self, images: ImageSet, cycle: int) -> np.ndarray:
        from .metrics import nn_report
        sets = [load_npz(self.study.files(self.paradigm, self.name, i).train) for i in range(1, cycle + 1)]
        ref = ImageSet.concat(sets)
        roots = np.concatenate([self.study.lineage_roots(self.paradigm, self.name, s) for s in sets])
        _, arrays = nn_report(images.flat(), ref.flat(), self.study.cfg.eval.memorization_threshold, roots)
        return arrays["ratios_lineage"]


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
