"""What every command shares: the Typer app, the common options, and the small helpers that load
a config, read and write image sets, and check option values."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..core.errors import UserError
from ..loop.experiment import ExperimentConfig, load_config, save_config

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Study and prevent model collapse in self-consuming diffusion models.")

ConfigArg = typer.Option(None, "--config", "-c", metavar="YAML",
                         help="YAML experiment config (default: built-in digits defaults).")
SetOpt = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                     help="Override a config key: section.key=value (repeatable).")
WaitOpt = typer.Option(False, "--wait", help="If another process holds the run directory, wait for it instead of "
                                                "refusing.")
RunDirOpt = typer.Option(None, "--run-dir", help="Run directory (default: runs/<config name>).")


def load_cfg(config: Optional[Path], overrides: List[str]) -> ExperimentConfig:
    """Load the config, check its device and, under torchrun, join the process group on it."""
    import os

    from ..core import runtime
    cfg = load_config(config, overrides)
    runtime.check_device(cfg.runtime.device)
    if "RANK" in os.environ:
        runtime.init(runtime.local_device(cfg.runtime.device))
    return cfg


def is_main() -> bool:
    """Rank 0 (or no torchrun): the process that prints and writes."""
    from ..core import runtime
    return runtime.is_main()


def load_set(path: Path):
    from ..data.images import load_npz
    return load_npz(Path(path))


def write_set(images, out: Path, cfg: ExperimentConfig) -> None:
    """An image set as .npz, its grid .png and the resolved config beside it."""
    from ..diffusion.sample import save_grid
    images.save(out)
    save_grid(images.images, out.with_suffix(".png"))
    save_config(cfg, out.with_suffix(".config.yaml"))
    typer.echo(f"wrote {len(images)} images to {out} and {out.with_suffix('.png')}")


def csv(text: str, kind, option: str) -> list:
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


def check_seed(seed: int, option: str) -> None:
    """One rule for seeds everywhere (the config's `seed` and study.seeds too): non-negative integers."""
    if seed < 0:
        raise UserError(f"{option} {seed}: a seed must be a non-negative integer")
