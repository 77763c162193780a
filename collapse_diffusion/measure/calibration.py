"""The copy rule calibrated on the training set it judges (docs/method.md §7, "Calibrated every cycle").

The copy rule is relative to D_n's geometry: as the loop contracts D_n, a copier whose error keeps
its size reads as copying less. So every cycle the rule is run on copies planted in that cycle's own
D_n, whose truth is known:

- **the model's own near copies**: D_n images noised to abar_t = ``NEAR_ABAR`` and denoised by the
  cycle's model (DDIM): copies carrying exactly the kind of error this model makes;
- **copies with structured error of fixed size**: a D_n image moved toward one of its three nearest
  distinct D_n images by ``SIZES`` px-L2 (0-255 scale; the same sizes every cycle), plus
  ``NOISE`` grey levels of pixel noise, rounded to 8 bits: the error of a model with a fixed
  training budget, which does not shrink when D_n does.

``copy_recall`` is the share of the model's own near copies the rule flags (the fixed-size copies
where no model is given): the samples' copies carry the model's error, so that recall calibrates
their share; the recall on each fixed size is reported beside it (``copy_recall_fixed``: how far the
rule's reach has shrunk with D_n at a fixed precision). ``copy_share_calibrated`` = copy share / recall
(at most 1), its interval from both Clopper-Pearson intervals (share's low end over recall's high end,
share's high end over recall's low end). Below a recall of ``FLOOR`` the cycle reads "cannot tell"
(null, with the reason). ``near_share`` is an upper bound that no contraction can lower: the share of
samples within ``near_distance`` of a training image, a distance fixed by R = D_1 (a third of its
median 1-NN spacing), the same at every cycle; it counts interpolants between near-twins too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from ..core.records import Col, Record, detail, metric
from .memorization import COPY_K, DISTINCT, copy_test, proportion

if TYPE_CHECKING:
    import torch

CALIBRATION = "calibration"   # the role of the report in a cycle's metrics
NEAR_ABAR = 0.995             # the model's near copies: noised to this abar_t, denoised by the model
SIZES = (20.0, 40.0, 80.0)    # structured error of the fixed-size copies, px-L2 on the 0-255 scale
NOISE = 2.0                   # pixel noise on top of them, grey levels (std)
PLANTED = 512                 # planted copies per cycle: half the model's own, half of fixed size
FLOOR = 0.25                  # recall below which a cycle reads "cannot tell"
EpsFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class CopyCalibration(Record):
    """The copy rule's recall on copies planted in this cycle's D_n, the copy share it calibrates, and
    the near share (upper bound at a distance fixed by D_1)."""
    copy_recall: Optional[float] = metric(
        "copy rule's recall on copies planted in D_n", ci="copy_recall_ci95", n="n_planted", rate=True,
        columns={CALIBRATION: Col("copy_recall", "copy rule's recall on copies planted in D_n", "copy recall")},
        default=None)
    copy_recall_ci95: Optional[tuple] = detail(columns={CALIBRATION: Col("copy_recall_ci95", "")}, default=None)
    copy_share_calibrated: Optional[float] = metric(
        "calibrated copy share (copy share / recall)", ci="copy_share_calibrated_ci95", rate=True,
        columns={CALIBRATION: Col("copy_share_calibrated", "calibrated copy share vs D_n (copying, method §7b)",
                                  "copy share (cal.)")}, default=None)
    copy_share_calibrated_ci95: Optional[tuple] = detail(
        columns={CALIBRATION: Col("copy_share_calibrated_ci95", "")}, default=None)
    near_share: Optional[float] = metric(
        "share of samples within the cycle-1 near distance of a training image (upper bound on copying)",
        ci="near_ci95", n="n_generated", rate=True,
        columns={CALIBRATION: Col("near_share", "share within D_1's near distance of D_n (copying, upper bound)",
                                  "near share")}, default=None)
    near_ci95: Optional[tuple] = detail(columns={CALIBRATION: Col("near_ci95", "")}, default=None)
    near_distance: Optional[float] = detail("near distance, px-L2 (a third of D_1's median 1-NN spacing)",
                                            columns={CALIBRATION: Col("near_distance", "")}, default=None)
    recall_model: Optional[float] = detail("recall on the model's own near copies", columns={
        CALIBRATION: Col("copy_recall_model", "")}, default=None)
    recall_fixed: Optional[dict] = detail("recall on fixed-size copies, per size (px-L2)", columns={
        CALIBRATION: Col("copy_recall_fixed", "")}, default=None)
    n_planted: Optional[int] = detail("planted copies the recall counts", default=None)
    n_generated: Optional[int] = detail("generated images", default=None)
    reason: Optional[str] = detail("why the calibrated share is null", columns={
        CALIBRATION: Col("copy_calibration_reason", "")}, default=None)


def model_near_copies(eps_fn: EpsFn, scheduler, images: np.ndarray, seed: int) -> np.ndarray:
    """uint8 near copies of ``images``: each noised to abar_t = NEAR_ABAR (the counter-based noise keyed
    by (seed, i)) and run back to t = 0 by ``eps_fn`` with the probe's DDIM schedule (a DDIM scheduler)."""
    import torch

    from ..data.images import to_model, to_uint8
    from ..diffusion.noise import counter_normal
    from ..diffusion.process import sample_seed
    from .probe import reverse_from, start
    x0 = to_model(images)
    noise = counter_normal(torch.tensor([sample_seed(seed, i) for i in range(len(images))]), 0,
                           tuple(x0.shape[1:]), torch.device("cpu"))
    return to_uint8(reverse_from(eps_fn, scheduler, x0, noise, start(scheduler, 50, NEAR_ABAR)))


