"""The phase diagram of one cycle, or of a few (docs/method.md §7).

Where does a model of a given size and training budget sit: generalizing or memorizing? Each cell
of the grid phase.n x phase.steps (x phase.presets) is a single-seed replace/vanilla study of
phase.cycles cycles under RUN/cells/, so cells train in parallel, resume like `run`, and write the
same metrics rows. The diagram is the memorization rate over the grid with the 1/2 boundary:

    RUN/phase.jsonl   one row per cell and cycle (N, steps, preset, every metric, final training loss)
    RUN/phase.md      the table, the heat maps and the sample grids
    RUN/plots/        phase_<metric>.png heat maps (a panel per cycle), phase_samples.png
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np

from .config import ArmConfig, ExperimentConfig, claim_folder
from .driver import run_studies
from .errors import UserError
from .io import atomic_write_text
from .layout import RunLayout
from .study import Study, open_study

HEAT = ("memorization_rate_lineage", "memorization_rate", "generalization_score")  # metrics.jsonl columns


def cell_config(cfg: ExperimentConfig, n: int, steps: int, preset: str) -> ExperimentConfig:
    """The single-seed replace/vanilla study of one cell."""
    study = dataclasses.replace(cfg.study, cycles=cfg.phase.cycles, paradigms=("replace",),
                                arms=(ArmConfig("vanilla", "random"),), seeds=())
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, n=n),
                               train=dataclasses.replace(cfg.train, steps=steps),
                               model=dataclasses.replace(cfg.model, preset=preset), study=study)


def cell_name(c: ExperimentConfig, presets: int) -> str:
    return f"n{c.data.n}_s{c.train.steps}" + (f"_{c.model.preset}" if presets > 1 else "")


def open_phase(root: Path, cfg: ExperimentConfig) -> list[Study]:
    """Create or reopen RUN and one cell study per grid point; the FD classifier is shared."""
    root = Path(root)
    claim_folder(root, cfg, ignore=("data.n", "train.steps", "study"), save=False)  # each cell sets these itself
    fresh = not root.exists()
    try:
        return _open_cells(root, cfg)
    except UserError:
        if fresh:  # a refused grid leaves nothing behind
            shutil.rmtree(root, ignore_errors=True)
        raise


def _open_cells(root: Path, cfg: ExperimentConfig) -> list[Study]:
    layout = RunLayout(root)
    presets = cfg.phase.presets or (cfg.model.preset,)
    configs = [cell_config(cfg, n, s, p) for p in presets for n in cfg.phase.n for s in cfg.phase.steps]
    layout.extractor.mkdir(parents=True, exist_ok=True)
    studies = []
    for c in configs:
        cell = layout.cell(cell_name(c, len(presets)))
        cell.root.mkdir(parents=True, exist_ok=True)
        if not cell.extractor.exists():  # one FD classifier for every cell
            cell.extractor.symlink_to(Path(os.path.relpath(layout.extractor, cell.root)), target_is_directory=True)
        studies.append(open_study(cell.root, c))
    claim_folder(root, cfg, ignore=("data.n", "train.steps", "study"))
    return studies


def run_phase(root: Path, cfg: ExperimentConfig) -> Path:
    """Every cell (resuming), then phase.jsonl and phase.md."""
    studies = open_phase(root, cfg)
    run_studies(studies, root)
    return write_phase(root, studies)


def _final_loss(path: Path) -> float | None:
    lines = path.read_text().splitlines() if path.exists() else []
    return json.loads(lines[-1])["loss"] if lines else None


def write_phase(root: Path, studies: list[Study]) -> Path:
    rows = []
    for s in studies:
        for line in s.layout.metrics.read_text().splitlines():
            r = json.loads(line)
            r["final_loss"] = _final_loss(s.files("replace", "vanilla", r["cycle"]).train_log)
            r["cell"] = s.root.name
            rows.append(r)
    layout = RunLayout(root)
    atomic_write_text(layout.phase_rows, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    from .report import write_phase_report
    return write_phase_report(root, rows)


def grid(rows: list[dict], key: str, cycle: int, preset: str) -> tuple[list[int], list[int], np.ndarray]:
    """(sizes, budgets, values[N index, steps index]) of one metric at one cycle (nan where missing)."""
    sub = [r for r in rows if r["cycle"] == cycle and r["preset"] == preset]
    ns, steps = sorted({r["n"] for r in sub}), sorted({r["steps"] for r in sub})
    values = np.full((len(ns), len(steps)), np.nan)
    for r in sub:
        if r.get(key) is not None:
            values[ns.index(r["n"]), steps.index(r["steps"])] = r[key]
    return ns, steps, values


def phase_table(rows: list[dict], key: str = "memorization_rate_lineage", cycle: int = 1) -> list[str]:
    """Markdown: ``key`` at ``cycle`` over N (rows) x training steps (columns), per preset."""
    out = []
    for preset in dict.fromkeys(r["preset"] for r in rows):
        ns, steps, v = grid(rows, key, cycle, preset)
        out += [f"| N ↓ steps → ({preset}) | " + " | ".join(map(str, steps)) + " |", "|" + "---|" * (len(steps) + 1)]
        out += [f"| {n} | " + " | ".join("n/a" if not np.isfinite(x) else f"{x:.2f}" for x in v[i]) + " |"
                for i, n in enumerate(ns)]
    return out


def cycles_table(rows: list[dict], keys: tuple[str, ...] = ("memorization_rate_lineage", "memorization_rate",
                                                            "duplicate_share", "generalization_score",
                                                            "mean_nn_train")) -> list[str]:
    """Markdown: per cell, each metric cycle by cycle (the phase diagram followed along the loop)."""
    from .rows import BY_NAME, RATES
    head = "| N | steps | metric | " + " | ".join(f"cycle {c}" for c in sorted({r["cycle"] for r in rows})) + " |"
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for cell in dict.fromkeys(r["cell"] for r in rows):
        sub = sorted((r for r in rows if r["cell"] == cell), key=lambda r: r["cycle"])
        for key in keys:
            vals = [r.get(key) for r in sub]
            fmt = ".2f" if key in RATES else ".0f"
            out.append(f"| {sub[0]['n']} | {sub[0]['steps']} | {BY_NAME[key].name} | "
                       + " | ".join("n/a" if x is None else format(x, fmt) for x in vals) + " |")
    return out
