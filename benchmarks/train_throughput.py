"""Training images/s of the project's step against a plain eager diffusers loop, same model, same run.

    python benchmarks/train_throughput.py [--preset digits-tiny] [--batch 64] [--steps 150] [--device auto]
    python benchmarks/train_throughput.py --workers 2     # the default study's CPU setup

Baseline: the loop from the diffusers training example (add_noise, unet, MSE, backward, AdamW step),
fp32 eager, no EMA, no clipping, one process with torch's default threads. Ours:
``collapse_diffusion.diffusion.train.train`` end to end (EMA, clipping, scheduler, logging, checkpoints; on
CUDA the fast path). With ``--workers W`` ours is the study's setup: W processes training one model
each on one thread (runtime.threads=1, runtime.workers=W), run at the same time; their rates add up.
Prints both and the ratio.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from collapse_diffusion.core.config import DiffusionConfig, RuntimeConfig, TrainConfig
from collapse_diffusion.diffusion.distributed import local_device
from collapse_diffusion.diffusion.model import build_unet
from collapse_diffusion.diffusion.process import make_scheduler
from collapse_diffusion.diffusion.train import train

RES = {"digits-tiny": (1, 8), "mnist-tiny": (1, 28), "mnist-small": (1, 32), "unet48": (3, 32)}


def plain_loop(preset: str, batch: int, steps: int, device: torch.device, warmup: int) -> float:
    c, r = RES[preset]
    torch.manual_seed(0)
    unet = build_unet(preset, c, r).to(device)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    sched = make_scheduler(DiffusionConfig())
    data = torch.rand(1024, c, r, r, device=device) * 2 - 1
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        x0 = data[torch.randint(0, len(data), (batch,), device=device)]
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (batch,), device=device)
        loss = F.mse_loss(unet(sched.add_noise(x0, noise, t), t).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def ours(preset: str, batch: int, steps: int, device: str, warmup: int, threads: int = 0) -> float:
    c, r = RES[preset]
    images = np.random.default_rng(0).integers(0, 256, (1024, c, r, r), dtype=np.uint8)
    cfg = TrainConfig(steps=warmup + steps, batch_size=batch, warmup_steps=10, checkpoint_every=10 ** 9)
    with tempfile.TemporaryDirectory() as tmp:
        train(images, cfg, DiffusionConfig(), preset, Path(tmp), seed=0, runtime=RuntimeConfig(device, threads=threads))
        rows = [json.loads(line) for line in (Path(tmp) / "train_log.jsonl").read_text().splitlines()]
    # images/s over the steps after warm-up, from the log's cumulative rate at two points
    first = next(r for r in rows if r["step"] >= warmup)
    last = rows[-1]
    if first is last:  # one log row: the cumulative rate, warm-up included
        return last["images_per_s"]
    t_first, t_last = first["step"] * batch / first["images_per_s"], last["step"] * batch / last["images_per_s"]
    return (last["step"] - first["step"]) * batch / (t_last - t_first)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="digits-tiny", choices=sorted(RES))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--warmup", type=int, default=25)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=1, help="CPU: W single-thread training processes at once")
    a = ap.parse_args()
    dev = local_device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    base = plain_loop(a.preset, a.batch, a.steps, dev, a.warmup)
    if a.workers > 1:
        import multiprocessing
        from functools import partial
        job = partial(ours, a.preset, a.batch, a.steps, a.device, a.warmup, 1)
        with multiprocessing.get_context("spawn").Pool(a.workers) as pool:
            rates = pool.map(_call, [job] * a.workers)
        mine, how = sum(rates), f"{a.workers} workers x 1 thread"
    else:
        mine, how = ours(a.preset, a.batch, a.steps, a.device, a.warmup), "one process"
    print(f"device: {name}; preset {a.preset}, batch {a.batch}, {a.steps} timed steps")
    print(f"plain eager diffusers loop: {base:9.1f} img/s")
    print(f"collapse_diffusion.diffusion.train:   {mine:9.1f} img/s   ratio {mine / base:.2f}x ({how})")


def _call(job) -> float:
    return job()


if __name__ == "__main__":
    main()
