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

from ..core.errors import UserError
from ..core.io import atomic_write_text
from ..core.layout import RunLayout
from ..loop.commands import run_lock
from ..loop.driver import run_studies
from ..loop.experiment import ExperimentConfig, claim_folder
from ..loop.rows import read_rows
from ..loop.study import Study, open_study
from ..selection.registry import ArmConfig


def cell_config(cfg: ExperimentConfig, n: int, steps: int, preset: str) -> ExperimentConfig:
    """The single-seed replace/vanilla study of one cell."""
    study = dataclasses.replace(cfg.study, cycles=cfg.phase.cycles, paradigms=("replace",),
                                arms=(ArmConfig("vanilla", "random"),), baseline="vanilla", seeds=())
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


def phase_command(root: Path, cfg: ExperimentConfig, wait: bool) -> Path:
    """`phase`: RUN held alone (loop.commands.run_lock) while every cell runs; RUN/phase.jsonl."""
    with run_lock(root, wait):
        return run_phase(root, cfg)


def run_phase(root: Path, cfg: ExperimentConfig) -> Path:
    """Every cell (resuming), then RUN/phase.jsonl (analysis.report.write_phase_report draws it)."""
    studies = open_phase(root, cfg)
    run_studies(studies, root)
    return write_phase(root, studies)


def _final_loss(path: Path) -> float | None:
    lines = path.read_text().splitlines() if path.exists() else []
    return json.loads(lines[-1])["loss"] if lines else None


def write_phase(root: Path, studies: list[Study]) -> Path:
    rows = []
    for s in studies:
        for r in read_rows(s.layout.metrics, normal=False):
            r["final_loss"] = _final_loss(s.files("replace", "vanilla", r["cycle"]).train_log)
            r["cell"] = s.root.name
            rows.append(r)
    layout = RunLayout(root)
    atomic_write_text(layout.phase_rows, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return layout.phase_rows
