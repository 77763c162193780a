"""Sampling N images from a trained model into an image set (docs/method.md §1: G_n).

Image i of a call depends only on (seed, i): batches and ranks only decide who computes it. Under
torchrun rank r generates images r, r+W, ... and the shards are gathered in index order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core import runtime as dist
from ..core.config import DiffusionConfig, RuntimeConfig, SampleConfig
from ..core.errors import UserError
from ..data.images import ImageSet, make_set, to_uint8
from .process import make_scheduler, sample_loop
from .train import load_unet


def generate(model_dir: Path, n: int, seed: int, cfg: SampleConfig, diff: DiffusionConfig,
             runtime: RuntimeConfig = RuntimeConfig(), cycle: int = 1, progress: bool = True) -> ImageSet:
    """Generate ``n`` images; provenance ``(cycle, i)``; a progress bar on rank 0 with ``progress``.
    On CUDA the step runs in bf16 and compiled, unless ``runtime.fast`` / ``runtime.compile`` say
    false (fp32 eager throughout); on a CPU with bf16 units ``runtime.fast=true`` runs it in bf16."""
    dev = dist.local_device(runtime.device)
    dist.init(dev)
    unet = load_unet(Path(model_dir), dev)
    shape = (unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
    fast, compile_ = dist.fast_kernels(runtime.fast, dev), dist.compiled(runtime.compile, dev)
    model_fn, amp = None, dist.bf16_autocast(fast, dev)
    if amp or compile_:
        net = torch.compile(unet, mode="reduce-overhead" if dev.type == "cuda" else None) if compile_ else unet

        def model_fn(x, t):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                return net(x, t).sample
    mine = list(range(dist.rank(), n, dist.world_size()))
    chunks = []
    bar = tqdm(total=n, desc="sample", unit="img", disable=not (progress and dist.is_main()), dynamic_ncols=True,
               mininterval=1.0)
    for start in range(0, len(mine), cfg.batch_size):
        idx = mine[start:start + cfg.batch_size]
        x = sample_loop(unet, make_scheduler(diff, cfg.sampler), idx, seed, shape, cfg.steps, dev, model_fn)
        chunks.append(torch.from_numpy(to_uint8(x)))
        bar.update(len(idx) * dist.world_size())
    bar.close()
    local = torch.cat(chunks) if chunks else torch.zeros((0, *shape), dtype=torch.uint8)
    images = dist.gather_cat(local.to(dev), n).cpu().numpy()
    return make_set(images, cycle=cycle)


def check_room(model_dir: Path, n: int, memory: int | None = None) -> None:
    """Refuse a sample count whose images could not fit in memory (``memory`` bytes, default this
    machine's), before anything is allocated: float32 working copies, three per image."""
    import json
    import os
    try:
        size = json.loads((Path(model_dir) / "unet" / "config.json").read_text())
        pixels = size["in_channels"] * size["sample_size"] ** 2
    except (OSError, KeyError, ValueError):
        return
    if memory is None:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 2 ** 40
    need = n * pixels * 4 * 3
    if need > memory // 2:
        most = memory // 2 // (pixels * 4 * 3)
        raise UserError(f"--count {n}: {n} images of {pixels} pixels need about {need / 2 ** 30:.0f} GiB; this machine "
                        f"has {memory / 2 ** 30:.0f} GiB, so ask for at most {most} (or sample in several calls)")


def save_grid(images: np.ndarray, path: Path, nrow: int | None = None, scale: int | None = None) -> None:
    """A PNG grid of uint8 images (N, C, H, W); small images are upscaled (nearest) to be visible."""
    from PIL import Image
    from torchvision.utils import make_grid

    from ..core.io import atomic_path
    x = torch.from_numpy(images[:256])
    scale = scale or max(1, 32 // x.shape[-1])
    x = x.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    grid = make_grid(x, nrow=nrow or int(np.ceil(np.sqrt(len(x)))), padding=2, pad_value=128)
    arr = grid.permute(1, 2, 0).numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(arr[..., 0] if images.shape[1] == 1 else arr).save(tmp, format="PNG")
