"""Image sets: one representation for every source (docs/method.md §1 provenance).

An :class:`ImageSet` holds uint8 images ``(N, C, H, W)`` on the 0-255 scale, int64 labels (-1 when
unknown) and an int64 provenance ``(N, 2)``: ``(0, i)`` is real image ``i`` of the source,
``(c, j)`` is sample ``j`` generated in cycle ``c``. Pixel range conversions happen only in
:func:`to_model` and :func:`to_uint8`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import UserError
from ..core.io import atomic_save_npz

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray      # (N, C, H, W) uint8, 0-255
    labels: np.ndarray      # (N,) int64, -1 = unknown
    provenance: np.ndarray  # (N, 2) int64: (cycle, index); cycle 0 = real

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise UserError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (n,) or self.provenance.shape != (n, 2):
            raise UserError(f"labels/provenance do not match {n} images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def real_share(self) -> float:
        """Fraction of images whose provenance is the real data set (docs/method.md §4)."""
        return float(np.mean(self.provenance[:, 0] == 0)) if len(self) else 0.0

    def take(self, idx: np.ndarray) -> "ImageSet":
        idx = np.asarray(idx, dtype=np.int64)
        return ImageSet(self.images[idx], self.labels[idx], self.provenance[idx])

    def flat(self) -> np.ndarray:
        """(N, C*H*W) float32 pixels on the 0-255 scale: the paper's pixel space (docs/method.md §2)."""
        return self.images.reshape(len(self), -1).astype(np.float32)

    def save(self, path: str | Path) -> None:
        atomic_save_npz(path, images=self.images, labels=self.labels, provenance=self.provenance)

    @staticmethod
    def concat(sets: list["ImageSet"]) -> "ImageSet":
        return ImageSet(np.concatenate([s.images for s in sets]), np.concatenate([s.labels for s in sets]),
                        np.concatenate([s.provenance for s in sets]))


def make_set(images: np.ndarray, labels: np.ndarray | None = None, cycle: int = 0) -> ImageSet:
    """Wrap images as a set of one source: provenance ``(cycle, 0..N-1)``."""
    n = len(images)
    labels = np.full(n, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
    prov = np.stack([np.full(n, cycle, np.int64), np.arange(n, dtype=np.int64)], axis=1)
    return ImageSet(np.ascontiguousarray(images), labels, prov)


def to_model(images: "np.ndarray | torch.Tensor", dtype: "torch.dtype | None" = None) -> "torch.Tensor":
    """uint8 0-255 -> ``dtype`` (float32 unless asked) in [-1, 1], the diffusion model's pixel range."""
    import torch
    x = torch.as_tensor(images)
    return x.to(dtype or torch.float32).div(127.5).sub(1.0)


def to_uint8(x: "torch.Tensor") -> np.ndarray:
    """float in [-1, 1] -> uint8 0-255 (clamped, rounded), as numpy."""
    import torch
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def load_npz(path: Path) -> ImageSet:
    """A uint8 array under key ``images``: (N, H, W), (N, C, H, W) or (N, H, W, C) with C in {1, 3};
    optional ``labels`` and ``provenance`` (as this project writes them)."""
    if not path.is_file():
        raise UserError(f"npz file '{path}' does not exist; check the path")
    try:
        with np.load(path) as z:
            if "images" not in z:
                raise UserError(f"'{path}' has no 'images' array; save uint8 images under the key 'images'")
            arrays = {k: z[k] for k in z.files}
    except UserError:
        raise
    except Exception:
        raise UserError(f"'{path}' is not an image set (.npz with a uint8 'images' array)") from None
    images = arrays["images"]
    if images.dtype != np.uint8:
        raise UserError(f"'{path}': images are {images.dtype}; convert them to uint8 0-255")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise UserError(f"'{path}': images have shape {images.shape}; expected (N, C, H, W) with C = 1 or 3")
    n = len(images)
    labels = np.asarray(arrays.get("labels", np.full(n, -1)))
    if labels.shape != (n,) or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype.kind == "f"
                                    and np.isfinite(labels).all() and (labels == np.round(labels)).all()):
        raise UserError(f"'{path}': 'labels' must be {n} integers (one per image; -1 = unknown), got "
                        f"{labels.dtype} {labels.shape}; fix or drop the labels array")
    labels = labels.astype(np.int64)
    prov = arrays.get("provenance")
    if prov is None:
        return make_set(images, labels)
    return ImageSet(np.ascontiguousarray(images), labels, prov.astype(np.int64))


