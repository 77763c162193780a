"""The evaluation stage: every docs/method.md §4 metric of a generated set G against its training
set D and the real set R, each written with its sample counts and its space.

Nearest-neighbour metrics and entropies use pixels on the 0-255 scale (the paper's space); the
Fréchet distance uses the extractor's features. Returns the JSON-ready metrics and the per-sample
arrays (ratios, NN indices, lineage roots) that the nearest-neighbour picture and the next cycle's
lineage need.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..core.config import EvalConfig
from ..core.errors import UserError
from ..core.io import atomic_save_npz, atomic_write_json, seal
from ..core.layout import CycleFiles
from ..core.records import Col, Record, detail, format_value, metric
from .calibration import CopyCalibration
from .entropy import EntropyStats
from .fid import FDReport
from .membership import MembershipReport
from .memorization import NNReport, trace_cov
from .probe import ReturnReport

if TYPE_CHECKING:
    from ..data.images import ImageSet
    from .features import Extractor

PIXEL_SPACE = "pixel 0-255"
TRAIN_SET, GENERATED_SET = "train_set", "generated_set"


@dataclass(frozen=True)
class SetStats(Record):
    """Statistics of one image set: its entropy (§2), spread and real share."""
    n: int = detail("images", columns={TRAIN_SET: Col("n_train", "training images")})
    entropy: EntropyStats = detail("KL entropy")
    trace_cov: float = metric("trace of covariance", fmt=".4g", n="n", columns={
        TRAIN_SET: Col("trace_cov_train", "trace of covariance of D_n", "tr cov D_n"),
        GENERATED_SET: Col("trace_cov_generated", "trace of covariance of G_n", plot=False)})
    mean_nn_distance: float = metric("mean 1-NN distance (pixel L2)", fmt=".1f", n="n", columns={
        TRAIN_SET: Col("mean_nn_train", "mean 1-NN distance inside D_n (pixel L2)", "mean 1-NN D_n")})
    real_share: float = metric("real share", rate=True, n="n", columns={
        TRAIN_SET: Col("real_share", "real share of D_n", "real share", rank=True)})
    duplicate_share: Optional[float] = metric(
        "share that copies another image of the set (copy rule)", rate=True, n="n", columns={
            TRAIN_SET: Col("duplicate_share_geometric", "share of D_n copying another image of D_n (copy rule; "
                           "contraction, not copying)", "dup. share (geometry)")}, default=None)


@dataclass(frozen=True)
class CycleMetrics(Record):
    """Everything the evaluation stage measures of one generated set: the content of metrics.json."""
    space: str = detail("space of NN metrics and entropies", columns={"": Col("entropy_space", "pixel space")})
    train_set: SetStats = detail("training set D_n")
    generated_set: SetStats = detail("generated set G_n (first |D_n| images)")
    vs_train: NNReport = detail("generated vs training set")
    vs_real: Optional[NNReport] = detail("generated vs real set R", default=None)
    fd: Optional[FDReport] = detail("Fréchet distance", default=None)
    probe: Optional[ReturnReport] = detail("model probe (memorizer share)", default=None)
    membership: Optional[MembershipReport] = detail("membership test (memorization)", default=None)
    calibration: Optional[CopyCalibration] = detail("copy rule calibrated on D_n (copying)", default=None)
    cycle: Optional[int] = field(default=None)
    inputs: Optional[dict] = field(default=None)


def set_stats(s: "ImageSet", k: int, duplicates: bool = True) -> SetStats:
    """Entropy (§2), trace of covariance, mean 1-NN distance and real share of one image set,
    the entropy and the 1-NN distances from one kNN search."""
    from .entropy import kl_from_distances
    from .knn import knn
    from .memorization import COPY_K, copy_test
    x = s.flat()
    wide = min(len(x) - 1, max(k, COPY_K if duplicates else k))
    nb = knn(x, None, k=wide)
    entropy = kl_from_distances(nb.dist[:, k - 1], x.shape[1], k, PIXEL_SPACE)
    dup = float(copy_test(x, x, nb.idx[:, :COPY_K]).copy.mean()) if duplicates else None
    return SetStats(n=len(s), entropy=entropy.stats(), trace_cov=trace_cov(x),
                    mean_nn_distance=float(nb.dist[:, 0].mean()), duplicate_share=dup, real_share=s.real_share)


def check_shapes(**sets: Optional[ImageSet]) -> None:
    shapes = {name: s.shape for name, s in sets.items() if s is not None}
    if len(set(shapes.values())) > 1:
        raise UserError("image sets differ in shape: " + ", ".join(f"{n} {s}" for n, s in shapes.items())
                        + "; compare sets of one resolution and channel count")


def check_sizes(gen: ImageSet, train: ImageSet) -> None:
    if len(gen) < 2 or len(train) < 2:
        raise UserError(f"evaluation needs at least 2 generated and 2 training images, got {len(gen)} and "
                        f"{len(train)}; generate more images (--count) or pass a larger training set")


def sample_roots(arrays: dict, gen: ImageSet, train_roots: np.ndarray, threshold: float) -> np.ndarray:
    """(m, 2) lineage root of each generated image (docs/method.md §7): a copy (lineage-aware 1/3
    rule) inherits the root of its nearest training image; any other sample starts its own lineage."""
    copy = arrays["ratios_lineage"] < threshold
    return np.where(copy[:, None], train_roots[arrays["nn_index"][:, 0]], gen.provenance)


def evaluate_sets(gen: ImageSet, train: ImageSet, real: Optional[ImageSet], cfg: EvalConfig, seed: int,
                  extractor: Optional["Extractor"] = None, real_features: Optional[np.ndarray] = None,
                  train_roots: Optional[np.ndarray] = None, probe: Optional[ReturnReport] = None,
                  membership: Optional[MembershipReport] = None, model_copies: Optional[np.ndarray] = None
                  ) -> tuple[CycleMetrics, dict]:
    """(metrics, arrays) of ``gen`` against ``train`` and ``real`` (docs/method.md §4, §7); ``probe``:
    the model's memorizer share (probe.probe_model) and ``membership`` its membership test
    (membership.membership), carried into the record as measured; ``model_copies`` (uint8) the model's
    own near copies of D_n images, planted with fixed-size copies to calibrate the copy rule on D_n
    (calibration.calibrate, every cycle).

    NN metrics use every generated image; the entropy of G_n uses its first |D_n| images, so that
    H(G_n) and H(D_n) are estimated at equal n. ``train_roots`` (n, 2): lineage roots of D_n
    (default: the provenance, every image its own lineage).
    """
    from .calibration import calibrate
    from .features import cached_features
    from .fid import fd_report
    from .memorization import nn_report
    check_shapes(generated=gen, train=train, real=real)
    check_sizes(gen, train)
    if extractor is not None and real_features is None and (real is None or len(real) < 2):
        raise UserError(f"a Fréchet distance needs at least 2 real images, got {0 if real is None else len(real)}; "
                        f"pass a larger real set (--real)")
    roots = train.provenance if train_roots is None else train_roots
    g = gen.flat()
    vs_train, arrays = nn_report(g, train.flat(), cfg.memorization_threshold, roots)
    arrays["root"] = sample_roots(arrays, gen, roots, cfg.memorization_threshold)
    calibration = calibrate(train.flat(), arrays["copy"], arrays["nn_dist"][:, 0],
                            real.flat() if real is not None else None, seed, model_copies, cfg.planted)
    vs_real = fd = None
    if real is not None and len(real) >= 2:
        vs_real, real_arrays = nn_report(g, real.flat(), cfg.memorization_threshold)
        arrays.update({f"real_{k}": v for k, v in real_arrays.items()})
    if extractor is not None:
        feats = real_features if real_features is not None else cached_features(extractor, real.images)
        fd = fd_report(extractor, feats, gen.images, cfg.bootstrap, seed)
    metrics = CycleMetrics(space=f"{PIXEL_SPACE} (d={g.shape[1]})", train_set=set_stats(train, cfg.entropy_k),
                           generated_set=set_stats(gen.take(np.arange(min(len(gen), len(train)))), cfg.entropy_k,
                                                   duplicates=False),
                           vs_train=vs_train, vs_real=vs_real, fd=fd, probe=probe, membership=membership,
                           calibration=calibration)
    return metrics, arrays


def evaluate_to(files: CycleFiles, gen: ImageSet, train: ImageSet, real: Optional[ImageSet], cfg: EvalConfig,
                seed: int, extractor: Optional["Extractor"] = None, real_features: Optional[np.ndarray] = None,
                train_roots: Optional[np.ndarray] = None, probe: Optional[ReturnReport] = None,
                membership: Optional[MembershipReport] = None, model_copies: Optional[np.ndarray] = None,
                **extra) -> tuple[CycleMetrics, dict]:
    """The evaluation stage, as the loop and the CLI both run it: :func:`evaluate_sets`, then
    ``files.nn`` (per-sample arrays) and last ``files.metrics`` (the record, with ``extra`` keys such
    as the cycle or the inputs), so a present metrics.json means a finished evaluation."""
    metrics, arrays = evaluate_sets(gen, train, real, cfg, seed, extractor, real_features, train_roots, probe,
                                    membership, model_copies)
    atomic_save_npz(files.nn, **arrays)
    atomic_write_json(files.metrics, {**metrics.to_dict(), **extra})
    seal(files.nn, files.metrics)
    return metrics, arrays


def summary_lines(m: CycleMetrics) -> list[str]:
    """Human-readable lines, one per part of ``m``: every metric field with its interval and sample
    count, then the part's counts and settings (the records' metadata decide what is shown)."""
    lines = [f"space: {m.space}"]
    for f in fields(m):
        part = getattr(m, f.name)
        if isinstance(part, Record):
            lines.append(f"{f.metadata.get('label') or f.name}: " + "; ".join(_describe(part)))
    return lines


def _describe(r: Record) -> list[str]:
    out, details = [], []
    for f in fields(r):
        value, meta = getattr(r, f.name), f.metadata
        if isinstance(value, Record):
            out += [f"{meta.get('label') or f.name} " + ", ".join(_describe(value))]
        elif meta.get("detail"):
            if meta.get("label") and not isinstance(value, (dict, tuple, list)) and value is not None:
                details.append(f"{meta['label']} {value}")
        elif "label" in meta:
            ci = getattr(r, meta["ci"]) if meta.get("ci") else None
            ns = meta.get("n") or ()
            n = ", ".join(f"{k.replace('_', ' ')}={getattr(r, k)}" for k in ((ns,) if isinstance(ns, str) else ns))
            n = f" ({n})" if n else ""
            name = getattr(r, meta["name_field"]) if meta.get("name_field") else meta["label"]  # e.g. FID
            out.append(f"{name} {format_value(value, meta['fmt'], ci)}{n}")
    return out + details
