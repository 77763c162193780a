"""Nearest-neighbour metrics of generated images against training and real sets (docs/method.md §4, §7).

All functions take float feature arrays (N, D); for the paper's metrics these are pixels on the
0-255 scale (``ImageSet.flat()``), so distances are in pixel L2 units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..core.records import Col, Record, detail, metric


def clopper_pearson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a proportion (docs/method.md §8): honest at 0/n and n/n."""
    if n <= 0:
        return float("nan"), float("nan")
    from scipy.stats import beta
    a = (1 - level) / 2
    lo = 0.0 if successes == 0 else float(beta.ppf(a, successes, n - successes + 1))
    hi = 1.0 if successes == n else float(beta.ppf(1 - a, successes + 1, n - successes))
    return lo, hi


def proportion(flags: np.ndarray) -> tuple[float, list[float]]:
    """(rate, [lo, hi]) of 0/1 ``flags`` with its Clopper-Pearson 95% interval."""
    k, n = int(np.sum(flags)), len(flags)
    return (k / n if n else float("nan")), list(clopper_pearson(k, n))


def group_codes(roots: Optional[np.ndarray], n: int) -> np.ndarray:
    """(n,) int group code of each training image from its (n, 2) lineage root; None: all distinct."""
    if roots is None:
        return np.arange(n)
    return np.unique(np.asarray(roots).reshape(n, -1), axis=0, return_inverse=True)[1].reshape(n)


def _outside_group(dist: np.ndarray, idx: np.ndarray, groups: np.ndarray, of: np.ndarray) -> np.ndarray:
    """Per row, the first (smallest) distance whose neighbour's group differs from ``of`` (inf: none)."""
    other = groups[idx] != of[:, None]
    first = other.argmax(1)
    return np.where(other.any(1), dist[np.arange(len(dist)), first], np.inf)


TRAIN, REAL = "vs_train", "vs_real"  # the roles of a report: against D_n, against R
COPY_K, COPY_ALPHA, SNR = 16, 0.001, 3.0  # the copy rule: neighbourhood, level of its noise test, least signal/error
DISTINCT = 1.0  # rms difference per feature (grey levels for pixels) below which two images are one at 8 bits


@dataclass(frozen=True)
class CopyTest:
    """Per-sample arrays of the copy rule (docs/method.md §7): ``copy`` (bool), ``explained`` (the
    share of the offset from NN1 that the neighbours' differences span), ``bound`` (that share's
    upper 1 - alpha quantile for an unstructured offset), ``snr`` (||NN1 - mean|| / ||offset||) and
    ``ratio`` (||offset|| over the distance to the nearest reference image distinct from NN1), with
    which branch flagged it: ``unstructured`` (the noise test) and ``near`` (the distinct-NN2 ratio)."""
    copy: np.ndarray
    explained: np.ndarray
    bound: np.ndarray
    snr: np.ndarray
    ratio: np.ndarray
    unstructured: np.ndarray
    near: np.ndarray


def _tones(z1: np.ndarray, bounds: Optional[tuple[float, float]]) -> np.ndarray:
    """(b, d, t) orthonormal basis of the changes that leave a copy a copy: brightness (1), contrast
    (z1), and the level of z1's pixels on either bound of the range (where noise is clipped)."""
    parts = [np.ones_like(z1), z1]
    if bounds is not None:
        parts += [(z1 <= bounds[0]).astype(float), (z1 >= bounds[1]).astype(float)]
    u, sv, _ = np.linalg.svd(np.stack(parts, 2), full_matrices=False)
    return u * (sv > 1e-9 * sv[:, :1])[:, None, :]


