"""Training images/s of the project's step against a plain eager diffusers loop, interleaved.

    python benchmarks/train_throughput.py                          # digits-tiny, batch 64, 1 thread
    python benchmarks/train_throughput.py --preset mnist-tiny --batch 16 --fast --repeats 7

Baseline: the loop of the diffusers training example (add_noise, unet, MSE, backward, AdamW step),
fp32, eager, no EMA, no clipping, on the same threads. Ours: ``collapse_diffusion.diffusion.train.
train`` end to end (EMA, clipping, schedule, logging; ``--fast``: runtime.fast=true). The two sides
alternate over --repeats rounds (A B, then B A, ...), each round a fresh model timed over --steps
steps after --warmup, so a busy or throttling machine slows both alike; the script prints each
side's median rate and the median of the per-round ratios with their range. A sequential
baseline-then-ours run on a loaded machine once printed 3.15x for an unchanged step.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_presets import RES

from collapse_diffusion.core.config import DiffusionConfig, RuntimeConfig, TrainConfig
from collapse_diffusion.core.runtime import local_device
from collapse_diffusion.diffusion.model import build_unet
from collapse_diffusion.diffusion.process import make_scheduler
from collapse_diffusion.diffusion.train import train


def plain_loop(preset: str, batch: int, steps: int, device: torch.device, warmup: int) -> float:
    """Images/s of the plain eager fp32 loop over ``steps`` steps after ``warmup``."""
    c, r = RES[preset]
    torch.manual_seed(0)
    unet = build_unet(preset, c, r).to(device)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    sched = make_scheduler(DiffusionConfig())
    data = torch.rand(1024, c, r, r, device=device) * 2 - 1
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        x0 = data[torch.randint(0, len(data), (batch,), device=device)]
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (batch,), device=device)
        loss = F.mse_loss(unet(sched.add_noise(x0, noise, t), t).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return batch * steps / (time.perf_counter() - t0)


def ours(preset: str, batch: int, steps: int, warmup: int, rt: RuntimeConfig) -> float:
    """Images/s of ``train`` over the steps after ``warmup``, from the times at which steps end."""
    c, r = RES[preset]
    images = np.random.default_rng(0).integers(0, 256, (1024, c, r, r), dtype=np.uint8)
    cfg = TrainConfig(steps=warmup + steps, batch_size=batch, warmup_steps=10, checkpoint_every=10 ** 9)
    ends: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        train(images, cfg, DiffusionConfig(), preset, Path(tmp), seed=0, runtime=rt,
              on_step=lambda done: ends.__setitem__(done, time.perf_counter()))
        assert json.loads((Path(tmp) / "train_log.jsonl").read_text().splitlines()[-1])["step"] == warmup + steps
    return batch * steps / (ends[warmup + steps] - ends[warmup])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="digits-tiny", choices=sorted(RES))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads of both sides (the study trains on 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fast", action="store_true", help="ours on the fast path (runtime.fast=true)")
    ap.add_argument("--compile", action="store_true", help="ours under torch.compile (runtime.compile=true)")
    a = ap.parse_args()
    dev = local_device(a.device)
    torch.set_num_threads(a.threads)
    rt = RuntimeConfig(a.device, fast=a.fast, compile=a.compile, threads=a.threads)
    base, mine = [], []
    for k in range(a.repeats):
        order = (0, 1) if k % 2 == 0 else (1, 0)
        for side in order:
            if side == 0:
                base.append(plain_loop(a.preset, a.batch, a.steps, dev, a.warmup))
            else:
                mine.append(ours(a.preset, a.batch, a.steps, a.warmup, rt))
    ratios = [m / b for m, b in zip(mine, base)]
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {a.threads} thread(s)"
    path = "fast path" if a.fast else "fp32 reference"
    print(f"device: {name}; preset {a.preset}, batch {a.batch}; {a.repeats} interleaved rounds of {a.steps} steps")
    print(f"plain eager diffusers loop (fp32): median {statistics.median(base):8.1f} img/s")
    print(f"collapse_diffusion train ({path}{', compiled' if a.compile else ''}): median "
          f"{statistics.median(mine):8.1f} img/s")
    print(f"ratio: median {statistics.median(ratios):.2f}x, range {min(ratios):.2f}-{max(ratios):.2f}x "
          f"over {len(ratios)} rounds")


if __name__ == "__main__":
    main()
