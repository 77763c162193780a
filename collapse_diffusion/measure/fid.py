"""Fréchet distance between two feature sets (docs/method.md §4).

    FD = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))

computed here (:func:`frechet_from_stats`) from float64 means and unbiased covariances, with the
same operations torchmetrics uses, so a value equals ``FrechetInceptionDistance`` fed the same
features; the tests check it against scipy's ``sqrtm`` and against torchmetrics. With the Inception-v3 TF
weights this is FID; with any other extractor it is reported as "FD (<extractor>)". Its interval
is a percentile bootstrap over generated images, the real statistics held fixed (docs/method.md §8).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..core.records import Col, Record, detail, metric

if TYPE_CHECKING:
    import torch

    from .features import Extractor

FD = "fd"  # the role of an FD report in a cycle's metrics


@dataclass(frozen=True)
class FDReport(Record):
    """A Fréchet distance with its label (FID only for Inception TF weights), interval and counts."""
    value: float = metric("Fréchet distance", fmt=".2f", ci="ci95", n=("n_generated", "n_real"), name_field="label",
                          columns={FD: Col("fd", "FD / FID vs real", "FD", rank=True)})
    label: str = detail("label", columns={FD: Col("fd_label", "FD label")})
    ci95: tuple = detail("95% bootstrap interval", columns={FD: Col("fd_ci95", "")})
    extractor: str = detail("extractor")
    extractor_info: dict = detail("extractor details")
    feature_dim: int = detail("feature dimension")
    n_real: int = detail("real images", columns={FD: Col("fd_n_real", "real images (FD)")})
    n_generated: int = detail("generated images", columns={FD: Col("fd_n_generated", "generated images (FD)")})
    classifier_accuracy: Optional[float] = metric(
        "classifier held-out accuracy", rate=True,
        columns={FD: Col("classifier_accuracy", "feature classifier held-out accuracy", plot=False)})
    precision: Optional[float] = metric(
        "precision (k=3, Kynkäänniemi et al. 2019; torch-fidelity)", rate=True, n=("n_generated", "n_real"),
        default=None, columns={FD: Col("precision", "precision: share of generated inside the real manifold (k=3)",
                                       "prec.")})
    recall: Optional[float] = metric(
        "recall (k=3, Kynkäänniemi et al. 2019; torch-fidelity)", rate=True, n=("n_generated", "n_real"),
        default=None, columns={FD: Col("recall", "recall: share of real inside the generated manifold (k=3)",
                                       "recall")})


def _stats(x: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    import torch
    return x.mean(0), torch.cov(x.T)


def frechet_from_stats(mu_a: "torch.Tensor", cov_a: "torch.Tensor", mu_b: "torch.Tensor",
                       cov_b: "torch.Tensor") -> "torch.Tensor":
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)), float64 (D,) means and (D, D)
    covariances. S_a S_b is similar to the symmetric R S_b R with R = S_a^(1/2), so
    tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of R S_b R: two symmetric
    eigendecompositions (eigh), about ten times faster than the general eigenvalues of S_a S_b at
    Inception's D = 2048, and real by construction (round-off below 0 clamped)."""
    import torch
    mean_term = (mu_a - mu_b).square().sum(dim=-1)
    lam, vec = torch.linalg.eigh(cov_a)
    root = (vec * lam.clamp_min(0).sqrt()) @ vec.T
    cross = torch.linalg.eigvalsh(root @ cov_b @ root).clamp_min(0).sqrt().sum(dim=-1)
    return mean_term + (cov_a.trace() + cov_b.trace()) - 2 * cross


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD between (Na, D) and (Nb, D) feature arrays; needs at least 2 samples a side."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("a Fréchet distance needs at least 2 samples on each side")
    import torch
    ta, tb = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float(frechet_from_stats(*_stats(ta), *_stats(tb)))


def fd_bootstrap(real: np.ndarray, gen: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> list[float]:
    """Percentile interval of FD over ``n_boot`` resamples (with replacement) of the generated features."""
    if n_boot < 1:
        return [float("nan"), float("nan")]
    import torch
    rng = np.random.default_rng(seed)
    mu_r, cov_r = _stats(torch.as_tensor(real, dtype=torch.float64))
    g = torch.as_tensor(gen, dtype=torch.float64)
    values = [float(frechet_from_stats(mu_r, cov_r, *_stats(g[rng.integers(0, len(g), len(g))])))
              for _ in range(n_boot)]
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


PRC_K = 3  # neighbourhood of the precision and recall manifolds (torch-fidelity's default, the paper's)


def precision_recall(real: np.ndarray, gen: np.ndarray, k: int = PRC_K) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of generated against real features,
    by torch-fidelity on the given features: precision, the share of generated points inside some real
    point's k-NN ball; recall, the share of real points inside some generated point's ball."""
    import torch
    from torch_fidelity.metric_prc import prc_features_to_metric
    out = prc_features_to_metric(torch.as_tensor(gen, dtype=torch.float32), torch.as_tensor(real, dtype=torch.float32),
                                 prc_neighborhood=k, prc_batch_size=4096, save_cpu_ram=True, verbose=False)
    return float(out["precision"]), float(out["recall"])


def fd_report(extractor: "Extractor", real_features: np.ndarray, gen_images: np.ndarray, n_boot: int = 0,
              seed: int = 0) -> FDReport:
    """FD of generated images against precomputed real features, labelled, with counts and interval."""
    gen_features = extractor(gen_images)
    label = "FID" if extractor.name.startswith("inception") else f"FD ({extractor.name})"
    precision, recall = precision_recall(real_features, gen_features)
    return FDReport(value=frechet_distance(real_features, gen_features), label=label, precision=precision,
                    recall=recall,
                    ci95=tuple(fd_bootstrap(real_features, gen_features, n_boot, seed)), extractor=extractor.name,
                    extractor_info=dict(extractor.info), feature_dim=int(gen_features.shape[1]),
                    n_real=len(real_features), n_generated=len(gen_features),
                    classifier_accuracy=extractor.info.get("heldout_accuracy"))
