"""DDPM training loss and the sampling loop, leaning on diffusers for the schedules (STYLE.md 4).

Forward process (Ho et al. 2020): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, eps ~ N(0, I), with
the 1000-step linear beta schedule 1e-4..0.02 and epsilon-prediction (METHOD.md §6). The loss is
the MSE between predicted and true noise. Sampling is ancestral DDPM or deterministic DDIM (eta=0).
Images are float32 in [-1, 1], shape (B, C, H, W).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler

from .config import DiffusionConfig


def make_scheduler(cfg: DiffusionConfig, sampler: str = "ddpm") -> DDPMScheduler | DDIMScheduler:
    kw = dict(num_train_timesteps=cfg.num_train_timesteps, beta_start=cfg.beta_start, beta_end=cfg.beta_end,
              beta_schedule="linear", prediction_type="epsilon", clip_sample=True)
    if sampler == "ddim":
        return DDIMScheduler(**kw, set_alpha_to_one=True)
    return DDPMScheduler(**kw, variance_type="fixed_small")


def diffusion_loss(unet: torch.nn.Module, scheduler: DDPMScheduler, x0: torch.Tensor,
                   noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Simple epsilon-prediction MSE at timesteps ``t`` (B,) with ``noise`` like ``x0``."""
    xt = scheduler.add_noise(x0, noise, t)
    pred = unet(xt, t).sample
    return F.mse_loss(pred.float(), noise.float())


def sample_seed(seed: int, index: int) -> int:
    """The seed of image ``index`` of a sampling call: independent of batch size and device count."""
    return (seed * 1_000_003 + index) % (2 ** 63 - 1)


@torch.no_grad()
def sample_loop(unet: torch.nn.Module, scheduler: DDPMScheduler | DDIMScheduler, indices: range | list[int],
                seed: int, shape: tuple[int, int, int], steps: int, device: torch.device,
                model_fn: Optional[Callable] = None) -> torch.Tensor:
    """Generate the images ``indices`` of a call seeded ``seed``; returns (B, C, H, W) in [-1, 1].

    Image i starts from noise drawn by its own CPU generator ``sample_seed(seed, i)``, and DDPM's
    per-step noise comes from the same generator, so image i is the same in any batch (STYLE.md 7).
    """
    gens = [torch.Generator().manual_seed(sample_seed(seed, i)) for i in indices]
    x = torch.stack([torch.randn(shape, generator=g) for g in gens]).to(device)
    scheduler.set_timesteps(steps if steps > 0 else scheduler.config.num_train_timesteps)
    step_kw = {"generator": gens} if isinstance(scheduler, DDPMScheduler) else {"eta": 0.0}
    forward = model_fn or (lambda x_, t_: unet(x_, t_).sample)
    for t in scheduler.timesteps:
        tt = torch.full((x.shape[0],), int(t), device=device, dtype=torch.long)
        eps = forward(x, tt).float()
        x = scheduler.step(eps, t, x, **step_kw).prev_sample
    return x
