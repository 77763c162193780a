"""The factorial experiment of docs/results/factorial.md, cell by cell, resumable across sessions.

A cell is (data, sampler, train.steps): a replace study with vanilla and greedy over seeds 0-2
(configs/factorial_<data>.yaml, the placement in train.steps). Each missing cell runs as one
multi-seed study in this process through the loop's API (``loop.commands.run_command``), and its
metrics rows, tagged with the sampler and the data set, are appended to the shipped rows
(docs/results/factorial_<data>.jsonl) as soon as it finishes, so a later session continues from the
rows: cells already there are skipped.

The two samplers of one (data, steps, seed) share their cycle-1 model: the second sampler's run
adopts the first one's sealed model folder and training log (the same seed, data and training config
give the same model), checked against its manifest and copied through ``RunLayout``, so between them
only the sampler differs. `python scripts/factorial.py` is the entry point.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..core.io import atomic_dir, atomic_path, atomic_write_text, check_sealed
from ..core.layout import RunLayout
from ..loop.rows import read_rows

SAMPLERS = {"ddim": ["sample.sampler=ddim", "sample.steps=25"], "ddpm": ["sample.sampler=ddpm", "sample.steps=20"]}
# train.steps of the two placements (cycle-1 copy share near 0.3-0.4 and near 0.6-0.8 at N = 32, ancestral
# DDPM-20), from the phase grids: digits 0.42 at 1000 and 0.89 at 2000 steps; MNIST at 16 px 0.39 at
# 2000, 0.72 at 2500 and 0.84 at 3000 (runs/phase_mnist16*, docs/results/factorial.md).
DATA = {"digits": (1000, 1500), "mnist16": (1900, 2300)}
SEEDS = (0, 1, 2)


def cells(data: str) -> list[tuple[str, int]]:
    """Placement outermost, then the sampler: a partial experiment holds one placement under both
    samplers, every seed, before it starts the next."""
    return [(s, st) for st in DATA[data] for s in SAMPLERS]


def rows_file(root: Path, data: str) -> Path:
    return root / "docs" / "results" / f"factorial_{data}.jsonl"


def read(path: Path) -> list[dict]:
    return read_rows(path, normal=False) if path.exists() else []


def shipped(path: Path) -> set[tuple[str, int]]:
    """Cells whose every seed is in the rows file."""
    seen: dict[tuple[str, int], set[int]] = {}
    for r in read(path):
        seen.setdefault((r["sampler"], r["steps"]), set()).add(r["seed"])
    return {cell for cell, seeds in seen.items() if set(SEEDS) <= seeds}


def cell_config(root: Path, data: str, sampler: str, steps: int):
    from ..loop.experiment import load_config
    sets = [f"train.steps={steps}", f"study.seeds=[{','.join(map(str, SEEDS))}]", *SAMPLERS[sampler]]
    return load_config(root / "configs" / f"factorial_{data}.yaml", sets)


def run_cell(root: Path, data: str, sampler: str, steps: int, runs: Path) -> int:
    """Run one cell (resuming) and append its rows to the shipped file; the number of rows."""
    from ..loop.commands import init_command, run_command
    cfg, run_dir = cell_config(root, data, sampler, steps), runs / data / f"{sampler}_s{steps}"
    init_command(run_dir, cfg, wait=False)
    for other in SAMPLERS:
        adopt_cycle1(runs / data / f"{other}_s{steps}", run_dir)
    run_command(run_dir, cfg, wait=False)
    lines = read(RunLayout(run_dir).metrics)
    if data != "digits":
        lines = [{**r, **grey_columns(run_dir, r)} for r in lines]
    path = rows_file(root, data)
    old = path.read_text() if path.exists() else ""
    new = "".join(_dumps({**r, "sampler": sampler, "data": data}) for r in lines)
    atomic_write_text(path, old + new)  # all of a cell's rows or none of them
    print(f"shipped {data} {sampler}/{steps}: {len(lines)} rows -> {path}", flush=True)
    return len(lines)


def _dumps(row: dict) -> str:
    import json
    return json.dumps(row, sort_keys=True) + "\n"


def grey_columns(run_dir: Path, row: dict) -> dict:
    """MNIST only: the share of the cycle's generated images whose background is no longer black
    (experiments/grey.py: border median above 25 of 255), and their mean border level."""
    from ..data.images import load_npz
    from .grey import grey_share
    path = RunLayout(run_dir).seed(row["seed"]).cycle(row["paradigm"], row["arm"], row["cycle"]).samples
    grey, level = grey_share(load_npz(path).images)
    return {"grey_share": grey / row["n_generated"], "border_mean": level}


def backfill_grey(root: Path, data: str, runs: Path) -> None:
    """Add the grey columns to shipped rows that lack them, from the cells' run folders still on disk."""
    path = rows_file(root, data)
    rows = read(path)
    for r in rows:
        run_dir = runs / data / f"{r['sampler']}_s{r['steps']}"
        if "grey_share" not in r and run_dir.is_dir():
            r.update(grey_columns(run_dir, r))
    atomic_write_text(path, "".join(_dumps(r) for r in rows))


def adopt_cycle1(source: Path, target: Path) -> None:
    """Each seed's finished cycle-1 model (a sealed folder, checked against its manifest) and training
    log from another sampler's run of the same placement, where this run has none yet; the copy is
    written atomically, its manifest with it, as the training stage would have."""
    for seed in SEEDS:
        src, dst = (RunLayout(d).seed(seed).shared for d in (source, target))
        if source == target or not (src.model / "model_index.json").exists() or dst.model.exists():
            continue
        check_sealed(src.model)
        with atomic_dir(dst.model) as tmp:
            shutil.copytree(src.model, tmp, dirs_exist_ok=True)
        with atomic_path(dst.train_log) as tmp:
            shutil.copy2(src.train_log, tmp)
        print(f"cycle-1 model of seed {seed} reused from {src.dir}", flush=True)


def draw(root: Path) -> list[Path]:
    """Against cycle per cell, seeds as bands: the copy share, the memorizer share, the duplicate
    share of D_n (contraction) and, for MNIST, the grey-background share; the figures written."""
    from .factorial_tables import FIGURES, figure_cells
    rows = [r for data in DATA for r in read(rows_file(root, data))]
    out = []
    for key, label in FIGURES:
        have = [r for r in rows if r.get(key) is not None]
        if have:
            out.append(root / "docs" / "figures" / f"factorial_{key}.png")
            figure_cells(have, key, label).savefig(out[-1], dpi=110)
    return out


def run(root: Path, data: str, runs: Path, only: str | None = None) -> None:
    """Every missing cell of one data set, in order (``only``: SAMPLER/STEPS, that cell)."""
    todo = cells(data)
    if only:
        s, st = only.split("/")
        todo = [(s, int(st))]
    done = shipped(rows_file(root, data))
    for cell in todo:
        if cell not in done:
            run_cell(root, data, *cell, runs)
