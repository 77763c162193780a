"""The study commands: run (a whole study, or some of its chains), chains, cycle, init, report. Each
parses, loads the config and calls one function of ``loop.commands`` (which holds the run
directory's locks), then the report where asked."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import RunDirOpt, SetOpt, WaitOpt, app, csv, is_main, load_cfg


@app.command()
def run(config: Path = typer.Argument(..., help="Study config (YAML), e.g. configs/digits.yaml."),
        run_dir: Optional[Path] = RunDirOpt,
        overrides: List[str] = SetOpt,
        seeds: Optional[str] = typer.Option(None, "--seeds",
                                            help="Replicates, comma-separated (= --set study.seeds=[...])."),
        only: List[str] = typer.Option([], "--only", metavar="CHAIN",
                                       help="Run only these chains (SEED/PARADIGM/ARM, or SEED/shared for a "
                                            "seed's cycle 1; repeatable or comma-separated), beside other "
                                            "processes on other chains; `collapse-diffusion chains` lists them."),
        report: bool = typer.Option(True, help="Write report.md and plots when the study completes."),
        wait: bool = WaitOpt) -> None:
    """Run a whole study: every cycle of every paradigm and arm (and seed), resuming from existing files.

    A study is each seed's shared cycle 1, then one independent chain per (seed, paradigm, arm).
    With --only, just those chains run, and other processes may run other chains of the same
    run directory at the same time (make -j, a SLURM array, one per GPU); `run` without --only
    then finds every stage done and writes metrics.jsonl, the same whatever the split.

    Examples:

    \b
      collapse-diffusion run configs/digits.yaml
      collapse-diffusion run configs/digits.yaml --run-dir runs/digits_seeds --seeds 0,1,2
      collapse-diffusion run configs/digits.yaml --run-dir runs/d2 --set seed=1
      collapse-diffusion run configs/digits.yaml --only 0/replace/greedy      # one chain
      collapse-diffusion run configs/mnist.yaml --set data.root=~/data
    """
    from ..loop.commands import run_command, run_only
    extra = [f"study.seeds=[{','.join(map(str, csv(seeds, int, '--seeds')))}]"] if seeds is not None else []
    cfg = load_cfg(config, list(overrides) + extra)
    root = run_dir or Path("runs") / config.stem
    if only:
        done = run_only(root, cfg, list(only), wait)
        typer.echo(f"chains done: {', '.join(c.name for c in done)}; `collapse-diffusion run {config} --run-dir "
                   f"{root}` writes metrics.jsonl once every chain is")
        return
    typer.echo(f"wrote {run_command(root, cfg, wait)}")
    if report and is_main():
        from ..analysis.report import write_report
        typer.echo(f"wrote {write_report(root)}")


@app.command()
def chains(config: Path = typer.Argument(..., help="Study config (YAML)."),
           run_dir: Optional[Path] = RunDirOpt,
           overrides: List[str] = SetOpt,
           make: bool = typer.Option(False, "--make", help="Print Makefile rules instead: one target per chain "
                                                          "and cycle (the Makefile includes them).")) -> None:
    """List a study's chains, one per line (SEED/PARADIGM/ARM), for `run --only` and job arrays.

    Examples:

    \b
      collapse-diffusion chains configs/digits.yaml
      collapse-diffusion chains configs/digits.yaml --set study.seeds=[0,1,2] | wc -l
      collapse-diffusion chains configs/digits.yaml --make --run-dir runs/digits > runs/digits.mk
    """
    from ..loop.chains import chains as study_chains
    from ..loop.chains import make_rules
    from ..loop.experiment import load_config
    cfg = load_config(config, overrides)
    if make:
        typer.echo(make_rules(cfg, str(run_dir or Path("runs") / config.stem)))
        return
    typer.echo("\n".join(c.name for c in study_chains(cfg)))


@app.command()
def cycle(run_dir: Path = typer.Argument(..., help="A run directory started by `run` or `init`."),
          arm: str = typer.Argument(..., help="paradigm/arm, e.g. replace/greedy (or arm with one paradigm)."),
          n: int = typer.Argument(..., help="Cycle number (1 = training on real data)."),
          wait: bool = WaitOpt) -> None:
    """Run one cycle of one arm: (select D_n,) train on D_n, sample r*N, evaluate, select D_{n+1}.

    Needs cycle n-1 of the arm finished; other arms' cycles may run at the same time. In a run
    with several seeds, pass the seed's folder (RUN/seed_S).

    Examples:

    \b
      collapse-diffusion init configs/digits.yaml --run-dir runs/digits
      collapse-diffusion cycle runs/digits replace/greedy 1
      collapse-diffusion cycle runs/digits accumulate-subsample/tdf 2
    """
    from ..loop.commands import cycle_command
    d = cycle_command(run_dir, arm, n, wait)
    typer.echo(f"cycle {n} of {arm} done: {d}")


@app.command()
def init(config: Path = typer.Argument(..., help="Study config (YAML)."),
         run_dir: Optional[Path] = RunDirOpt,
         overrides: List[str] = SetOpt, wait: bool = WaitOpt) -> None:
    """Create a run directory (config, real pool, D_1) without running anything; checks the config.

    Examples:

    \b
      collapse-diffusion init configs/digits.yaml --run-dir runs/digits
    """
    from ..loop.commands import init_command
    root = run_dir or Path("runs") / config.stem
    init_command(root, load_cfg(config, overrides), wait)
    typer.echo(f"initialised {root}")


@app.command("report")
def report_cmd(run_dir: Path = typer.Argument(..., help="A run directory with metrics.jsonl.")) -> None:
    """Write RUN_DIR/report.md with tables, plots, sample grids and nearest-neighbour pictures.

    Examples:

    \b
      collapse-diffusion report runs/digits
    """
    from ..analysis.report import write_report
    typer.echo(f"wrote {write_report(run_dir)}")
