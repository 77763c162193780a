"""Training one fresh UNet on a training set D_n for a step budget (docs/method.md §1, §6).

AdamW, cosine schedule with warm-up, gradient clipping and an EMA of the weights. Batch indices,
timesteps and per-image noise seeds of step s come from a CPU generator seeded by (seed, s); the
noise itself is made on the device from those seeds (noise.py), the same on CPU and CUDA. A run
resumed from a checkpoint sees exactly the inputs it would have seen; on CPU it ends with
bitwise-equal weights.
On CUDA the fast path (bf16 autocast, channels_last, fused AdamW, TF32, torch.compile) is on by
default. On a CPU it is ``runtime.fast=true``: bf16 autocast where the CPU has bf16 units (AMX or
AVX512-BF16; fp32 otherwise, and the log says so), a fused AdamW, a foreach EMA update and the
classic attention processor (model.cpu_bf16_attention); the fp32
path without them stays the reference, bit-reproducible. Under torchrun each rank takes a stride
of the same global batch and DDP averages the gradients, which equals the single-process step up to
summation order.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from diffusers import DDPMPipeline, UNet2DModel
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel
from torch.profiler import record_function
from tqdm.auto import tqdm

from ..core import runtime as dist
from ..core.config import DiffusionConfig, RuntimeConfig, TrainConfig
from ..core.errors import TrainingDiverged, UserError
from ..core.io import atomic_dir, atomic_write_text, check_sealed, seal
from ..core.layout import CHECKPOINT, CycleFiles, is_model
from ..core.layout import MODEL as FINAL
from ..data.images import to_model
from .model import build_unet, cpu_bf16_attention
from .noise import counter_normal
from .process import diffusion_loss, make_scheduler

log = logging.getLogger(__name__)


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 7_919 + step) % (2 ** 63 - 1))


def fast_path(rt: RuntimeConfig, device: torch.device) -> tuple[bool, bool]:
    """(fast kernels, torch.compile): explicit runtime values win, else on for CUDA only."""
    return dist.fast_kernels(rt.fast, device), dist.compiled(rt.compile, device)


@dataclass
class TrainState:
    """What the loop updates: the model it calls (maybe DDP-wrapped or compiled), the bare UNet whose
    parameters it steps, the optimizer, the learning-rate schedule and the EMA of the weights, and
    the fast path's bf16 autocast and channels_last layout."""
    model: torch.nn.Module
    unet: UNet2DModel
    opt: torch.optim.Optimizer
    lr_sched: torch.optim.lr_scheduler.LRScheduler
    ema: EMAModel
    amp: bool = False        # bf16 autocast
    layout: bool = False     # channels_last inputs


def _save_checkpoint(out: Path, unet: UNet2DModel, opt, sched, ema: EMAModel, step: int, log_rows: list) -> None:
    with atomic_dir(out / CHECKPOINT) as tmp:
        unet.save_pretrained(tmp / "unet")
        torch.save({"step": step, "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(),
                    "ema": ema.state_dict(), "torch_rng": torch.get_rng_state(), "log": log_rows}, tmp / "state.pt")
        seal(tmp)  # the record travels with the folder: no window in which it describes an older one


def _load_checkpoint(out: Path, unet: UNet2DModel, opt, sched, ema: EMAModel) -> tuple[int, list]:
    """(step, training-log rows so far) of ``out/checkpoint``, or (0, []) without one."""
    ckpt = out / CHECKPOINT
    if not (ckpt / "state.pt").exists():
        return 0, []
    check_sealed(ckpt)
    unet.load_state_dict(UNet2DModel.from_pretrained(ckpt / "unet", low_cpu_mem_usage=False).state_dict())
    state = torch.load(ckpt / "state.pt", weights_only=False)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["lr_scheduler"])
    ema.load_state_dict(state["ema"])
    torch.set_rng_state(state["torch_rng"])
    log.info("resuming %s from step %d", out, state["step"])
    return int(state["step"]), list(state.get("log", []))


def train(images: np.ndarray, cfg: TrainConfig, diff: DiffusionConfig, preset: str, out: Path, seed: int,
          on_step: Optional[Callable[[int], None]] = None, runtime: RuntimeConfig = RuntimeConfig(),
          progress: bool = True) -> Path:
    """Train on uint8 images (N, C, H, W); write ``out/model`` (EMA weights, diffusers format).

    Resumes from ``out/checkpoint`` when present; returns at once when ``out/model`` exists.
    ``on_step(step)`` is called after each completed step (tests use it to interrupt a run); a
    progress bar is drawn on rank 0 with ``progress`` (a study's worker processes pass False).
    """
    out = Path(out)
    if is_model(out / FINAL):
        return out / FINAL
    if len(images) < 1:
        raise UserError("the training set has no images; pass a non-empty image set (--data) or raise data.n")
    device = dist.local_device(runtime.device)
    with dist.cpu_threads(runtime.threads), dist.tf32(fast_path(runtime, device)[0]):
        return _train(images, cfg, runtime, diff, preset, out, seed, on_step, progress)


