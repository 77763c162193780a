"""One cycle of the self-consuming loop as files (docs/method.md §1). The only module that
knows the order of stages:

    train.npz (D_n) -> train -> model/ -> sample -> samples.npz (G_n: r*N candidates first, then
                    more images up to eval.n_generated) -> evaluate -> metrics.json, nn.npz (with
                    each sample's lineage root) -> select -> next cycle's train.npz (D_{n+1})

Each stage reads the previous stage's files, writes its own atomically, and is skipped when they
exist, so a killed run resumes where it stopped. Cycle 1 (real D_1, its model and its samples) is
shared by every paradigm and arm and lives in ``shared/cycle_01``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from . import distributed
from .config import ArmConfig, ExperimentConfig
from .data import ImageSet, load_npz
from .evaluate import evaluate_sets
from .features import Extractor, get_extractor
from .io import atomic_save_npz, atomic_write_json, read_json
from .layout import cycle_path
from .paradigms import next_training_set
from .plots import nn_pairs_figure, savefig
from .sample import generate, save_grid
from .select import select
from .train import FINAL, is_model, train

log = logging.getLogger(__name__)


@contextmanager
def timed(d: Path, stage: str) -> Iterator[None]:
    """Append the stage's wall time to d/timings.jsonl once it succeeds (informational only)."""
    t0 = time.perf_counter()
    yield
    with open(d / "timings.jsonl", "a") as fh:
        fh.write(json.dumps({"stage": stage, "seconds": round(time.perf_counter() - t0, 3)}) + "\n")


def derive_seed(seed: int, cycle: int, stage: str, arm: str = "") -> int:
    """Seed of one (cycle, stage, arm): arms share training and sampling seeds (common random numbers)."""
    return int(np.random.SeedSequence([seed, cycle, zlib.crc32(stage.encode()), zlib.crc32(arm.encode())])
               .generate_state(1)[0])


@dataclass
class Study:
    """A run directory and its config: everything a stage needs to find its inputs."""
    root: Path
    cfg: ExperimentConfig
    _feature_cache: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return self.cfg.data.n

    def arm(self, name: str) -> ArmConfig:
        return next(a for a in self.cfg.study.arms if a.name == name)

    def cycle_dir(self, paradigm: str, arm: str, cycle: int) -> Path:
        return cycle_path(self.root, paradigm, arm, cycle)


    @cached_property
    def real_pool(self) -> ImageSet:
        return load_npz(self.root / "real.npz")

    @cached_property
    def extractor(self) -> Optional[Extractor]:
        e = self.cfg.eval
        pool = self.real_pool
        if e.extractor != "inception" and (pool.labels < 0).any():
            log.warning("real data has no labels and eval.extractor is not inception: FD is not computed")
            return None
        source = load_npz(self.root / "extractor_data.npz") if (self.root / "extractor_data.npz").exists() else pool
        return get_extractor(e.extractor, source, self.cfg.data.source, self.root / "extractor",
                             e.classifier_steps, self.cfg.seed, e.inception_weights)

    @cached_property
    def real_features(self) -> Optional[np.ndarray]:
        """Features of the FD reference: every image of the data set (eval.fid_real = 0) or the first
        eval.fid_real of the seeded class-balanced pool."""
        if self.extractor is None:
            return None
        path = self.root / "extractor_data.npz"
        pool = load_npz(path) if path.exists() else self.real_pool
        k = self.cfg.eval.fid_real or len(pool)
        return self.extractor(pool.images[:k])

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

    @property
    def candidates(self) -> int:
        """r*N candidates for every arm (each arm's target size is at most that)."""
        return max(self.n, int(round(self.cfg.study.oversample * self.n)))

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
            path = self.cycle_dir(paradigm, arm, int(c)) / "nn.npz"
            if c > 0 and path.exists():
                with np.load(path) as z:
                    if "root" in z:
                        roots[rows] = z["root"][s.provenance[rows, 1]]
        return roots


def stage_train(study: Study, d: Path, cycle: int) -> None:
    if is_model(d / FINAL):
        return
    c = study.cfg
    log.info("train %s", d)
    with timed(d, "train") if distributed.is_main() else contextlib.nullcontext():
        train(load_npz(d / "train.npz").images, c.train, c.diffusion, c.model.preset, d,
              derive_seed(c.seed, cycle, "train"))


def stage_sample(study: Study, d: Path, cycle: int, n: int) -> None:
    if (d / "samples.npz").exists():
        return
    c = study.cfg
    log.info("sample %d images %s", n, d)
    with timed(d, "sample"):
        g = generate(d / FINAL, n, derive_seed(c.seed, cycle, "sample"), c.sample, c.diffusion, c.train.device, cycle,
                     fast=c.train.fast)
        if distributed.is_main():
            save_grid(g.images[:64], d / "samples.png", nrow=8)
            g.save(d / "samples.npz")
    distributed.barrier()


