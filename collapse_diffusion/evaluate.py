"""The evaluation stage: every METHOD.md §4 metric of a generated set G against its training set D
and the real set R, each written with its sample counts and its space.

Nearest-neighbour metrics and entropies use pixels on the 0-255 scale (the paper's space); the
Fréchet distance uses the extractor's features. Returns the JSON-ready metrics and the per-sample
arrays (ratios and NN indices against D) that the nearest-neighbour picture needs.
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


def evaluate_sets(gen: ImageSet, train: ImageSet, real: Optional[ImageSet], cfg: EvalConfig, seed: int,
                  extractor: Optional[Extractor] = None, real_features: Optional[np.ndarray] = None
                  ) -> tuple[dict, dict]:
    """(metrics, arrays) of ``gen`` against ``train`` and ``real`` (METHOD.md §4)."""
    check_shapes(generated=gen, train=train, real=real)
    g = gen.flat()
    vs_train = nn_report(g, train.flat(), cfg.memorization_threshold, cfg.bootstrap, seed)
    arrays = {k: vs_train.pop(k) for k in ("ratios", "nn_index", "nn_dist")}
    out = {"space": f"{PIXEL_SPACE} (d={g.shape[1]})", "vs_train": vs_train,
           "train_set": set_stats(train, cfg.entropy_k), "generated_set": set_stats(gen, cfg.entropy_k)}
    if real is not None:
        vs_real = nn_report(g, real.flat(), cfg.memorization_threshold, cfg.bootstrap, seed + 1)
        for k in ("ratios", "nn_index", "nn_dist"):
            arrays[f"real_{k}"] = vs_real.pop(k)
        out["vs_real"] = vs_real
    if extractor is not None:
        feats = real_features if real_features is not None else extractor(real.images)
        out["fd"] = fd_report(extractor, feats, gen.images)
    return out, arrays


def summary_lines(m: dict) -> list[str]:
    """Human-readable lines: every figure with its sample counts and its space."""
    t = m["vs_train"]
    lines = [f"space: {m['space']}",
             f"memorization rate vs train: {t['memorization_rate']:.3f} "
             f"[95% CI {t['memorization_ci95'][0]:.3f}, {t['memorization_ci95'][1]:.3f}] "
             f"(NN1/NN2 < {t['threshold']:.3f}; {t['n_generated']} generated vs {t['n_reference']} train; "
             f"{t['exact_copies']} exact copies)",
             f"generalization score (mean NN distance to train): {t['generalization_score']:.2f}"]
    if "vs_real" in m:
        r = m["vs_real"]
        lines.append(f"memorization rate vs real: {r['memorization_rate']:.3f} [95% CI {r['memorization_ci95'][0]:.3f}, "
                     f"{r['memorization_ci95'][1]:.3f}] ({r['n_generated']} generated vs {r['n_reference']} real)")
    for name in ("train_set", "generated_set"):
        s = m[name]
        e = s["entropy"]
        lines.append(f"{name}: KL entropy {e['nats']:.2f} nats (k={e['k']}, n={e['n']}, d={e['d']}, {e['space']}, "
                     f"{e['zero_distances']} zero distances); trace cov {s['trace_cov']:.4g}; "
                     f"mean 1-NN {s['mean_nn_distance']:.2f}; real share {s['real_share']:.3f}")
    if "fd" in m:
        f = m["fd"]
        lines.append(f"{f['label']}: {f['value']:.3f} ({f['n_generated']} generated vs {f['n_real']} real, "
                     f"{f['feature_dim']}-d {f['extractor']} features)")
    return lines
