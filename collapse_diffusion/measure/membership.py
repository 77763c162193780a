"""The membership test: does the model memorize its training set? (docs/method.md §7, "Three quantities")

Memorization lives in the model: it fits its own training images better than fresh draws from the
same distribution. Each image x0 is scored by the model's denoising error at a few fixed noise levels
abar (``LEVELS``), with the same ``draws`` noise vectors for every image (common random numbers, so
two images differ only by how well the model knows them):

    error(x0, abar) = mean over draws of ||eps_model(sqrt(abar) x0 + sqrt(1 - abar) eps, t) - eps||^2 / d

and the test is the AUC of members (D_n) against non-members (images drawn by the same procedure and
held out: exchangeable with D_n), a member counting as "more member-like" when its error is lower
(loss-based membership inference: Carlini et al. 2023; SecMI and PIA for unconditional DDPMs). AUC 1/2:
the model cannot tell its training images from fresh ones; AUC 1: it fits every member better than any
non-member. Reported per level (a curve over abar), at one summary level fixed in advance
(``SUMMARY``, chosen by the validation in docs/method.md §7), with the true-positive rate at 1% false
positives and the share of non-members with a near-twin among the members (where D_n has collapsed onto
twins, memorizing D_n and fitting its distribution coincide; the AUC on the non-members without a twin
is reported beside it).

    from collapse_diffusion.measure.membership import membership
    report = membership("runs/digits/shared/cycle_01/model", members, nonmembers, diffusion_cfg)
    report.auc, report.auc_ci95, report.auc_by_level, report.tpr_1fpr

Cost: forward passes only, (members + non-members) x draws x levels of them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from ..core.records import Col, Record, detail, metric
from .memorization import clopper_pearson

if TYPE_CHECKING:
    import torch

MEMBERSHIP = "membership"          # the role of a membership report in a cycle's metrics
LEVELS = (0.99, 0.97, 0.9, 0.66, 0.4, 0.08)  # abar of the noise levels scored (signal power share)
SUMMARY = 0.97                     # the summary level, fixed by the validation (method §7) before any experiment
DRAWS = 8                          # noise vectors per level, shared by every image
EpsFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def level_key(abar: float) -> str:
    return f"{abar:.2f}"


@dataclass(frozen=True)
class MembershipReport(Record):
    """Membership AUC of D_n (members) against exchangeable non-members, per noise level and at the
    summary level; None with ``reason`` where the cycle has no exchangeable non-members."""
    auc: Optional[float] = metric(
        "membership AUC (members' denoising error below non-members'; 1/2 = no memorization)", ci="auc_ci95",
        n=("n_members", "n_nonmembers"),
        columns={MEMBERSHIP: Col("membership_auc", "membership AUC of D_n at the summary level (memorization, "
                                 "method §7b)", "membership AUC", rank=False)}, default=None)
    auc_ci95: Optional[tuple] = detail(columns={MEMBERSHIP: Col("membership_auc_ci95", "")}, default=None)
    tpr_1fpr: Optional[float] = metric(
        "true-positive rate at 1% false positives", rate=True, n=("n_members", "n_nonmembers"),
        columns={MEMBERSHIP: Col("membership_tpr_1fpr", "membership TPR at 1% FPR", plot=False)}, default=None)
    auc_by_level: Optional[dict] = detail(
        "AUC per noise level (abar)", columns={MEMBERSHIP: Col("membership_auc_by_level", "")}, default=None)
    twin_share: Optional[float] = metric(
        "share of non-members with a near-twin among the members (copy rule)", rate=True, n="n_nonmembers",
        columns={MEMBERSHIP: Col("membership_twin_share", "non-members with a near-twin in D_n", plot=False)},
        default=None)
    auc_untwinned: Optional[float] = metric(
        "membership AUC on the non-members without a twin", n=("n_members", "n_untwinned"),
        columns={MEMBERSHIP: Col("membership_auc_untwinned", "membership AUC, untwinned non-members",
                                 plot=False)}, default=None)
    n_members: Optional[int] = detail("members", columns={MEMBERSHIP: Col("membership_n_members", "members")},
                                      default=None)
    n_nonmembers: Optional[int] = detail("non-members", columns={
        MEMBERSHIP: Col("membership_n_nonmembers", "non-members")}, default=None)
    n_untwinned: Optional[int] = detail("untwinned non-members", default=None)
    level: Optional[float] = detail("summary abar", default=None)
    timesteps: Optional[dict] = detail("timestep of each level", default=None)
    draws: Optional[int] = detail("noise draws per level", default=None)
    reason: Optional[str] = detail("why not measured", columns={
        MEMBERSHIP: Col("membership_reason", "")}, default=None)
    seconds: Optional[float] = detail("wall time (s)", default=None)


def auc(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """(AUC, DeLong variance) of scores ``pos`` against ``neg`` (higher = positive; ties count 1/2)."""
    from scipy.stats import rankdata
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    m, n = len(pos), len(neg)
    ranks = rankdata(np.concatenate([pos, neg]))
    v10 = (ranks[:m] - rankdata(pos)) / n          # per positive: share of negatives below it
    v01 = 1.0 - (ranks[m:] - rankdata(neg)) / m     # per negative: share of positives above it
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    return float(v10.mean()), float(var)


def auc_interval(a: float, var: float, m: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """A 95% interval of an AUC that stays inside [0, 1] and honest at its ends: Clopper-Pearson at the
    effective count n_eff = a (1 - a) / var (DeLong's variance); where the variance is 0 (every pair
    ordered one way) n_eff is the smaller of the two sample counts, its least informative reading."""
    n_eff = a * (1 - a) / var if var > 0 and 0 < a < 1 else float(min(m, n))
    return clopper_pearson(a * n_eff, n_eff, level)


def tpr_at(pos: np.ndarray, neg: np.ndarray, fpr: float = 0.01) -> float:
    """Share of ``pos`` above the strictest threshold that lets at most ``fpr`` of ``neg`` through
    (with fewer than 1/fpr negatives: above every negative)."""
    k = int(np.floor(fpr * len(neg)))
    threshold = np.sort(neg)[::-1][k]
    return float(np.mean(pos > threshold))


def denoising_errors(eps_fn: EpsFn, scheduler, images: np.ndarray, seed: int, levels=LEVELS, draws: int = DRAWS,
                     batch: int = 256, device: Optional["torch.device"] = None) -> tuple[np.ndarray, dict]:
    """((n, len(levels)) mean squared error of ``eps_fn``'s noise prediction per image and level,
    {level: timestep}); uint8 ``images`` (n, C, H, W); draw j of level l is the counter-based noise
    keyed by (seed, j) at step l, the same for every image."""
    import torch

    from ..data.images import to_model
    from ..diffusion.noise import counter_normal
    from ..diffusion.process import sample_seed
    device = device or torch.device("cpu")
    abar = scheduler.alphas_cumprod
    ts = [int(np.searchsorted(-abar.numpy(), -a)) for a in levels]  # first timestep at or below abar
    seeds = torch.tensor([sample_seed(seed, j) for j in range(draws)], dtype=torch.int64)
    out = np.zeros((len(images), len(levels)))
    with torch.no_grad():
        for li, t in enumerate(ts):
            eps = counter_normal(seeds, li, tuple(images.shape[1:]), device)
            a = abar[t].to(device)
            for s in range(0, len(images), batch):
                x0 = to_model(images[s:s + batch]).to(device)
                tt = torch.full((len(x0),), t, dtype=torch.long, device=device)
                total = torch.zeros(len(x0), dtype=torch.float64, device=device)
                for e in eps:
                    e = e.expand_as(x0)
                    pred = eps_fn(a.sqrt() * x0 + (1 - a).sqrt() * e, tt).float()
                    total += (pred - e).square().flatten(1).mean(1).double()
                out[s:s + len(x0), li] = (total / draws).cpu().numpy()
    return out, {level_key(a): t for a, t in zip(levels, ts)}


def membership_report(errors_in: np.ndarray, errors_out: np.ndarray, timesteps: dict, members: np.ndarray,
                      nonmembers: np.ndarray, levels=LEVELS, summary: float = SUMMARY, draws: int = DRAWS,
                      seconds: float = 0.0) -> MembershipReport:
    """The report from per-image errors (rows: images, columns: ``levels``) of members and non-members,
    with the non-members' twins among the members judged by the copy rule in pixel space."""
    from .knn import knn
    from .memorization import COPY_K, copy_test
    m_flat = members.reshape(len(members), -1).astype(np.float64)
    o_flat = nonmembers.reshape(len(nonmembers), -1).astype(np.float64)
    nb = knn(o_flat, m_flat, k=min(len(m_flat), COPY_K))
    twin = copy_test(o_flat, m_flat, nb.idx).copy if len(m_flat) > 1 else np.zeros(len(o_flat), bool)
    by_level = {level_key(a): auc(-errors_in[:, i], -errors_out[:, i])[0] for i, a in enumerate(levels)}
    i = list(levels).index(summary)
    pos, neg = -errors_in[:, i], -errors_out[:, i]
    a, var = auc(pos, neg)
    untwinned = neg[~twin]
    return MembershipReport(
        auc=a, auc_ci95=auc_interval(a, var, len(pos), len(neg)), tpr_1fpr=tpr_at(pos, neg),
        auc_by_level=by_level, twin_share=float(twin.mean()),
        auc_untwinned=auc(pos, untwinned)[0] if len(untwinned) >= 2 else None,
        n_members=len(pos), n_nonmembers=len(neg), n_untwinned=int(len(untwinned)), level=summary,
        timesteps=timesteps, draws=draws, seconds=round(seconds, 3))


