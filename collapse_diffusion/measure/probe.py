"""The memorizer share: a copy measure that asks the model itself (docs/method.md §7).

Geometry alone cannot tell a copier from an interpolator once the training set holds near-twins
(copies of copies carrying a model's smooth error): a sample between two twins is a copy of either,
or an interpolant of both. The model can tell. Each training image z is noised to the timestep where
signal and noise have equal power (abar_t = 1/2) and three denoisers run the same deterministic
reverse process (DDIM, eta = 0) from that same x_t to t = 0:

- the model,
- the exact memorizer of D_n: the posterior mean over D_n's images, the denoiser that a model of
  unlimited capacity trained to zero loss on D_n learns (Kadkhodaie et al., ICLR 2024);
- the Gaussian generalizer: the posterior mean under a Gaussian fitted to D_n, a model that knows
  only D_n's mean and covariance and so copies nothing.

The model *memorizes* z when its output is closer to the memorizer's than a third of the distance
between the generalizer's output and the memorizer's (the 1/3 rule, with the two closed-form models
as the yardstick instead of a second neighbour, so twins in D_n do not matter: the memorizer blends
them as the model would). The share of D_n memorized carries its Clopper-Pearson interval. By
construction the exact memorizer scores 1 and the Gaussian generalizer 0 (the tests check both).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from ..core.records import Col, Record, detail, metric
from .memorization import clopper_pearson, proportion

if TYPE_CHECKING:
    import torch

PROBE = "probe"        # the role of a memorizer-share report in a cycle's metrics
ABAR = 0.5             # start the reverse process where signal and noise power are equal
PROBE_STEPS = 50       # DDIM schedule of the probe (abar = 1/2 is reached after 37 of its 50 steps)
EpsFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class ReturnReport(Record):
    """Share of D_n on which the model's reverse process from abar_t = 1/2 lands with the exact memorizer."""
    memorizer_share: float = metric(
        "memorizer share (model probe: the model denoises D_n as its exact memorizer does)", ci="memorizer_ci95",
        n="n_probed", rate=True,
        columns={PROBE: Col("memorizer_share", "memorizer share of D_n (model probe, method §7)", "memorizer share")})
    memorizer_ci95: tuple = detail(columns={PROBE: Col("memorizer_ci95", "")})
    ratio_median: float = metric("median distance to the memorizer over the generalizer's", fmt=".3f",
                                 columns={PROBE: Col("memorizer_ratio_median", "median ratio to the memorizer "
                                                     "(model probe)", plot=False)})
    n_probed: int = detail("training images probed", columns={PROBE: Col("n_probed", "images probed")})
    timestep: int = detail("start timestep")
    steps: int = detail("DDIM steps run")
    seconds: float = detail("wall time (s)")
    memorizer_share_frozen: Optional[float] = metric(
        "memorizer share, yardstick frozen at cycle 1 (distance to the memorizer below a third of D_1's median "
        "generalizer-memorizer distance)", ci="memorizer_frozen_ci95", n="n_probed", rate=True,
        columns={PROBE: Col("memorizer_share_frozen", "memorizer share of D_n, yardstick frozen at cycle 1 "
                            "(copying, method §7b)", "memorizer share (frozen)")}, default=None)
    memorizer_frozen_ci95: Optional[tuple] = detail(columns={PROBE: Col("memorizer_frozen_ci95", "")}, default=None)
    yardstick: Optional[float] = detail("frozen yardstick (model units, L2)", columns={
        PROBE: Col("probe_yardstick", "")}, default=None)
    draws: Optional[int] = detail("noise draws per training image", columns={PROBE: Col("probe_draws", "")},
                                  default=None)


def start(scheduler, steps: int, abar: float = ABAR) -> list[int]:
    """The DDIM timesteps (descending) of a ``steps``-step schedule from the first one at or below
    the timestep where abar_t falls to ``abar``."""
    scheduler.set_timesteps(steps)
    cut = int(np.searchsorted(-scheduler.alphas_cumprod.numpy(), -abar))
    return [int(t) for t in scheduler.timesteps if int(t) <= cut]


def reverse_from(eps_fn: EpsFn, scheduler, x0: "torch.Tensor", noise: "torch.Tensor",
                 timesteps: list[int]) -> "torch.Tensor":
    """x0 (B, C, H, W) in [-1, 1] noised to timesteps[0] with ``noise``, then DDIM (eta = 0) to t = 0."""
    import torch
    with torch.no_grad():
        return _reverse(eps_fn, scheduler, x0, noise, timesteps)


