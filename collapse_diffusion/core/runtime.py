"""Where and how a process runs: the torchrun shim and the device settings (not diffusion code).

Distribution sits behind a few functions that degrade to one process. Launch with
``torchrun --nproc_per_node K -m collapse_diffusion ...``: torchrun sets RANK, WORLD_SIZE and
MASTER_ADDR; :func:`init` joins the group (NCCL on CUDA, gloo on CPU). Without
torchrun everything runs as rank 0 of 1. The device settings (which device, how many CPU threads,
the fast path's bf16 autocast, compile and TF32) are functions of the config's ``runtime`` section,
passed in by each stage; nothing here is set in a global or read from the environment but
torchrun's own variables.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Iterator

from .errors import UserError

if TYPE_CHECKING:
    import torch


def _group():
    """torch.distributed where a process group may exist (torchrun's RANK is set, or this process
    imported it), else None: a plain process that only reads and writes files never imports torch."""
    if "RANK" not in os.environ and "torch.distributed" not in sys.modules:
        return None
    import torch.distributed as dist
    return dist if dist.is_available() and dist.is_initialized() else None


def init(device: "torch.device") -> None:
    """Join the process group when launched by torchrun; a no-op otherwise."""
    if "RANK" in os.environ and _group() is None:
        import torch.distributed as dist
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def shutdown() -> None:
    dist = _group()
    if dist is not None:
        dist.destroy_process_group()


def run_on_main(fn, *args, **kwargs):
    """Run ``fn`` on rank 0 only (file-writing, single-process stages) while the others wait at a
    barrier; rank 0 gets ``fn``'s result, the others None."""
    result = fn(*args, **kwargs) if is_main() else None
    barrier()
    return result


def rank() -> int:
    dist = _group()
    return dist.get_rank() if dist is not None else 0


def world_size() -> int:
    dist = _group()
    return dist.get_world_size() if dist is not None else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    dist = _group()
    if dist is not None:
        dist.barrier()


def local_device(requested: str) -> "torch.device":
    """``auto`` picks CUDA when present; under torchrun each rank takes its LOCAL_RANK GPU. A device
    that does not exist here is a UserError naming the ones that do."""
    import torch
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    here = ["auto", "cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
                              if torch.cuda.is_available() else [])
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise UserError(f"runtime.device '{requested}' is not a device name; devices here: {', '.join(here)}") from None
    if device.type not in ("cpu", "cuda") or device.type == "cuda" and (
            not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise UserError(f"runtime.device '{requested}' does not exist on this machine; devices here: "
                        f"{', '.join(here)}")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def check_device(requested: str) -> None:
    """A UserError now, naming the devices here, when ``requested`` does not exist; 'auto' and 'cpu'
    always do (no torch import needed to say so)."""
    if requested not in ("auto", "cpu"):
        local_device(requested)


def gather_cat(x: "torch.Tensor", total: int) -> "torch.Tensor":
    """Concatenate rank-strided shards (rank r holds items r, r+W, ...) back into item order."""
    import torch
    dist = _group()
    if dist is None:
        return x
    w = world_size()
    size = -(-total // w)
    pad = torch.zeros((size - len(x), *x.shape[1:]), dtype=x.dtype, device=x.device)
    parts = [torch.empty((size, *x.shape[1:]), dtype=x.dtype, device=x.device) for _ in range(w)]
    dist.all_gather(parts, torch.cat([x, pad]))
    return torch.stack(parts, dim=1).reshape(size * w, *x.shape[1:])[:total]


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Scope torch's intra-op CPU thread count to a stage (0 keeps the current one, and imports nothing)."""
    if n <= 0:
        yield
        return
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fast_kernels(requested: bool | None, device: "torch.device") -> bool:
    """Whether a stage takes the fast path: the config's ``runtime.fast`` when set, else on for CUDA
    and off for CPU (the fp32 reference). Training and sampling both ask here, so
    ``runtime.fast=false`` is an fp32 run end to end."""
    return device.type == "cuda" if requested is None else bool(requested)


def bf16_units() -> str | None:
    """The CPU's bf16 matrix units, read from /proc/cpuinfo: 'AMX-BF16', 'AVX512-BF16', or None
    (another CPU, or not Linux: the fast path then stays in fp32)."""
    try:
        flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "").split()
    except OSError:
        return None
    return "AMX-BF16" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags else None


def bf16_autocast(fast: bool, device: "torch.device") -> bool:
    """Whether a fast stage runs its UNet under bf16 autocast: on CUDA, and on a CPU with bf16 units."""
    return fast and (device.type == "cuda" or bf16_units() is not None)


def compiled(requested: bool | None, device: "torch.device") -> bool:
    """Whether a stage runs the UNet under torch.compile: ``runtime.compile`` when set, else on for
    CUDA. Training and sampling both ask here."""
    return device.type == "cuda" if requested is None else bool(requested)


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TF32 matmuls and convolutions for the scope of one stage; the previous flags come back after
    (the exact kNN later in the same process must not inherit them)."""
    import torch
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if enabled:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before

