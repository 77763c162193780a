"""DDPM training loss and the sampling loop, leaning on diffusers for the schedules.

Forward process (Ho et al. 2020): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, eps ~ N(0, I), with
the 1000-step linear beta schedule 1e-4..0.02 and epsilon-prediction (docs/method.md §6). The loss is
the MSE between predicted and true noise. Sampling is ancestral DDPM or deterministic DDIM (eta=0).
Images are float32 in [-1, 1], shape (B, C, H, W).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler

from ..core.config import DiffusionConfig
from .noise import counter_normal


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


def ddpm_step(scheduler: DDPMScheduler, eps: torch.Tensor, t: int, x: torch.Tensor,
              noise: torch.Tensor) -> torch.Tensor:
    """One ancestral DDPM step x_t -> x_{t-1} (Ho et al. 2020, eq. 6-7), as DDPMScheduler.step computes it
    with ``fixed_small`` variance and clipping, but with the caller's noise (per-image, see noise.py).

        x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), clipped to [-1, 1]
        mean = sqrt(abar_prev) beta_t / (1 - abar_t) x0 + sqrt(alpha_t) (1 - abar_prev) / (1 - abar_t) x_t
        x_{t-1} = mean + sqrt(beta_t (1 - abar_prev) / (1 - abar_t)) z        (no noise at t = 0)
    """
    prev = scheduler.previous_timestep(t)
    abar = scheduler.alphas_cumprod.to(x.device)
    a_t = abar[t]
    a_prev = abar[prev] if prev >= 0 else torch.ones((), device=x.device)
    alpha_t = a_t / a_prev
    beta_t = 1 - alpha_t
    x0 = ((x - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-1, 1)
    mean = (a_prev.sqrt() * beta_t / (1 - a_t)) * x0 + (alpha_t.sqrt() * (1 - a_prev) / (1 - a_t)) * x
    if t == 0:
        return mean
    var = ((1 - a_prev) / (1 - a_t) * beta_t).clamp(min=1e-20)
    return mean + var.sqrt() * noise


@torch.no_grad()
def sample_loop(unet: torch.nn.Module, scheduler: DDPMScheduler | DDIMScheduler, indices: range | list[int],
                seed: int, shape: tuple[int, int, int], steps: int, device: torch.device,
                model_fn: Optional[Callable] = None) -> torch.Tensor:
    """Generate the images ``indices`` of a call seeded ``seed``; returns (B, C, H, W) in [-1, 1].

    Image i's starting noise and DDPM's per-step noise are counter-based draws keyed by
    ``sample_seed(seed, i)`` (noise.py), so image i is the same in any batch and on any number of
    processes. DDIM runs with eta = 0 (deterministic after the starting noise).
    """
    seeds = torch.tensor([sample_seed(seed, i) for i in indices], dtype=torch.int64)
    x = counter_normal(seeds, 0, shape, device)
    scheduler.set_timesteps(steps if steps > 0 else scheduler.config.num_train_timesteps)
    forward = model_fn or (lambda x_, t_: unet(x_, t_).sample)
    for k, t in enumerate(scheduler.timesteps):
        tt = torch.full((x.shape[0],), int(t), device=device, dtype=torch.long)
        eps = forward(x, tt).float()
        if isinstance(scheduler, DDPMScheduler):
            x = ddpm_step(scheduler, eps, int(t), x, counter_normal(seeds, k + 1, shape, device))
        else:
            x = scheduler.step(eps, t, x, eta=0.0).prev_sample
    return x
