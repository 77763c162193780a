"""The copy measures as one public call (docs/method.md §7): how much of a generated set copies its
training set, judged by the copy rule (every arm, every paradigm, the same rule), against the real
set too when given, and, when the model is given, the model probe's memorizer share.

    from collapse_diffusion.measure.copies import copies
    report = copies(samples, train, real=real, model="runs/digits/shared/cycle_01/model")
    report.copy_share, report.copy_ci95, report.memorizer_share, report.flags

Copying is not memorization: whether the model fits its training images better than fresh ones is the
membership test beside this call (``measure.membership.membership``, docs/method.md §7b), and the copy
share calibrated on the training set it judges is ``measure.calibration.calibrate``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..core.config import DiffusionConfig
from ..data.images import ImageSet


@dataclass(frozen=True)
class Copies:
    """Copy share of a generated set against D_n (and R), with the per-sample verdicts; the model's
    memorizer share when a model was given (None otherwise)."""
    copy_share: float
    copy_ci95: tuple
    flags: np.ndarray                      # (m,) bool: sample i copies a training image
    nn_index: np.ndarray                   # (m,) its nearest training image
    copy_share_real: Optional[float] = None
    memorizer_share: Optional[float] = None
    memorizer_ci95: Optional[tuple] = None
    n_generated: int = 0
    n_train: int = 0


def copies(generated: ImageSet, train: ImageSet, real: Optional[ImageSet] = None, model: Optional[Path] = None,
           seed: int = 0, diffusion: DiffusionConfig = DiffusionConfig()) -> Copies:
    """The copy rule on ``generated`` against ``train`` (and ``real``), in pixel space (0-255); with
    ``model`` (a trained model folder) the memorizer share of ``train`` under that model."""
    from .memorization import nn_report
    from .probe import probe_model
    g = generated.flat().astype(np.float64)
    vs_train, arrays = nn_report(g, train.flat().astype(np.float64), train_roots=train.provenance)
    vs_real = nn_report(g, real.flat().astype(np.float64))[0] if real is not None and len(real) >= 2 else None
    probe = probe_model(Path(model), train.images, seed, diffusion) if model is not None else None
    return Copies(copy_share=vs_train.copy_share, copy_ci95=vs_train.copy_ci95, flags=arrays["copy"],
                  nn_index=arrays["nn_index"][:, 0], copy_share_real=vs_real.copy_share if vs_real else None,
                  memorizer_share=probe.memorizer_share if probe else None,
                  memorizer_ci95=probe.memorizer_ci95 if probe else None, n_generated=len(g), n_train=len(train))
