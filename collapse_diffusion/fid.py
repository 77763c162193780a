"""Fréchet distance between two feature sets (docs/method.md §4).

    FD = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))

computed by torchmetrics' own ``_compute_fid`` from float64 means and unbiased covariances, so a
value here equals ``FrechetInceptionDistance`` fed the same features. With the Inception-v3 TF
weights this is FID; with any other extractor it is reported as "FD (<extractor>)". Its interval
is a percentile bootstrap over generated images, the real statistics held fixed (docs/method.md §8).
"""
from __future__ import annotations

import numpy as np
import torch

from .features import Extractor


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(0), torch.cov(x.T)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD between (Na, D) and (Nb, D) feature arrays; needs at least 2 samples a side."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("a Fréchet distance needs at least 2 samples on each side")
    from torchmetrics.image.fid import _compute_fid
    ta, tb = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float(_compute_fid(*_stats(ta), *_stats(tb)))


def fd_bootstrap(real: np.ndarray, gen: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> list[float]:
    """Percentile interval of FD over ``n_boot`` resamples (with replacement) of the generated features."""
    if n_boot < 1:
        return [float("nan"), float("nan")]
    from torchmetrics.image.fid import _compute_fid
    rng = np.random.default_rng(seed)
    mu_r, cov_r = _stats(torch.as_tensor(real, dtype=torch.float64))
    g = torch.as_tensor(gen, dtype=torch.float64)
    values = [float(_compute_fid(mu_r, cov_r, *_stats(g[rng.integers(0, len(g), len(g))]))) for _ in range(n_boot)]
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def fd_report(extractor: Extractor, real_features: np.ndarray, gen_images: np.ndarray, n_boot: int = 0,
              seed: int = 0) -> dict:
    """FD of generated images against precomputed real features, labelled, with counts and interval."""
    gen_features = extractor(gen_images)
    label = "FID" if extractor.name.startswith("inception") else f"FD ({extractor.name})"
    return {"value": frechet_distance(real_features, gen_features), "label": label,
            "ci95": fd_bootstrap(real_features, gen_features, n_boot, seed),
            "extractor": extractor.name, "extractor_info": extractor.info, "feature_dim": gen_features.shape[1],
            "n_real": len(real_features), "n_generated": len(gen_features),
            "classifier_accuracy": extractor.info.get("heldout_accuracy")}
