"""The evaluation stage: every docs/method.md §4 metric of a generated set G against its training
set D and the real set R, each written with its sample counts and its space.

Nearest-neighbour metrics and entropies use pixels on the 0-255 scale (the paper's space); the
Fréchet distance uses the extractor's features. Returns the JSON-ready metrics and the per-sample
arrays (ratios, NN indices, lineage roots) that the nearest-neighbour picture and the next cycle's
lineage need.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .config import EvalConfig
from .data import ImageSet
from .entropy import kl_from_distances
from .errors import UserError
from .features import Extractor
from .fid import fd_report
from .knn import knn
from .metrics import nn_report, trace_cov

PIXEL_SPACE = "pixel 0-255"
PER_SAMPLE = ("ratios", "ratios_lineage", "nn_index", "nn_dist")


def set_stats(s: ImageSet, k: int) -> dict:
    """Entropy (§2), trace of covariance, mean 1-NN distance and real share of one image set,
    the entropy and the 1-NN distances from one kNN search."""
    x = s.flat()
    nb = knn(x, None, k=k)
    entropy = kl_from_distances(nb.dist[:, k - 1], x.shape[1], k, PIXEL_SPACE)
    return {"n": len(s), "entropy": entropy.summary(), "trace_cov": trace_cov(x),
            "mean_nn_distance": float(nb.dist[:, 0].mean()), "real_share": s.real_share}


def check_shapes(**sets: Optional[ImageSet]) -> None:
    shapes = {name: s.shape for name, s in sets.items() if s is not None}
    if len(set(shapes.values())) > 1:
        raise UserError("image sets differ in shape: " + ", ".join(f"{n} {s}" for n, s in shapes.items())
                        + "; compare sets of one resolution and channel count")


def check_sizes(gen: ImageSet, train: ImageSet) -> None:
    if len(gen) < 2 or len(train) < 2:
        raise UserError(f"evaluation needs at least 2 generated and 2 training images, got {len(gen)} and "
                        f"{len(train)}; generate more images (--count) or pass a larger training set")


def sample_roots(report: dict, gen: ImageSet, train_roots: np.ndarray, threshold: float) -> np.ndarray:
    """(m, 2) lineage root of each generated image (docs/method.md §7): a copy (lineage-aware 1/3
    rule) inherits the root of its nearest training image; any other sample starts its own lineage."""
    copy = report["ratios_lineage"] < threshold
    return np.where(copy[:, None], train_roots[report["nn_index"][:, 0]], gen.provenance)


def evaluate_sets(gen: ImageSet, train: ImageSet, real: Optional[ImageSet], cfg: EvalConfig, seed: int,
                  extractor: Optional[Extractor] = None, real_features: Optional[np.ndarray] = None,
                  train_roots: Optional[np.ndarray] = None) -> tuple[dict, dict]:
    """(metrics, arrays) of ``gen`` against ``train`` and ``real`` (docs/method.md §4, §7).

    NN metrics use every generated image; the entropy of G_n uses its first |D_n| images, so that
    H(G_n) and H(D_n) are estimated at equal n. ``train_roots`` (n, 2): lineage roots of D_n
    (default: the provenance, every image its own lineage).
    """
    check_shapes(generated=gen, train=train, real=real)
    check_sizes(gen, train)
    roots = train.provenance if train_roots is None else train_roots
    g = gen.flat()
    vs_train = nn_report(g, train.flat(), cfg.memorization_threshold, roots)
    arrays = {k: vs_train.pop(k) for k in PER_SAMPLE}
    arrays["root"] = sample_roots(arrays, gen, roots, cfg.memorization_threshold)
    out = {"space": f"{PIXEL_SPACE} (d={g.shape[1]})", "vs_train": vs_train,
           "train_set": set_stats(train, cfg.entropy_k),
           "generated_set": set_stats(gen.take(np.arange(min(len(gen), len(train)))), cfg.entropy_k)}
    if real is not None and len(real) >= 2:
        vs_real = nn_report(g, real.flat(), cfg.memorization_threshold)
        for k in PER_SAMPLE:
            arrays[f"real_{k}"] = vs_real.pop(k)
        out["vs_real"] = vs_real
    if extractor is not None:
        feats = real_features if real_features is not None else extractor(real.images)
        out["fd"] = fd_report(extractor, feats, gen.images, cfg.bootstrap, seed)
    return out, arrays


def summary_lines(m: dict) -> list[str]:
    """Human-readable lines: every figure with its sample counts and its space."""
    t = m["vs_train"]
    lines = [f"space: {m['space']}",
             f"memorization rate vs train: {t['memorization_rate']:.3f} {_ci(t['memorization_ci95'])} "
             f"(NN1/NN2 < {t['threshold']:.3f}; {t['n_generated']} generated vs {t['n_reference']} train; "
             f"{t['exact_copies']} exact copies; Clopper-Pearson 95%)",
             f"lineage-aware memorization rate: {t['memorization_rate_lineage']:.3f} "
             f"{_ci(t['memorization_lineage_ci95'])} (duplicate share of train {t['duplicate_share']:.3f})",
             f"relative NN distance < {t['threshold']:.3f}: {t['relative_copy_share']:.3f} "
             f"{_ci(t['relative_copy_ci95'])}; median {t['relative_nn_median']:.3f}",
             f"generalization score (mean NN distance to train): {t['generalization_score']:.2f}"]
    if "vs_real" in m:
        r = m["vs_real"]
        lines.append(f"memorization rate vs real: {r['memorization_rate']:.3f} {_ci(r['memorization_ci95'])} "
                     f"({r['n_generated']} generated vs {r['n_reference']} real)")
    for name in ("train_set", "generated_set"):
        s = m[name]
        e = s["entropy"]
        lines.append(f"{name}: KL entropy {e['nats']:.2f} nats (k={e['k']}, n={e['n']}, d={e['d']}, {e['space']}, "
                     f"{e['zero_distances']} zero distances); trace cov {s['trace_cov']:.4g}; "
                     f"mean 1-NN {s['mean_nn_distance']:.2f}; real share {s['real_share']:.3f}")
    if "fd" in m:
        f = m["fd"]
        acc = f.get("classifier_accuracy")
        lines.append(f"{f['label']}: {f['value']:.3f} {_ci(f['ci95'])} ({f['n_generated']} generated vs "
                     f"{f['n_real']} real, {f['feature_dim']}-d {f['extractor']} features"
                     + (f", classifier held-out accuracy {acc:.3f}" if acc is not None else "") + ")")
    return lines


def _ci(v) -> str:
    return f"[95% CI {v[0]:.3f}, {v[1]:.3f}]"