def _reverse(eps_fn: EpsFn, scheduler, x0, noise, timesteps):
    import torch
    x = scheduler.add_noise(x0, noise, torch.tensor([timesteps[0]]))
    for t in timesteps:
        tt = torch.full((len(x),), t, dtype=torch.long, device=x.device)
        x = scheduler.step(eps_fn(x, tt).float(), t, x, eta=0.0).prev_sample
    return x


MIN_PROBES = 256       # the frozen share probes each image with ceil(MIN_PROBES / N) noise draws


def draws_for(n: int) -> int:
    """Noise draws per training image of the frozen share: enough for MIN_PROBES probes in all."""
    return max(1, -(-MIN_PROBES // max(n, 1)))


def _distances(eps_fn: EpsFn, scheduler, images: np.ndarray, seed: int, ts: list[int], draws: int, batch: int,
               device) -> tuple[np.ndarray, np.ndarray]:
    """(draws, n) distances of the model's output to the memorizer's and of the generalizer's to the
    memorizer's; draw j of image i is the counter-based noise keyed by (seed, j * n + i)."""
    import torch

    from ..data.images import to_model
    from ..diffusion.noise import counter_normal
    from ..diffusion.process import sample_seed
    refs = (memorizer(images, scheduler), gaussian(images, scheduler))
    n = len(images)
    to_mem, yard = np.empty((draws, n)), np.empty((draws, n))
    for j in range(draws):
        for s in range(0, n, batch):
            x0 = to_model(images[s:s + batch]).to(device)
            seeds = torch.tensor([sample_seed(seed, j * n + i) for i in range(s, s + len(x0))], dtype=torch.int64)
            noise = counter_normal(seeds, 0, tuple(x0.shape[1:]), device)
            outs = [reverse_from(fn, scheduler, x0, noise, ts).flatten(1).double().cpu()
                    for fn in ((eps_fn, *refs) if eps_fn is not None else refs)]
            mem, gen = outs[-2], outs[-1]
            to_mem[j, s:s + len(x0)] = (outs[0] - mem).norm(dim=1).numpy() if eps_fn is not None else np.nan
            yard[j, s:s + len(x0)] = (gen - mem).norm(dim=1).numpy()
    return to_mem, yard


def frozen_yardstick(first: np.ndarray, scheduler, seed: int, steps: int = PROBE_STEPS, abar: float = ABAR,
                     threshold: float = 1 / 3) -> float:
    """The frozen probe's yardstick: ``threshold`` times the median distance between the Gaussian
    generalizer's and the exact memorizer's outputs on D_1 = ``first`` (closed forms only, seed as the
    cycle-1 probe's), fixed for every later cycle (model units, L2)."""
    _, yard = _distances(None, scheduler, first, seed, start(scheduler, steps, abar), 1, 256, None)
    return float(threshold * np.median(yard[0]))


def return_report(eps_fn: EpsFn, scheduler, images: np.ndarray, seed: int, steps: int = PROBE_STEPS,
                  abar: float = ABAR, threshold: float = 1 / 3, batch: int = 256,
                  device: Optional["torch.device"] = None, yardstick: Optional[float] = None,
                  draws: Optional[int] = None) -> ReturnReport:
    """The memorizer share of training images ``images`` (n, C, H, W) uint8 under ``eps_fn`` (the
    model's noise prediction; float32 in, float32 out) with a DDIM ``scheduler`` of ``steps`` steps;
    image i's first noise draw is the counter-based one keyed by (seed, i). With ``yardstick`` (from
    :func:`frozen_yardstick` on D_1) also the frozen share over ``draws`` draws per image (default
    :func:`draws_for`); its interval counts images, not probes (draws of one image are not independent)."""
    import time

    import torch
    device = device or torch.device("cpu")
    t0 = time.perf_counter()
    ts = start(scheduler, steps, abar)
    k = (draws or draws_for(len(images))) if yardstick is not None else 1
    to_mem, yard = _distances(eps_fn, scheduler, images, seed, ts, k, batch, device)
    r = to_mem[0] / np.maximum(yard[0], 1e-12)
    share, ci = proportion(r < threshold)
    frozen = frozen_ci = None
    if yardstick is not None:
        frozen = float((to_mem < yardstick).mean())
        frozen_ci = tuple(clopper_pearson(frozen * len(images), len(images)))
    return ReturnReport(memorizer_share=share, memorizer_ci95=tuple(ci), ratio_median=float(np.median(r)),
                        n_probed=len(images), timestep=ts[0], steps=len(ts), seconds=round(time.perf_counter() - t0, 3),
                        memorizer_share_frozen=frozen, memorizer_frozen_ci95=frozen_ci, yardstick=yardstick,
                        draws=k if yardstick is not None else None)


def probe_model(model_dir: Path, images: np.ndarray, seed: int, diffusion, runtime=None,
                first: Optional[np.ndarray] = None, first_seed: Optional[int] = None,
                draws: Optional[int] = None) -> ReturnReport:
    """The memorizer share of the trained model in ``model_dir`` (diffusers format) on its training
    images, fp32 eager on the runtime's device (the probe's verdicts never depend on fast kernels);
    with ``first`` (D_1) also the frozen share, its yardstick from D_1 under ``first_seed``, over
    ``draws`` noise draws per image (None: :func:`draws_for`)."""
    from ..core import runtime as dist
    from ..diffusion.process import make_scheduler
    from ..diffusion.train import load_unet
    dev = dist.local_device(runtime.device if runtime is not None else "auto")
    unet = load_unet(Path(model_dir), dev)
    sched = make_scheduler(diffusion, "ddim")
    yard = frozen_yardstick(first, sched, seed if first_seed is None else first_seed) if first is not None else None
    return return_report(lambda x, t: unet(x, t).sample, sched, images, seed, device=dev, yardstick=yard,
                         draws=draws)


def smoothed_memorizer(images: np.ndarray, scheduler, sigma: float) -> EpsFn:
    """The optimal denoiser of a mixture of Gaussians N(z_j, sigma^2 I) around the training images z_j
    (``sigma`` in grey levels, 0-255 scale): a copier of fixed pixel precision; sigma = 0 is the exact
    memorizer, and a large sigma smooths toward a generalizer (kernel smoothing between the two)."""
    import torch

    from ..data.images import to_model
    z = to_model(images.reshape(len(images), -1), torch.float64)
    s2 = (sigma / 127.5) ** 2
    abar = scheduler.alphas_cumprod.double()

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1).double().cpu()
        a = abar[t.cpu()].view(-1, 1)
        v = a * s2 + 1 - a                                  # variance of x_t given component j
        d2 = (flat ** 2).sum(1, keepdim=True) - 2 * a.sqrt() * flat @ z.T + a * (z ** 2).sum(1)[None]
        w = torch.softmax(-d2 / (2 * v), 1)
        x0 = w @ z + (a.sqrt() * s2 / v) * (flat - a.sqrt() * (w @ z))
        return ((flat - a.sqrt() * x0) / (1 - a).sqrt()).reshape(x.shape).float().to(x.device)
    return eps


def memorizer(images: np.ndarray, scheduler) -> EpsFn:
    """The exact memorizer of a training set: epsilon of the posterior mean over its images."""
    import torch

    from ..data.images import to_model
    z = to_model(images.reshape(len(images), -1), torch.float64)
    abar = scheduler.alphas_cumprod.double()

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1).double().cpu()
        a = abar[t.cpu()].view(-1, 1)
        d2 = (flat ** 2).sum(1, keepdim=True) - 2 * a.sqrt() * flat @ z.T + a * (z ** 2).sum(1)[None]
        x0 = torch.softmax(-d2 / (2 * (1 - a)), 1) @ z
        return ((flat - a.sqrt() * x0) / (1 - a).sqrt()).reshape(x.shape).float().to(x.device)
    return eps


def gaussian(images: np.ndarray, scheduler) -> EpsFn:
    """The Gaussian generalizer of a training set: epsilon of the posterior mean under N(mu, S) fit to it
    (S = V diag(l) V^T: x0 = mu + V diag(sqrt(a) l / (a l + 1 - a)) V^T (x_t - sqrt(a) mu))."""
    import torch

    from ..data.images import to_model
    z = to_model(images.reshape(len(images), -1), torch.float64)
    mu = z.mean(0)
    lam, vec = torch.linalg.eigh(torch.cov(z.T) if len(z) > 1 else torch.zeros(len(mu), len(mu), dtype=torch.float64))
    lam = lam.clamp_min(0)
    abar = scheduler.alphas_cumprod.double()

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1).double().cpu()
        a = abar[t.cpu()].view(-1, 1)
        coef = ((flat - a.sqrt() * mu) @ vec) * (a.sqrt() * lam / (a * lam + 1 - a))
        x0 = mu + coef @ vec.T
        return ((flat - a.sqrt() * x0) / (1 - a).sqrt()).reshape(x.shape).float().to(x.device)
    return eps
