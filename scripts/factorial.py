"""The factorial experiment of docs/results/factorial.md, cell by cell, resumable across sessions.

A cell is (data, sampler, train.steps): a replace study with vanilla and greedy over seeds 0-2
(configs/factorial_<data>.yaml, the placement in train.steps). Each missing cell runs as one
multi-seed study under --runs, and its metrics.jsonl rows, tagged with the sampler and the data
set, are appended to the shipped rows (docs/results/factorial_<data>.jsonl) as soon as it
finishes, so a later session continues from the rows: cells already there are skipped.

The two samplers of one (data, steps, seed) share their cycle-1 model: the second sampler's run
starts from a copy of the first one's trained model folder (the same seed, data and training
config give the same model), so between them only the sampler differs.

    python scripts/factorial.py --data mnist16          # every missing cell of one data set, in order
    python scripts/factorial.py --data digits --only ddim/1000
    python scripts/factorial.py --figure                # docs/figures/factorial_*.png from every shipped row
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def rows_file(data: str) -> Path:
    return ROOT / "docs" / "results" / f"factorial_{data}.jsonl"


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def shipped(path: Path) -> set[tuple[str, int]]:
    """Cells whose every seed is in the rows file."""
    seen: dict[tuple[str, int], set[int]] = {}
    for r in read_rows(path):
        seen.setdefault((r["sampler"], r["steps"]), set()).add(r["seed"])
    return {cell for cell, seeds in seen.items() if set(SEEDS) <= seeds}


def run_cell(data: str, sampler: str, steps: int, runs: Path) -> None:
    config = ROOT / "configs" / f"factorial_{data}.yaml"
    run_dir = runs / data / f"{sampler}_s{steps}"
    cli = str(Path(sys.executable).parent / "collapse-diffusion")
    sets = [f"train.steps={steps}", f"study.seeds=[{','.join(map(str, SEEDS))}]", *SAMPLERS[sampler]]
    args = [a for kv in sets for a in ("--set", kv)]
    subprocess.run([cli, "init", str(config), "--run-dir", str(run_dir), *args], check=True)
    for other in SAMPLERS:
        _reuse_cycle1(runs / data / f"{other}_s{steps}", run_dir)
    subprocess.run([cli, "run", str(config), "--run-dir", str(run_dir), "--no-report", *args], check=True)
    from collapse_diffusion.core.io import atomic_write_text
    lines = read_rows(run_dir / "metrics.jsonl")
    path = rows_file(data)
    old = path.read_text() if path.exists() else ""
    lines = [{**r, **grey_columns(run_dir, r)} for r in lines] if data != "digits" else lines
    new = "".join(json.dumps({**r, "sampler": sampler, "data": data}, sort_keys=True) + "\n" for r in lines)
    atomic_write_text(path, old + new)  # all of a cell's rows or none of them
    print(f"shipped {data} {sampler}/{steps}: {len(lines)} rows -> {path}", flush=True)


def grey_columns(run_dir: Path, row: dict) -> dict:
    """MNIST only: the share of the cycle's generated images whose background is no longer black
    (scripts/sampler_drift.py: border median above 25 of 255), and their mean border level."""
    from collapse_diffusion.core.layout import RunLayout
    from collapse_diffusion.data.images import load_npz
    from scripts.sampler_drift import grey_share
    path = RunLayout(run_dir).seed(row["seed"]).cycle(row["paradigm"], row["arm"], row["cycle"]).samples
    grey, level = grey_share(load_npz(path).images)
    return {"grey_share": grey / row["n_generated"], "border_mean": level}


def backfill_grey(data: str, runs: Path) -> None:
    """Add the grey columns to shipped rows that lack them, from the cells' run folders still on disk."""
    from collapse_diffusion.core.io import atomic_write_text
    path, rows = rows_file(data), read_rows(rows_file(data))
    for r in rows:
        run_dir = runs / data / f"{r['sampler']}_s{r['steps']}"
        if "grey_share" not in r and run_dir.is_dir():
            r.update(grey_columns(run_dir, r))
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def _reuse_cycle1(source: Path, target: Path) -> None:
    """Copy each seed's finished cycle-1 model (a sealed folder) and its training log from another
    sampler's run of the same placement, where this run has none yet."""
    for seed in SEEDS:
        src, dst = (d / f"seed_{seed}" / "shared" / "cycle_01" for d in (source, target))
        if source == target or not (src / "model" / "model_index.json").exists() or (dst / "model").exists():
            continue
        shutil.copytree(src / "model", dst / ".model.copy.tmp")
        shutil.copy2(src / "train_log.jsonl", dst / "train_log.jsonl")
        (dst / ".model.copy.tmp").rename(dst / "model")
        print(f"cycle-1 model of seed {seed} reused from {src}", flush=True)


def draw() -> None:
    """Against cycle per cell, seeds as bands: the copy share, the memorizer share, the duplicate
    share of D_n (contraction) and, for MNIST, the grey-background share."""
    import matplotlib
    matplotlib.use("Agg")
    from collapse_diffusion.analysis.factorial import FIGURES, figure_cells
    rows = [r for data in DATA for r in read_rows(rows_file(data))]
    for key, label in FIGURES:
        have = [r for r in rows if r.get(key) is not None]
        if not have:
            continue
        fig = figure_cells(have, key, label)
        out = ROOT / "docs" / "figures" / f"factorial_{key}.png"
        fig.savefig(out, dpi=110)
        print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=sorted(DATA), default="digits")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "factorial")
    ap.add_argument("--only", default=None, help="SAMPLER/STEPS: one cell")
    ap.add_argument("--figure", action="store_true", help="draw the figures from the shipped rows and stop")
    ap.add_argument("--backfill-grey", action="store_true", help="add the grey-background columns to shipped MNIST "
                                                                 "rows from the run folders, and stop")
    args = ap.parse_args()
    if args.figure:
        draw()
        return
    if args.backfill_grey:
        backfill_grey(args.data, args.runs)
        return
    todo = cells(args.data)
    if args.only:
        s, st = args.only.split("/")
        todo = [(s, int(st))]
    done = shipped(rows_file(args.data))
    for cell in todo:
        if cell not in done:
            run_cell(args.data, *cell, args.runs)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
