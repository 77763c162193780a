"""Self-verification (docs/method.md §9): a model's confidence in an image, without any reference.

The score of image x under model M is its denoising loss averaged over a fixed grid of timesteps
t_1..t_T (evenly spaced over the schedule) and a fixed set of noise draws eps_1..eps_K:

    s(x) = 1/(T K) sum_{t, k} || eps_k - eps_M(sqrt(abar_t) x + sqrt(1 - abar_t) eps_k, t) ||^2 / d

A lower score means M denoises x well. Up to constants and a weighting over t it is the variational
bound on -log p_M(x), so it ranks images by the model's own likelihood. It is not a quality or
novelty measure: a model scores its own training images, and copies of them, as most confident,
and every candidate is scored with the same noise (common random numbers) so scores compare.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core import runtime as dist
from ..core.config import DiffusionConfig
from ..data.images import to_model
from ..diffusion.process import make_scheduler


def score_timesteps(total: int, count: int) -> torch.Tensor:
    """``count`` timesteps evenly spaced over 0..total-1 (bin centres)."""
    return torch.as_tensor(((np.arange(count) + 0.5) * total / count).astype(np.int64))


@torch.no_grad()
def denoising_scores(model_dir: Path, images: np.ndarray, diff: DiffusionConfig, timesteps: int = 10,
                     noise_draws: int = 2, seed: int = 0, device: str = "auto", batch: int = 256) -> np.ndarray:
    """(n,) mean denoising loss of uint8 images (N, C, H, W) under the model in ``model_dir``."""
    from ..diffusion.train import load_unet
    dev = dist.local_device(device)
    unet = load_unet(Path(model_dir), dev)
    sched = make_scheduler(diff)
    ts = score_timesteps(diff.num_train_timesteps, timesteps)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn((noise_draws, *images.shape[1:]), generator=g).to(dev)
    out = np.empty(len(images), np.float64)
    for start in range(0, len(images), batch):
        x0 = to_model(images[start:start + batch]).to(dev)
        total = torch.zeros(len(x0), dtype=torch.float64, device=dev)
        for t in ts.tolist():
            tt = torch.full((len(x0),), t, dtype=torch.long, device=dev)
            for eps in noise:
                e = eps.expand_as(x0)
                pred = unet(sched.add_noise(x0, e, tt), tt).sample
                total += (pred.float() - e).square().flatten(1).mean(1).double()
        out[start:start + len(x0)] = (total / (len(ts) * len(noise))).cpu().numpy()
    return out
