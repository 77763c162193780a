"""Named presets of diffusers ``UNet2DModel``. A fresh model is built every cycle.

The model knows nothing of diffusion: it maps (noisy image, timestep) to predicted noise.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diffusers import UNet2DModel

PRESETS: dict[str, dict] = {
    # CPU-fast, for 8x8 digits: two levels (8 -> 4), no attention, 0.16M parameters.
    "digits-tiny": dict(block_out_channels=(16, 32), layers_per_block=1,
                        down_block_types=("DownBlock2D", "DownBlock2D"),
                        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8),
    # CPU-fast for 28x28 digits (no padding: 28 -> 14 -> 7), no attention, 0.64M parameters. Not
    # narrower: with 8 channels in 8 norm groups the samples lose their mean level (benchmarks/RESULTS.md).
    "mnist-tiny": dict(block_out_channels=(16, 32, 64), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D", "UpBlock2D"), norm_num_groups=8),
    # 28/32 px MNIST-like data: three levels (32 -> 16 -> 8), attention at 8x8.
    "mnist-small": dict(block_out_channels=(32, 64, 128), layers_per_block=1,
                        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"), norm_num_groups=8),
    # The paper's UNet48 for 32x32 CIFAR-10 (docs/method.md §6): attention at the 16x16 level.
    "unet48": dict(block_out_channels=(48, 48, 96, 96, 192, 192), layers_per_block=2,
                   down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D",
                                     "DownBlock2D", "DownBlock2D", "DownBlock2D"),
                   up_block_types=("UpBlock2D", "UpBlock2D", "UpBlock2D",
                                   "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), norm_num_groups=16),
}


def required_multiple(preset: str) -> int:
    """Image sizes a preset accepts are multiples of this (one halving per level after the first)."""
    return 2 ** (len(PRESETS[preset]["block_out_channels"]) - 1)


def check_fits(preset: str, resolution: int) -> None:
    """A one-line UserError when ``resolution`` px images do not fit ``preset``."""
    from ..core.errors import UserError
    m = required_multiple(preset)
    if resolution % m:
        raise UserError(f"model preset '{preset}' needs an image size divisible by {m}, got {resolution}px; "
                        f"set data.fit=pad and data.resolution={-(-resolution // m) * m}")


def build_unet(preset: str, channels: int, resolution: int) -> "UNet2DModel":
    """A freshly initialised UNet of ``preset`` for ``channels`` x ``resolution`` x ``resolution`` images.

    Initialisation draws from torch's global RNG: callers seed it (``torch.manual_seed``) first.
    """
    from diffusers import UNet2DModel
    if preset not in PRESETS:
        raise KeyError(f"unknown model preset '{preset}' (choose from {', '.join(PRESETS)})")
    check_fits(preset, resolution)
    return UNet2DModel(sample_size=resolution, in_channels=channels, out_channels=channels, **PRESETS[preset])


def cpu_bf16_attention(unet: "UNet2DModel") -> "UNet2DModel":
    """Give ``unet`` the classic attention processor for bf16 autocast on a CPU.

    The default processor calls torch's fused attention, whose bf16 CPU backward ran about 5x slower
    than in fp32 (19 against 6 ms for mnist-tiny's mid-block at batch 16); the classic processor's
    batched matmuls run it in 4 ms. Only the fast path swaps it: the fp32 reference keeps the default,
    so its results stay what they were. Sampling (forward only) runs as fast with either, and keeps the default.
    """
    from diffusers.models.attention_processor import Attention, AttnProcessor
    for module in unet.modules():
        if isinstance(module, Attention):
            module.set_processor(AttnProcessor())
    return unet
