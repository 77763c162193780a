"""What the CPU benchmark scripts share: the presets' image shapes and their common options."""
from __future__ import annotations

import argparse

RES = {"digits-tiny": (1, 8), "mnist-tiny": (1, 28), "mnist-small": (1, 32), "unet48": (3, 32)}  # (channels, px)
CPU_RUNS = (("digits-tiny", 64), ("mnist-tiny", 16))  # the CPU presets at their configs' batch sizes


def add_step_options(ap: argparse.ArgumentParser, steps: int, warmup: int) -> None:
    """--preset (default: both CPU presets), --batch, --steps, --warmup, --threads."""
    ap.add_argument("--preset", choices=sorted(RES), default=None, help="one preset (default: both CPU presets)")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--threads", type=int, default=1)


def runs(a: argparse.Namespace) -> list[tuple[str, int]]:
    """(preset, batch) pairs the options ask for: one preset at --batch (default 64), or both CPU presets."""
    return [(a.preset, a.batch or 64)] if a.preset else [(p, a.batch or b) for p, b in CPU_RUNS]