def _without(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v`` (b, d) or (b, k, d) with its component in span(q) (b, d, t) removed."""
    if v.ndim == 2:
        return v - np.einsum("bdt,bt->bd", q, np.einsum("bdt,bd->bt", q, v))
    return v - np.einsum("bdt,bkt->bkd", q, np.einsum("bdt,bkd->bkt", q, v))


def copy_test(x: np.ndarray, ref: np.ndarray, idx: np.ndarray, centre: Optional[np.ndarray] = None,
              alpha: float = COPY_ALPHA, snr: float = SNR, bounds: Optional[tuple[float, float]] = (0.0, 255.0),
              threshold: float = 1 / 3, distinct: float = DISTINCT, block: int = 256) -> CopyTest:
    """The copy rule (docs/method.md §7): x is a copy of its nearest reference image z1 when the
    offset o = x - z1 is small against z1's signal (||z1 - centre|| > ``snr`` ||o||; centre: the
    reference set's mean, pure noise is nobody's copy) and either of two things holds:

    - **near**: ||o|| < ``threshold`` times the distance from x to its nearest reference image that
      is distinct from z1 (differs from it by more than ``distinct`` rms per feature). The 1/3 rule,
      except that a pixel-level duplicate of z1 in the reference set is z1, not a second image: a
      copy with the model's own smooth error (a slight blend toward other images) is found this way.
    - **unstructured**: o carries none of the reference set's structure, at any size below z1's
      signal: a copy whose only error is noise, even where the set holds near-twins of z1 (copies of
      copies) that make every ratio useless.

    Structure: the differences z_j - z1 to x's other nearest reference images (``idx`` (m, k), nearest
    first) span a local subspace of rank r. An unstructured offset (noise) puts a Beta(r/2, (d' - r)/2)
    share of its energy there; a move toward other images (interpolation, a new image built from the
    set's structure) far more. Before measuring, o and the differences lose their components along
    z1's tones (:func:`_tones`: a brighter, stronger or clipped copy is still a copy; d' = d minus
    their rank); o is unstructured when the share is at most the Beta's 1 - ``alpha`` quantile.
    An exact copy (o = 0) is a copy. Euclidean, in the given features (pixels 0-255: ``bounds``).
    The neighbourhood ``idx`` bounds the search for a distinct second image: none among them reads
    as no distinct image within reach (ratio 0)."""
    from scipy.stats import beta
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    centre = ref.mean(0) if centre is None else centre
    m, d = x.shape
    explained, rank, tones = np.zeros(m), np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int64)
    z1 = ref[idx[:, 0]]
    o = x - z1
    norm2 = (o ** 2).sum(1)
    other = np.full(m, np.inf)
    for s in range(0, m, block) if idx.shape[1] > 1 else ():
        sl = slice(s, s + block)
        nbrs = ref[idx[sl, 1:]]                                       # (b, k-1, d)
        apart = np.sqrt(((nbrs - z1[sl, None, :]) ** 2).mean(2)) > distinct
        other[sl] = np.where(apart, np.sqrt(((x[sl, None, :] - nbrs) ** 2).sum(2)), np.inf).min(1)
        q = _tones(z1[sl], bounds)
        tones[sl] = (np.abs(q).sum(1) > 0).sum(1)
        basis = _without(q, nbrs - z1[sl, None, :])
        off = _without(q, o[sl])
        _, sv, vt = np.linalg.svd(basis, full_matrices=False)        # rows of vt span the differences
        keep = sv > 1e-9 * np.maximum(sv[:, :1], 1e-300)
        coef = np.einsum("bkd,bd->bk", vt, off) * keep
        rank[sl] = keep.sum(1)
        explained[sl] = (coef ** 2).sum(1) / np.maximum((off ** 2).sum(1), 1e-300)
    bound = np.where(rank > 0, beta.ppf(1 - alpha, np.maximum(rank, 1) / 2, np.maximum(d - rank - tones, 1) / 2),
                     0.0)
    signal = np.linalg.norm(z1 - centre, axis=1) / np.maximum(np.sqrt(norm2), 1e-300)
    ratio = np.sqrt(norm2) / other
    unstructured, near = (explained <= bound) & (signal > snr), (ratio < threshold) & (signal > snr)
    copy = (norm2 == 0) | unstructured | near
    return CopyTest(copy=copy, explained=explained, bound=bound, snr=signal, ratio=ratio,
                    unstructured=unstructured, near=near)


@dataclass(frozen=True)
class NNReport(Record):
    """Nearest-neighbour metrics of a generated set against one reference set (D_n or R)."""
    memorization_rate: float = metric(
        "memorization rate (1/3 rule)", ci="memorization_ci95", n=("n_generated", "n_reference"), rate=True,
        columns={TRAIN: Col("memorization_rate", "memorization rate vs D_n (1/3 rule)", "mem. 1/3 rule"),
                 REAL: Col("memorization_rate_real", "memorization rate vs real R", "mem. vs R")})
    memorization_ci95: tuple = detail(columns={TRAIN: Col("memorization_ci95", ""),
                                               REAL: Col("memorization_real_ci95", "")})
    copy_share: Optional[float] = metric(
        "copy share (copy rule: unstructured offset from NN1)", ci="copy_ci95", n=("n_generated", "n_reference"),
        rate=True, columns={TRAIN: Col("copy_share", "copy share vs D_n (copy rule, method §7)", "copy share",
                                       rank=True),
                            REAL: Col("copy_share_real", "copy share vs real R (copy rule)", "copy share vs R")})
    copy_ci95: Optional[tuple] = detail(columns={TRAIN: Col("copy_ci95", ""), REAL: Col("copy_real_ci95", "")})
    memorization_rate_lineage: Optional[float] = metric(
        "lineage-aware memorization rate", ci="memorization_lineage_ci95", n="n_generated", rate=True,
        columns={TRAIN: Col("memorization_rate_lineage", "lineage-aware memorization rate vs D_n",
                            "mem. lineage-aware")})
    memorization_lineage_ci95: Optional[tuple] = detail(columns={TRAIN: Col("memorization_lineage_ci95", "")})
    relative_copy_share: Optional[float] = metric(
        "share with relative NN distance < threshold", ci="relative_copy_ci95", n="n_generated", rate=True,
        columns={TRAIN: Col("relative_copy_share", "share with relative NN distance < 1/3", "relative < 1/3")})
    relative_copy_ci95: Optional[tuple] = detail(columns={TRAIN: Col("relative_copy_ci95", "")})
    relative_nn_median: Optional[float] = metric(
        "median relative NN distance", columns={TRAIN: Col("relative_nn_median", "median relative NN distance",
                                                            plot=False)})
    duplicate_share: Optional[float] = metric(
        "share of the reference set in duplicate lineages", rate=True, n="n_reference",
        columns={TRAIN: Col("duplicate_share", "share of D_n in duplicate lineages", "dup. share")})
    generalization_score: float = metric(
        "generalization score (mean NN distance, pixel L2)", fmt=".1f", n="n_generated",
        columns={TRAIN: Col("generalization_score", "GS: mean NN distance to D_n (pixel L2)", "GS", rank=True)})
    exact_copies: int = metric("exact copies", fmt="d", columns={TRAIN: Col("exact_copies", "exact copies of D_n",
                                                                             plot=False)})
    n_generated: int = detail("generated images", columns={TRAIN: Col("n_generated", "generated images")})
    n_reference: int = detail("reference images", columns={REAL: Col("n_real", "real images")})
    threshold: float = detail("NN1/NN2 threshold")


def nn_report(gen: np.ndarray, train: np.ndarray, threshold: float = 1 / 3,
              train_roots: Optional[np.ndarray] = None) -> tuple[NNReport, dict[str, np.ndarray]]:
    """Memorization rate, copy measures and generalization score of ``gen`` (m, D) against ``train``.

    - copy rule (docs/method.md §7, :func:`copy_test`): the primary copy measure, one rule for every arm.
    - 1/3 rule (Yoon et al. 2023): x is a copy when ||x - NN1|| / ||x - NN2|| < threshold.
    - lineage-aware 1/3 rule (docs/method.md §7): NN2 is the nearest training image outside NN1's
      lineage group (``train_roots``: (n, 2) root provenance per training image; None = distinct).
    - relative NN distance rho = ||x - NN1|| / delta(NN1), delta(z) the distance of z to the nearest
      training image of another group; the share with rho < threshold.
    - GS = mean_x ||x - NN1|| (docs/method.md §4).
    Rates carry Clopper-Pearson 95% intervals. Returns the report and the per-sample arrays
    (ratios, lineage ratios, NN indices and distances) for pictures and lineage.
    """
    from .knn import knn
    groups = group_codes(train_roots, len(train))
    biggest = int(np.bincount(groups).max())
    # the k nearest always hold one image of another group, and the copy rule's neighbourhood
    k = min(len(train), max(2, biggest + 1, COPY_K))
    nb = knn(gen, train, k=k)
    d1, d2 = nb.dist[:, 0], nb.dist[:, 1]
    nn1 = nb.idx[:, 0]
    ratio = np.where(d2 > 0, d1 / np.where(d2 > 0, d2, 1.0), 0.0)  # two exact copies: ratio 0, a copy
    d2_other = _outside_group(nb.dist, nb.idx, groups, groups[nn1])
    ratio_lineage = np.where(d2_other > 0, d1 / np.where(d2_other > 0, d2_other, 1.0), 0.0)
    self_nb = knn(train, None, k=min(len(train) - 1, biggest)) if len(train) > 1 else None
    delta = (_outside_group(self_nb.dist, self_nb.idx, groups, groups) if self_nb is not None
             else np.full(len(train), np.inf))
    rho = d1 / np.maximum(delta[nn1], 1e-12)
    rate, ci = proportion(ratio < threshold)
    rate_l, ci_l = proportion(ratio_lineage < threshold)
    rel, rel_ci = proportion(rho < threshold)
    copies = copy_test(gen, train, nb.idx[:, :min(k, COPY_K)], threshold=threshold).copy
    share, share_ci = proportion(copies)
    report = NNReport(copy_share=share, copy_ci95=tuple(share_ci), memorization_rate=rate, memorization_ci95=tuple(ci),
                      memorization_rate_lineage=rate_l,
                      memorization_lineage_ci95=tuple(ci_l), relative_copy_share=rel, relative_copy_ci95=tuple(rel_ci),
                      relative_nn_median=float(np.median(rho)), generalization_score=float(d1.mean()),
                      n_generated=len(gen), n_reference=len(train), threshold=threshold,
                      exact_copies=int((d1 == 0).sum()),
                      duplicate_share=float(np.mean(np.bincount(groups)[groups] > 1)))
    arrays = {"copy": copies, "ratios": ratio, "ratios_lineage": ratio_lineage, "nn_index": nb.idx[:, :2],
              "nn_dist": nb.dist[:, :2]}
    return report, arrays


def trace_cov(x: np.ndarray) -> float:
    """Trace of the sample covariance of (N, D) ``x``: the total variance."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return float(x.var(axis=0, ddof=1).sum())
