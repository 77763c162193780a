"""Where a training step's time goes, and how far it is from what this machine's cores can do.

    python benchmarks/train_profile.py                       # digits-tiny (batch 64) and mnist-tiny (batch 16)
    python benchmarks/train_profile.py --preset mnist-tiny --batch 16 --threads 1 --fast

Runs ``collapse_diffusion.diffusion.train.train`` (the study's training, one process, --threads
threads) under torch's profiler for --steps steps after a warm-up, and prints per step: the time in
convolutions, attention, group norm, matrix products, pointwise ops, the optimizer (clipping, AdamW,
schedule), the EMA, noise, data indexing, and what no operator accounts for (Python and dispatch
overhead); the step's FLOPs (torch's FLOP counter, forward and backward) and the achieved GFLOP/s
against this machine's fp32 and bf16 matmul peaks, measured in the same run (square matmuls on the
same threads). Baseline: those peaks.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from bench_presets import RES, add_step_options, runs
from torch.profiler import ProfilerActivity, profile, schedule
from torch.utils.flop_counter import FlopCounterMode

from collapse_diffusion.core.config import DiffusionConfig, RuntimeConfig, TrainConfig
from collapse_diffusion.diffusion.model import build_unet
from collapse_diffusion.diffusion.process import diffusion_loss, make_scheduler
from collapse_diffusion.diffusion.train import train

# operator name fragments -> category (first match wins); record_function labels of train._loop are phases
CATEGORIES = (("convolution", ("conv",)),
              ("attention", ("scaled_dot_product", "attention", "softmax", "bmm", "baddbmm")),
              ("group norm", ("group_norm",)), ("matrix products", ("aten::mm", "aten::addmm", "aten::linear")))
PHASES = ("optimizer", "ema", "noise", "data")


def peak(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """GFLOP/s of an n x n matmul in ``dtype`` on the current threads (best of repeated runs)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def step_flops(preset: str, batch: int) -> int:
    """FLOPs of one forward and backward of the preset's UNet at ``batch`` (torch's FLOP counter)."""
    c, r = RES[preset]
    unet = build_unet(preset, c, r)
    x0, noise = torch.randn(batch, c, r, r), torch.randn(batch, c, r, r)
    t = torch.randint(0, 1000, (batch,))
    with FlopCounterMode(display=False) as counter:
        diffusion_loss(unet, make_scheduler(DiffusionConfig()), x0, noise, t).backward()
    return counter.get_total_flops()


def profile_steps(preset: str, batch: int, steps: int, warmup: int, rt: RuntimeConfig):
    """Per-step milliseconds by category, and the wall time per step, over ``steps`` profiled steps."""
    c, r = RES[preset]
    images = np.random.default_rng(0).integers(0, 256, (1024, c, r, r), dtype=np.uint8)
    cfg = TrainConfig(steps=warmup + steps + 1, batch_size=batch, warmup_steps=10, checkpoint_every=10 ** 9)
    marks: dict[int, float] = {}
    window = schedule(wait=warmup - 1, warmup=1, active=steps, repeat=1)
    with profile(activities=[ProfilerActivity.CPU], schedule=window) as prof:
        def on_step(done: int) -> None:
            marks[done] = time.perf_counter()
            prof.step()
        with tempfile.TemporaryDirectory() as tmp:
            train(images, cfg, DiffusionConfig(), preset, Path(tmp), seed=0, on_step=on_step, runtime=rt)
    wall = (marks[warmup + steps] - marks[warmup]) / steps * 1e3
    return categorise(prof.events(), steps), wall


def categorise(events, steps: int) -> dict[str, float]:
    """Self CPU time per category in ms per step: operators by name, and within the optimizer, EMA,
    noise and data phases everything they ran."""
    out: dict[str, float] = defaultdict(float)
    spans = {p: [(e.time_range.start, e.time_range.end) for e in events if e.name == p] for p in PHASES}
    for e in events:
        if e.name in PHASES or e.name in ("forward", "backward") or e.name.startswith("ProfilerStep"):
            continue
        start = e.time_range.start
        phase = next((p for p, s in spans.items() if any(a <= start < b for a, b in s)), None)
        name = e.name.lower()
        cat = phase or next((c for c, keys in CATEGORIES if any(k in name for k in keys)), "pointwise and other ops")
        out[cat] += e.self_cpu_time_total / 1e3 / steps
    return dict(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_step_options(ap, steps=30, warmup=10)
    ap.add_argument("--fast", action="store_true", help="the fast path (runtime.fast=true)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    fp32, bf16 = peak(torch.float32), peak(torch.bfloat16)
    print(f"CPU, {a.threads} thread(s): matmul peak fp32 {fp32:.0f} GFLOP/s, bf16 {bf16:.0f} GFLOP/s (1024^2)")
    rt = RuntimeConfig("cpu", fast=a.fast, compile=False, threads=a.threads)
    for preset, batch in runs(a):
        parts, wall = profile_steps(preset, batch, a.steps, a.warmup, rt)
        flops = step_flops(preset, batch)
        rate = flops / (wall / 1e3) / 1e9
        print(f"\n{preset}, batch {batch}, {'fast path' if a.fast else 'fp32 reference'}: {wall:.1f} ms a "
              f"step, {flops / 1e9:.2f} GFLOP, {rate:.1f} GFLOP/s = {rate / fp32:.0%} of fp32 peak, "
              f"{rate / bf16:.0%} of bf16 peak")
        for cat, ms in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"  {cat:24s} {ms:7.2f} ms  {ms / wall:5.1%}")
        print(f"  {'unaccounted (Python)':24s} {wall - sum(parts.values()):7.2f} ms  "
              f"{(wall - sum(parts.values())) / wall:5.1%}")


if __name__ == "__main__":
    main()