def model_copies_of(model_dir, train: np.ndarray, seed: int, diffusion, runtime=None, m: int = PLANTED // 2
                    ) -> np.ndarray:
    """``m`` (flat, uint8) near copies made by the trained model in ``model_dir`` of seeded random
    training images ``train`` (uint8, (n, C, H, W)), fp32 eager on CPU (:func:`model_near_copies`)."""
    from pathlib import Path

    import torch

    from ..diffusion.process import make_scheduler
    from ..diffusion.train import load_unet
    unet = load_unet(Path(model_dir), torch.device("cpu"))
    src = np.random.default_rng(seed).integers(0, len(train), m)
    out = model_near_copies(lambda x, t: unet(x, t).sample, make_scheduler(diffusion, "ddim"), train[src], seed)
    return out.reshape(m, -1)


def fixed_size_copies(train: np.ndarray, m: int, rng: np.random.Generator, sizes=SIZES,
                      noise: float = NOISE) -> tuple[np.ndarray, np.ndarray]:
    """(m, d) uint8 copies of rows of ``train`` (n, d) (pixels 0-255) and each one's error size: row z
    moved toward one of its three nearest distinct rows by a size of ``sizes`` (in turn) px-L2, plus
    Gaussian noise of ``noise`` grey levels; rounded and clipped to 8 bits."""
    from .knn import knn
    x = np.asarray(train, np.float64)
    nb = knn(x.astype(np.float32), None, k=min(len(x) - 1, 8))
    src = rng.integers(0, len(x), m)
    size = np.asarray(sizes, np.float64)[np.arange(m) % len(sizes)]
    pick = rng.integers(0, 3, m)
    out = np.empty((m, x.shape[1]))
    for i, s in enumerate(src):
        distinct = nb.idx[s][nb.dist[s] > DISTINCT * np.sqrt(x.shape[1])][:3]
        if len(distinct):
            toward = x[distinct[pick[i] % len(distinct)]] - x[s]
            out[i] = x[s] + size[i] * toward / np.linalg.norm(toward)
        else:  # no distinct neighbour: the error is noise of that size
            e = rng.normal(size=x.shape[1])
            out[i] = x[s] + size[i] * e / np.linalg.norm(e)
    out += noise * rng.normal(size=out.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8), size


def calibrate(train: np.ndarray, share_flags: np.ndarray, nn_dist: np.ndarray, real: Optional[np.ndarray],
              seed: int, model_copies: Optional[np.ndarray] = None, planted: int = PLANTED) -> CopyCalibration:
    """The calibration of one cycle: ``train`` (n, d) D_n pixels, ``share_flags`` the copy rule's verdict
    on each generated image, ``nn_dist`` each one's distance to its nearest training image, ``real``
    (R = D_1, pixels) fixing the near distance, ``model_copies`` (uint8, flat) the model's own near
    copies (None: fixed-size copies only, ``planted`` of them)."""
    from .knn import knn
    rng = np.random.default_rng(seed)
    x = np.asarray(train, np.float64)
    fixed_n = planted - (len(model_copies) if model_copies is not None else 0)
    fixed, size = fixed_size_copies(x, max(fixed_n, 0), rng)
    groups = [fixed.reshape(len(fixed), -1)]
    if model_copies is not None:
        groups.append(model_copies.reshape(len(model_copies), -1))
    pl = np.concatenate(groups).astype(np.float64)
    nb = knn(pl, x, k=min(len(x), COPY_K))
    hit = copy_test(pl, x, nb.idx).copy
    own = hit[len(fixed):] if model_copies is not None and len(model_copies) else hit[:len(fixed)]
    recall, recall_ci = proportion(own)  # the model's own copies calibrate its share; fixed sizes are reported
    share, share_ci = proportion(share_flags)
    by_size = {f"{s:g}": float(hit[:len(fixed)][size == s].mean()) for s in np.unique(size)}
    rec_model = float(own.mean()) if model_copies is not None and len(model_copies) else None
    near_d, near, near_ci = None, None, None
    if real is not None and len(real) >= 2:
        near_d = float(np.median(knn(np.asarray(real, np.float32), None, k=1).dist[:, 0])) / 3
        near, near_ci = proportion(np.asarray(nn_dist) < near_d)
    common = dict(copy_recall=recall, copy_recall_ci95=tuple(recall_ci), near_share=near,
                  near_ci95=tuple(near_ci) if near_ci else None, near_distance=near_d, recall_model=rec_model,
                  recall_fixed=by_size, n_planted=len(own), n_generated=len(share_flags))
    if recall < FLOOR:
        return CopyCalibration(**common, reason=f"cannot tell: the copy rule finds {recall:.2f} of the copies "
                                                f"planted in D_n (below {FLOOR})")
    lo = share_ci[0] / recall_ci[1] if recall_ci[1] > 0 else 0.0
    hi = min(1.0, share_ci[1] / recall_ci[0]) if recall_ci[0] > 0 else 1.0
    return CopyCalibration(**common, copy_share_calibrated=min(1.0, share / recall),
                           copy_share_calibrated_ci95=(min(lo, 1.0), hi))
