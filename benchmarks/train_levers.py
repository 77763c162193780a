"""Which levers make a CPU training step faster on this machine, each against the fp32 eager step.

    python benchmarks/train_levers.py                    # digits-tiny (batch 64) and mnist-tiny (batch 16)
    python benchmarks/train_levers.py --preset mnist-tiny --batch 16 --models 3 --compile

Baseline: the bare fp32 eager step (draw a batch, add noise, UNet, MSE, backward, AdamW), one thread.
Levers, each the same step with one change: ``bf16`` (autocast on the CPU's bf16 units, the classic
attention processor and a fused AdamW, as ``runtime.fast=true`` does), ``bf16 + channels_last``
(model and inputs in NHWC), ``vmap xK`` (``--models`` models of the same preset stacked and trained in
one step with ``torch.func.vmap``, as batching several arms' trainings would; timed per model) and,
with ``--compile``, ``bf16 + compile`` (inductor; its compile time is printed, not timed). The
variants alternate over --repeats rounds of --steps steps, so a busy machine slows all alike; the
script prints each one's median ms per model-step and the median of its per-round ratios to the
baseline, with their range.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Callable

import torch
from bench_presets import RES, add_step_options, runs
from torch.func import functional_call, stack_module_state, vmap

from collapse_diffusion.core.config import DiffusionConfig
from collapse_diffusion.diffusion.model import build_unet, cpu_bf16_attention
from collapse_diffusion.diffusion.process import diffusion_loss, make_scheduler

SCHED = make_scheduler(DiffusionConfig())


def single(preset: str, batch: int, amp: bool, nhwc: bool = False, compiled: bool = False) -> Callable[[], None]:
    """One model's training step with the given levers."""
    c, r = RES[preset]
    torch.manual_seed(0)
    unet = build_unet(preset, c, r)
    if amp:
        cpu_bf16_attention(unet)
    if nhwc:
        unet = unet.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4, fused=amp or None)
    model = torch.compile(unet) if compiled else unet
    data = torch.rand(1024, c, r, r) * 2 - 1
    layout = torch.channels_last if nhwc else torch.contiguous_format

    def step() -> None:
        x0 = data[torch.randint(0, len(data), (batch,))].contiguous(memory_format=layout)
        noise, t = torch.randn_like(x0), torch.randint(0, 1000, (batch,))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = diffusion_loss(model, SCHED, x0, noise, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def stacked(preset: str, batch: int, k: int) -> Callable[[], None]:
    """``k`` models of ``preset`` trained in one bf16 step: parameters stacked, the loss vmapped over them."""
    c, r = RES[preset]
    torch.manual_seed(0)
    models = [cpu_bf16_attention(build_unet(preset, c, r)) for _ in range(k)]
    params, buffers = stack_module_state(models)
    params = {name: p.detach().requires_grad_() for name, p in params.items()}
    shell = copy.deepcopy(models[0]).to("meta")
    opt = torch.optim.AdamW(list(params.values()), lr=1e-4, fused=True)
    data = torch.rand(1024, c, r, r) * 2 - 1

    def one(p, b, x0, noise, t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return diffusion_loss(lambda x, s: functional_call(shell, (p, b), (x, s)), SCHED, x0, noise, t)

    def step() -> None:
        x0 = data[torch.randint(0, len(data), (k, batch))]
        noise, t = torch.randn_like(x0), torch.randint(0, 1000, (k, batch))
        loss = vmap(one)(params, buffers, x0, noise, t).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def measure(variants: dict[str, tuple[Callable[[], None], int]], steps: int, warmup: int, repeats: int):
    """Median ms per model-step of each variant and its per-round ratios to the first, interleaved."""
    for step, _ in variants.values():
        for _ in range(warmup):
            step()
    ms: dict[str, list[float]] = {name: [] for name in variants}
    for k in range(repeats):
        names = list(variants) if k % 2 == 0 else list(reversed(variants))
        for name in names:
            step, models = variants[name]
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            ms[name].append((time.perf_counter() - t0) / steps / models * 1e3)
    base = ms[next(iter(variants))]
    return {name: (statistics.median(v), [b / x for b, x in zip(base, v)]) for name, v in ms.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_step_options(ap, steps=20, warmup=5)
    ap.add_argument("--models", type=int, default=3, help="models stacked by the vmap lever (arms of a cycle)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also measure bf16 under torch.compile (minutes)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for preset, batch in runs(a):
        variants = {"fp32 eager (baseline)": (single(preset, batch, amp=False), 1),
                    "bf16": (single(preset, batch, amp=True), 1),
                    "bf16 + channels_last": (single(preset, batch, amp=True, nhwc=True), 1),
                    f"vmap x{a.models} (bf16)": (stacked(preset, batch, a.models), a.models)}
        if a.compile:
            t0, step = time.perf_counter(), single(preset, batch, amp=True, compiled=True)
            step()
            print(f"{preset}: bf16 + compile compiled in {time.perf_counter() - t0:.0f} s")
            variants["bf16 + compile"] = (step, 1)
        print(f"\n{preset}, batch {batch}, CPU, {a.threads} thread(s); "
              f"{a.repeats} interleaved rounds of {a.steps} steps")
        for name, (med, ratios) in measure(variants, a.steps, a.warmup, a.repeats).items():
            print(f"  {name:24s} {med:7.1f} ms per model-step  {statistics.median(ratios):5.2f}x "
                  f"({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