def membership_of(eps_fn: EpsFn, scheduler, members: np.ndarray, nonmembers: np.ndarray, seed: int,
                  levels=LEVELS, summary: float = SUMMARY, draws: int = DRAWS,
                  device: Optional["torch.device"] = None) -> MembershipReport:
    """The membership test of the denoiser ``eps_fn`` (a trained model or a closed form of
    measure.probe) on uint8 ``members`` (its training set) against ``nonmembers``."""
    if len(members) < 2 or len(nonmembers) < 2:
        return MembershipReport(reason=f"needs at least 2 members and 2 non-members, got {len(members)} and "
                                       f"{len(nonmembers)}")
    t0 = time.perf_counter()
    both = np.concatenate([members, nonmembers])
    errors, ts = denoising_errors(eps_fn, scheduler, both, seed, levels, draws, device=device)
    return membership_report(errors[:len(members)], errors[len(members):], ts, members, nonmembers, levels, summary,
                             draws, time.perf_counter() - t0)


def membership(model: Path | str, members: np.ndarray, nonmembers: np.ndarray, diffusion, seed: int = 0,
               runtime=None, draws: int = DRAWS) -> MembershipReport:
    """The membership test of the trained model in folder ``model`` (diffusers format), fp32 eager on the
    runtime's device (a verdict never depends on fast kernels): ``members`` its training images,
    ``nonmembers`` images drawn by the same procedure and held out (uint8, (n, C, H, W))."""
    from ..core import runtime as dist
    from ..diffusion.process import make_scheduler
    from ..diffusion.train import load_unet
    dev = dist.local_device(runtime.device if runtime is not None else "auto")
    unet = load_unet(Path(model), dev)
    return membership_of(lambda x, t: unet(x, t).sample, make_scheduler(diffusion), members, nonmembers, seed,
                         draws=draws, device=dev)