def _train(images, cfg: TrainConfig, rt: RuntimeConfig, diff: DiffusionConfig, preset: str, out: Path, seed: int,
           on_step, progress: bool) -> Path:
    device = dist.local_device(rt.device)
    dist.init(device)
    fast, compile_ = fast_path(rt, device)
    torch.manual_seed(seed)
    unet = build_unet(preset, images.shape[1], images.shape[2]).to(device)
    ema = EMAModel(unet.parameters(), decay=cfg.ema_decay, model_cls=UNet2DModel, model_config=unet.config,
                   foreach=fast)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay,
                            fused=fast or None, foreach=None if fast else True)
    sched = get_cosine_schedule_with_warmup(opt, cfg.warmup_steps, cfg.steps)
    start, earlier = _load_checkpoint(out, unet, opt, sched, ema)
    ema.to(device)
    amp, layout = dist.bf16_autocast(fast, device), fast and device.type == "cuda"  # channels_last: CUDA only
    if fast and device.type == "cpu":
        log.info("CPU fast path: %s", f"bf16 autocast on {dist.bf16_units()}" if amp else
                 "no bf16 units on this CPU, so fp32 with the fused optimizer and EMA")
    if layout:
        unet = unet.to(memory_format=torch.channels_last)
    if amp and device.type == "cpu":
        cpu_bf16_attention(unet)
    model = unet
    if dist.world_size() > 1:
        model = torch.nn.parallel.DistributedDataParallel(unet, device_ids=[device.index] if layout else None)
    if compile_:
        model = torch.compile(model)
    noise_sched = make_scheduler(diff)
    data = to_model(images).to(device)
    state = TrainState(model, unet, opt, sched, ema, amp, layout)
    losses = _loop(state, noise_sched, data, cfg, seed, start, out, on_step, earlier, progress)
    ema.copy_to(unet.parameters())
    if dist.is_main():
        atomic_write_text(CycleFiles(out).train_log, "".join(json.dumps(r) + "\n" for r in losses))
        with atomic_dir(out / FINAL) as tmp:  # a diffusers pipeline folder: model_index.json, unet/, scheduler/
            DDPMPipeline(unet=unet, scheduler=make_scheduler(diff)).save_pretrained(tmp)
            seal(tmp)
        if not cfg.keep_checkpoint:
            shutil.rmtree(out / CHECKPOINT, ignore_errors=True)
    dist.barrier()
    return out / FINAL


def _loop(st: TrainState, noise_sched, data: torch.Tensor, cfg: TrainConfig, seed: int, start: int, out: Path,
          on_step: Optional[Callable[[int], None]], rows: list[dict], progress: bool = True) -> list[dict]:
    """The training loop: one readable pass over steps ``start..cfg.steps``; ``rows`` is the log so far."""
    n, r, w = len(data), dist.rank(), dist.world_size()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train",
               disable=not (progress and dist.is_main()), dynamic_ncols=True, mininterval=1.0)
    running, rows, t0, seen = torch.zeros((), device=data.device), list(rows), time.perf_counter(), 0
    st.model.train()
    for step in bar:
        with record_function("data"):  # labels for benchmarks/train_profile.py; free when not profiling
            g = step_generator(seed, step)
            idx = torch.randint(0, n, (cfg.batch_size,), generator=g)[r::w]
            t = torch.randint(0, noise_sched.config.num_train_timesteps, (cfg.batch_size,), generator=g)[r::w]
            seeds = torch.randint(0, 2 ** 62, (cfg.batch_size,), generator=g)[r::w]
            x0 = data[idx.to(data.device)]
        with record_function("noise"):
            noise = counter_normal(seeds, 0, tuple(data.shape[1:]), data.device)  # made on the device
        if st.layout:
            x0 = x0.contiguous(memory_format=torch.channels_last)
            noise = noise.contiguous(memory_format=torch.channels_last)
        with record_function("forward"), torch.autocast(data.device.type, dtype=torch.bfloat16, enabled=st.amp):
            loss = diffusion_loss(st.model, noise_sched, x0, noise, t.to(data.device))
        st.opt.zero_grad(set_to_none=True)
        with record_function("backward"):
            loss.backward()
        with record_function("optimizer"):
            torch.nn.utils.clip_grad_norm_(st.unet.parameters(), cfg.grad_clip)
            st.opt.step()
            st.lr_sched.step()
        with record_function("ema"):
            st.ema.step(st.unet.parameters())
        running += loss.detach()
        seen += cfg.batch_size
        done = step + 1
        if done % 25 == 0 or done == cfg.steps or done % cfg.checkpoint_every == 0:
            mean = running.item() / (done - max(rows[-1]["step"] if rows else start, start))
            if not math.isfinite(mean):
                raise TrainingDiverged(f"training loss became {mean} at step {done}; lower train.lr or check the data")
            rate = seen / (time.perf_counter() - t0)
            rows.append({"step": done, "loss": mean, "lr": st.lr_sched.get_last_lr()[0], "images_per_s": rate})
            bar.set_postfix(loss=f"{mean:.4f}", img_s=f"{rate:.0f}")
            running.zero_()
        if done % cfg.checkpoint_every == 0 and done < cfg.steps and dist.is_main():
            _save_checkpoint(out, st.unet, st.opt, st.lr_sched, st.ema, done, rows)
        if on_step is not None:
            on_step(done)
    return rows


def load_unet(path: Path, device: torch.device) -> UNet2DModel:
    sub = "unet" if (Path(path) / "unet" / "config.json").is_file() else None
    return UNet2DModel.from_pretrained(path, subfolder=sub, low_cpu_mem_usage=False).to(device).eval()
