"""The factorial experiment of docs/results/factorial.md, cell by cell, resumable across sessions.

A cell is (sampler, train.steps, seed) of configs/factorial_digits.yaml. Each missing cell runs as a
study of its own under --runs, and its metrics.jsonl rows, tagged with the cell, are appended to the
shipped rows file (docs/results/factorial_digits.jsonl) as soon as it finishes, so a later session
continues from the rows: cells already in the file are skipped.

    python scripts/factorial.py                       # every missing cell, in order
    python scripts/factorial.py --only ddim/1000/0    # one cell
    python scripts/factorial.py --figure              # docs/figures/factorial_*.png from the shipped rows
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "factorial_digits.yaml"
SAMPLERS = {"ddim": ["sample.sampler=ddim", "sample.steps=25"], "ddpm": ["sample.sampler=ddpm", "sample.steps=20"]}
STEPS = (1000, 1500)   # cycle-1 copy share near 0.4 and near 0.7 at N = 32 (phase grid: 0.42 at 1000, 0.89 at 2000)
SEEDS = (0, 1, 2)


def cells() -> list[tuple[str, int, int]]:
    """Placement outermost, then seeds, then the sampler: a partial experiment holds one placement
    replicated on every seed under both samplers before it starts the next."""
    return [(s, st, seed) for st in STEPS for seed in SEEDS for s in SAMPLERS]


def shipped(rows_file: Path) -> set[tuple[str, int, int]]:
    if not rows_file.exists():
        return set()
    rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
    return {(r["sampler"], r["steps"], r["seed"]) for r in rows}


def run_cell(sampler: str, steps: int, seed: int, runs: Path, rows_file: Path) -> None:
    run_dir = runs / f"{sampler}_s{steps}_seed{seed}"
    cmd = [str(Path(sys.executable).parent / "collapse-diffusion"), "run", str(CONFIG), "--run-dir", str(run_dir),
           "--no-report", "--set", f"seed={seed}", "--set", f"train.steps={steps}"]
    for kv in SAMPLERS[sampler]:
        cmd += ["--set", kv]
    subprocess.run(cmd, check=True)
    from collapse_diffusion.core.io import atomic_write_text
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    old = rows_file.read_text() if rows_file.exists() else ""
    new = "".join(json.dumps({**r, "sampler": sampler, "data": "digits"}, sort_keys=True) + "\n" for r in lines)
    atomic_write_text(rows_file, old + new)  # all of a cell's rows or none of them
    print(f"shipped {sampler}/{steps}/{seed}: {len(lines)} rows -> {rows_file}", flush=True)


def draw(rows_file: Path) -> None:
    """Copying against cycle per cell, seeds as bands: the copy share and the memorizer share."""
    import matplotlib
    matplotlib.use("Agg")
    from collapse_diffusion.analysis.factorial import KEYS, figure_cells
    rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
    for key, label in KEYS:
        fig = figure_cells(rows, key, label)
        out = ROOT / "docs" / "figures" / f"factorial_{key}.png"
        fig.savefig(out, dpi=110)
        print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "factorial")
    ap.add_argument("--rows", type=Path, default=ROOT / "docs" / "results" / "factorial_digits.jsonl")
    ap.add_argument("--only", default=None, help="SAMPLER/STEPS/SEED")
    ap.add_argument("--figure", action="store_true", help="draw the figures from the shipped rows and stop")
    args = ap.parse_args()
    if args.figure:
        draw(args.rows)
        return
    todo = cells()
    if args.only:
        s, st, seed = args.only.split("/")
        todo = [(s, int(st), int(seed))]
    done = shipped(args.rows)
    for cell in todo:
        if cell not in done:
            run_cell(*cell, args.runs, args.rows)


if __name__ == "__main__":
    main()
