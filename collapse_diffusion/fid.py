"""Fréchet distance between two feature sets (METHOD.md §4).

    FD = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))

computed by torchmetrics' own ``_compute_fid`` from float64 means and unbiased covariances, so a
value here equals ``FrechetInceptionDistance`` fed the same features. With the Inception-v3 TF
weights this is FID; with any other extractor it is reported as "FD (<extractor>)".
"""
from __future__ import annotations

import numpy as np
import torch
from torchmetrics.image.fid import _compute_fid

from .features import Extractor


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD between (Na, D) and (Nb, D) feature arrays; needs at least 2 samples a side."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("a Fréchet distance needs at least 2 samples on each side")
    ta, tb = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float(_compute_fid(ta.mean(0), torch.cov(ta.T), tb.mean(0), torch.cov(tb.T)))


def fd_report(extractor: Extractor, real_features: np.ndarray, gen_images: np.ndarray) -> dict:
    """FD of generated images against precomputed real features, labelled with its extractor."""
    gen_features = extractor(gen_images)
    label = "FID" if extractor.name.startswith("inception") else f"FD ({extractor.name})"
    return {"value": frechet_distance(real_features, gen_features), "label": label,
            "extractor": extractor.name, "extractor_info": extractor.info, "feature_dim": gen_features.shape[1],
            "n_real": len(real_features), "n_generated": len(gen_features)}