def stage_evaluate(study: Study, paradigm: str, arm: str, cycle: int) -> None:
    """metrics.json and nn.npz of every generated image (equal counts for every arm) vs D_n and R = D_1."""
    d = study.cycle_dir(paradigm, arm, cycle)
    if (d / "metrics.json").exists():
        return
    c = study.cfg
    t0 = time.perf_counter()
    gen = load_npz(d / "samples.npz")
    train_set = load_npz(d / "train.npz")
    real = study.real_pool.take(np.arange(study.n))
    metrics, arrays = evaluate_sets(gen, train_set, real, c.eval, derive_seed(c.seed, cycle, "evaluate"),
                                    study.extractor, study.real_features,
                                    study.lineage_roots(paradigm, arm, train_set))
    metrics["cycle"] = cycle
    savefig(nn_pairs_figure(gen.images, train_set.images, arrays["ratios"], arrays["nn_index"],
                            title=f"cycle {cycle}: most memorized samples (top) and nearest training image"),
            d / "nn.png")
    atomic_save_npz(d / "nn.npz", **arrays)
    atomic_write_json(d / "metrics.json", metrics)
    with open(d / "timings.jsonl", "a") as fh:
        fh.write(json.dumps({"stage": "evaluate", "seconds": round(time.perf_counter() - t0, 3)}) + "\n")


def stage_select(study: Study, paradigm: str, arm: str, cycle: int) -> None:
    """Write D_{cycle+1} of (paradigm, arm) from the candidates of cycles 1..cycle."""
    out = study.cycle_dir(paradigm, arm, cycle + 1) / "train.npz"
    if out.exists():
        return
    c, a = study.cfg, study.arm(arm)
    generated = [load_npz(study.cycle_dir(paradigm, arm, i) / "samples.npz") for i in range(1, cycle + 1)]
    current = load_npz(study.cycle_dir(paradigm, arm, cycle) / "train.npz")

    def choose(pool: ImageSet, size: int, rng: np.random.Generator) -> np.ndarray:
        x = pool.flat() if a.space == "pixel" else study.features(f"{paradigm}/{arm}", pool)
        return select(a.selector, x, size, rng, a.tau0, a.alpha)

    rng = np.random.default_rng(derive_seed(c.seed, cycle, "select", f"{paradigm}/{arm}"))
    nxt = next_training_set(paradigm, a, choose, study.real_pool, current, generated, study.n, cycle,
                            c.study.oversample, c.study.fresh_fraction, rng)
    log.info("select %s/%s cycle %d -> %d images (real share %.3f)", paradigm, arm, cycle + 1, len(nxt),
             nxt.real_share)
    nxt.save(out)


def run_cycle(study: Study, paradigm: str, arm: str, cycle: int, select_next: bool = True) -> Path:
    """Run (or finish) cycle ``cycle`` of one arm: every stage whose outputs are missing; with
    ``select_next`` also D_{cycle+1} (the study driver selects for every arm of a shared cycle itself)."""
    d = study.cycle_dir(paradigm, arm, cycle)
    if not (d / "train.npz").exists():
        raise FileNotFoundError(d / "train.npz")
    stage_train(study, d, cycle)
    stage_sample(study, d, cycle, study.n_samples)
    distributed.main_first(stage_evaluate, study, paradigm, arm, cycle)
    if select_next and cycle < study.cfg.study.cycles:
        distributed.main_first(stage_select, study, paradigm, arm, cycle)
    return d


def metrics_row(study: Study, paradigm: str, arm: str, cycle: int) -> dict:
    """The flat metrics.jsonl row of one arm and cycle (full detail stays in metrics.json)."""
    m = read_json(study.cycle_dir(paradigm, arm, cycle) / "metrics.json")
    a = study.arm(arm)
    t, r = m["vs_train"], m.get("vs_real", {})
    row = {"seed": study.cfg.seed, "n": study.n, "steps": study.cfg.train.steps, "preset": study.cfg.model.preset,
           "paradigm": paradigm, "arm": arm, "selector": a.selector, "space": a.space,
           "cycle": cycle,
           "n_train": m["train_set"]["n"], "n_generated": t["n_generated"],
           "real_share": m["train_set"]["real_share"],
           "memorization_rate": t["memorization_rate"], "memorization_ci95": t["memorization_ci95"],
           "memorization_rate_real": r.get("memorization_rate"), "memorization_real_ci95": r.get("memorization_ci95"),
           "n_real": r.get("n_reference"), "generalization_score": t["generalization_score"],
           "exact_copies": t["exact_copies"],
           "memorization_rate_lineage": t.get("memorization_rate_lineage"),
           "memorization_lineage_ci95": t.get("memorization_lineage_ci95"),
           "relative_copy_share": t.get("relative_copy_share"), "relative_copy_ci95": t.get("relative_copy_ci95"),
           "relative_nn_median": t.get("relative_nn_median"), "duplicate_share": t.get("duplicate_share"),
           "entropy_train": m["train_set"]["entropy"]["nats"], "entropy_generated": m["generated_set"]["entropy"]["nats"],
           "entropy_space": m["space"], "trace_cov_train": m["train_set"]["trace_cov"],
           "mean_nn_train": m["train_set"]["mean_nn_distance"], "trace_cov_generated": m["generated_set"]["trace_cov"]}
    if "fd" in m:
        f = m["fd"]
        row.update(fd=f["value"], fd_ci95=f.get("ci95"), fd_label=f["label"], fd_n_real=f["n_real"],
                   fd_n_generated=f["n_generated"], classifier_accuracy=f.get("classifier_accuracy"))
    return row
