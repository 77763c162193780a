"""The experiment commands: phase (a grid of one-cycle studies over N x training budget) and
groundtruth (every copy measure scored on loops whose copies are known). Each parses, loads the
config and calls one function of ``experiments``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..core.errors import UserError
from .common import SetOpt, WaitOpt, app, csv, is_main, load_cfg


@app.command()
def phase(config: Path = typer.Argument(..., help="Config (YAML) whose model, training, sampling and eval settings "
                                                   "each cell uses."),
          run_dir: Optional[Path] = typer.Option(None, "--run-dir",
                                                 help="Run directory (default: runs/phase_<config name>)."),
          sizes: Optional[str] = typer.Option(None, "--sizes", help="Comma-separated N values (default: phase.n)."),
          budgets: Optional[str] = typer.Option(None, "--budgets",
                                                help="Comma-separated step budgets (default: phase.steps)."),
          cycles: Optional[int] = typer.Option(None, "--cycles",
                                               help="Replace cycles per cell (default: phase.cycles)."),
          overrides: List[str] = SetOpt, wait: bool = WaitOpt) -> None:
    """Phase diagram: memorization rate, GS and FD over a grid of N x training steps (x presets).

    One replace/vanilla study per cell, trained in parallel and resumable; writes RUN/phase.md
    (table, heat maps with the 1/2-memorization boundary, sample grids) and RUN/phase.jsonl.

    Examples:

    \b
      collapse-diffusion phase configs/digits.yaml
      collapse-diffusion phase configs/digits.yaml --sizes 16,32,64 --budgets 500,1000,2000
      collapse-diffusion phase configs/digits.yaml --sizes 32 --budgets 800,1200 --cycles 4
      collapse-diffusion phase configs/digits.yaml --set phase.presets=[digits-tiny,mnist-small]
    """
    from ..experiments.phase_grid import phase_command
    extra = [f"phase.n=[{','.join(map(str, csv(sizes, int, '--sizes')))}]"] if sizes is not None else []
    extra += [f"phase.steps=[{','.join(map(str, csv(budgets, int, '--budgets')))}]"] if budgets is not None else []
    extra += [f"phase.cycles={cycles}"] if cycles is not None else []
    cfg = load_cfg(config, list(overrides) + extra)
    root = run_dir or Path("runs") / f"phase_{config.stem}"
    rows = phase_command(root, cfg, wait)
    typer.echo(f"wrote {rows}")
    if is_main():
        from ..analysis.report import write_phase_report
        typer.echo(f"wrote {write_phase_report(root)}")


@app.command()
def groundtruth(out: Path = typer.Option(Path("copy_suite.jsonl"), help="Rows of the suite (.jsonl)."),
                data_sets: str = typer.Option("digits", "--data", help="Real sources, comma-separated "
                                                                      "(digits: d = 64; mnist5k: d = 784)."),
                sizes: str = typer.Option("32,64", "--sizes", help="N values, comma-separated."),
                seeds: str = typer.Option("0,1,2", "--seeds", help="Seeds, comma-separated."),
                samples: int = typer.Option(1024, "--samples", help="Samples per cycle.")) -> None:
    """Score every copy measure on synthetic loops whose copies are known (docs/method.md §7).

    Each scenario (a constant, rising or falling copier, one as loose as the set is spread, a
    non-copier that contracts, twins) runs five replace cycles through the evaluation stage; the
    table gives each measure's largest error against the truth and its trend.

    Examples:

    \b
      collapse-diffusion groundtruth --seeds 0 --sizes 32
      collapse-diffusion groundtruth --data digits,mnist5k --out docs/results/copy_suite.jsonl
    """
    from ..core.io import atomic_write_text
    from ..experiments.copy_suite import score_table
    from ..experiments.groundtruth import run_suite
    names = csv(data_sets, str, "--data")
    unknown = [s for s in names if s not in ("digits", "mnist5k")]
    if unknown:
        raise UserError(f"--data: '{unknown[0]}' is not a shipped source; use digits or mnist5k")
    if samples < 8:
        raise UserError(f"--samples {samples}: give at least 8 samples per cycle")
    rows = run_suite(tuple(names), tuple(csv(sizes, int, "--sizes")), tuple(csv(seeds, int, "--seeds")), samples)
    atomic_write_text(out, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    typer.echo("\n".join(score_table(rows)))
    typer.echo(f"wrote {out} ({len(rows)} rows)")
