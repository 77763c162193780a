"""Per-image Gaussian noise from a counter-based generator (image i of a call is the same
whatever the batch size, device count or device).

Noise element j of image i at draw ``step`` is a pure function of (seed_i, step, j): a splitmix64
hash of the counter keyed by the image's seed gives two 24-bit uniforms, Box-Muller turns them into
one standard normal. Integer arithmetic is exact on CPU and CUDA alike, so the same seeds give the
same noise everywhere (up to the last ulp of log/cos), with one vectorised call per step instead of
one generator call per image.
"""
from __future__ import annotations

import math

import torch


def _i64(v: int) -> int:
    """An unsigned 64-bit constant as the signed int64 torch stores."""
    return v - (1 << 64) if v >= 1 << 63 else v


_G, _C1, _C2 = _i64(0x9E3779B97F4A7C15), _i64(0xBF58476D1CE4E5B9), _i64(0x94D049BB133111EB)


def _shr(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _splitmix64(x: torch.Tensor) -> torch.Tensor:
    x = x + _G
    x = (x ^ _shr(x, 30)) * _C1
    x = (x ^ _shr(x, 27)) * _C2
    return x ^ _shr(x, 31)


def _uniform(bits: torch.Tensor) -> torch.Tensor:
    """Top 24 bits -> float32 in (0, 1)."""
    return (_shr(bits, 40).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def counter_normal(seeds: torch.Tensor, step: int, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """(B, *shape) standard normal noise; row b depends only on (seeds[b], step)."""
    numel = math.prod(shape)
    keys = _splitmix64(seeds.to(device=device, dtype=torch.int64))[:, None]
    ctr = torch.arange(numel, device=device, dtype=torch.int64)[None, :] * 2 + step * 2 * numel
    u1 = _uniform(_splitmix64(keys ^ ctr))
    u2 = _uniform(_splitmix64(keys ^ (ctr + 1)))
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)
    return z.reshape(len(seeds), *shape)
