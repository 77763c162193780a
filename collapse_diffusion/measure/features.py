"""Feature extractors for Fréchet distances and feature-space metrics (docs/method.md §4).

- ``inception``: Inception-v3 pool features with the standard TF-FID weights (torch-fidelity's
  file ``weights-inception-2015-12-05-6726825d.pth``), loaded from a local path; never downloaded.
- ``classifier``: a small CNN the project trains on the real data set's labels; its 128-d pooled
  activations are the features. Cached per data set with its held-out accuracy. Distances over
  these features are reported as ``FD (classifier-<dataset>)``, never as Inception FID.

Extractors take uint8 images (N, C, H, W) and return float64 features (N, D).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.config import EvalConfig
from ..core.errors import UserError
from ..core.io import atomic_dir
from ..data.images import ImageSet, to_model
from ..data.sources import balanced_order

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


class ClassifierNet(nn.Module):
    """conv(32) -> conv(64, /2) -> conv(128, /2) -> global mean pool (the features) -> linear."""

    num_features = 128

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.GroupNorm(8, 32), nn.SiLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.GroupNorm(8, 64), nn.SiLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.GroupNorm(8, 128), nn.SiLU())
        self.head = nn.Linear(128, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> (N, 128) features, the interface torchmetrics' FID expects."""
        return self.body(to_model(images).to(self.head.weight.device)).mean((2, 3))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward(images))


@dataclass
class Extractor:
    name: str                    # e.g. "classifier-digits" or "inception-v3-tf"
    module: nn.Module = field(repr=False)
    info: dict                   # provenance: accuracy, sample counts, weights file

    @property
    def space(self) -> str:
        return f"{self.name} features ({self.module.num_features}-d)"

    @torch.no_grad()
    def __call__(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        self.module.eval()
        out = [self.module(torch.from_numpy(images[s:s + batch])).double().cpu() for s in range(0, len(images), batch)]
        return torch.cat(out).numpy()


HOLDOUT = 0.2  # share of the labelled pool the classifier never trains on (its accuracy is measured there)


def train_classifier(real: ImageSet, cfg: EvalConfig, seed: int) -> tuple[ClassifierNet, dict]:
    """Train on a seeded class-balanced (1 - HOLDOUT) split with the config's steps, learning rate,
    weight decay and batch; report accuracy on the rest."""
    if (real.labels < 0).any():
        raise UserError("the real data set has no labels, so no classifier extractor can be trained; "
                        "use eval.extractor=inception with local Inception weights")
    order = balanced_order(real.labels, seed)
    n_test = max(1, int(len(order) * HOLDOUT))
    test, fit = order[:n_test], order[n_test:]
    classes = int(real.labels.max()) + 1
    torch.manual_seed(seed)
    net = ClassifierNet(real.images.shape[1], classes)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.classifier_lr, weight_decay=cfg.classifier_weight_decay)
    images, labels = torch.from_numpy(real.images), torch.from_numpy(real.labels)
    g = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(cfg.classifier_steps):
        idx = torch.from_numpy(fit)[torch.randint(0, len(fit), (cfg.classifier_batch,), generator=g)]
        loss = F.cross_entropy(net.logits(images[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net.logits(images[test[s:s + 512]]).argmax(1) for s in range(0, len(test), 512)])
    acc = float((pred == labels[test]).float().mean())
    return net, {"heldout_accuracy": acc, "n_train": len(fit), "n_heldout": n_test, "steps": cfg.classifier_steps,
                 "lr": cfg.classifier_lr, "weight_decay": cfg.classifier_weight_decay, "batch": cfg.classifier_batch,
                 "seed": seed}


def classifier_extractor(real: ImageSet, dataset: str, cache: Path, cfg: EvalConfig, seed: int) -> Extractor:
    """The cached classifier of ``dataset`` (trained on ``real`` once, then loaded). The cache key
    holds every input of its training: the pool's shape and size, the seed and each hyperparameter."""
    from safetensors.torch import load_file, save_file
    key = (f"classifier-{dataset}-{'x'.join(map(str, real.shape))}-n{len(real)}-s{seed}-t{cfg.classifier_steps}"
           f"-lr{cfg.classifier_lr:g}-wd{cfg.classifier_weight_decay:g}-b{cfg.classifier_batch}-h{HOLDOUT:g}")
    folder = Path(cache) / key
    classes = int(real.labels.max()) + 1 if len(real) else 1
    if not (folder / "info.json").exists():
        net, info = train_classifier(real, cfg, seed)
        info.update(dataset=dataset, classes=classes)
        with atomic_dir(folder) as tmp:
            save_file(net.state_dict(), tmp / "model.safetensors")
            (tmp / "info.json").write_text(json.dumps(info, indent=2))
    info = json.loads((folder / "info.json").read_text())
    net = ClassifierNet(real.images.shape[1], info["classes"])
    net.load_state_dict(load_file(folder / "model.safetensors"))
    return Extractor(f"classifier-{dataset}", net.eval(), info)


def find_inception_weights(path: Optional[str]) -> Optional[Path]:
    """The given path, else torch's hub cache (TORCH_HOME/hub/checkpoints); None when absent."""
    if path:
        return Path(path) if Path(path).is_file() else None
    candidate = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    return candidate if candidate.is_file() else None


class _Gray2RGB(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.num_features = inner, 2048

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = images if images.shape[1] == 3 else images.repeat(1, 3, 1, 1)
        return self.inner(images.to(torch.uint8))


def inception_extractor(path: Optional[str]) -> Extractor:
    """torchmetrics' Inception-v3 (TF-FID weights, 2048-d pool features) from a local file."""
    weights = find_inception_weights(path)
    if weights is None:
        where = path or str(Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE)
        raise UserError(f"Inception FID weights not found at '{where}'; put torch-fidelity's {INCEPTION_FILE} "
                        f"there or pass --set eval.inception_weights=PATH (see README: Inception FID offline)")
    from torchmetrics.image.fid import NoTrainInceptionV3
    net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                             feature_extractor_weights_path=str(weights))
    return Extractor("inception-v3-tf", _Gray2RGB(net), {"weights": str(weights)})


def get_extractor(cfg: EvalConfig, real: ImageSet, dataset: str, cache: Path, seed: int) -> Extractor:
    """``eval.extractor``; ``auto``: Inception when its weights are at hand and images are at least
    32 px, else the classifier trained on ``real``."""
    kind = cfg.extractor
    if kind == "auto":
        big = real.shape[-1] >= 32
        kind = "inception" if big and find_inception_weights(cfg.inception_weights) else "classifier"
    if kind == "inception":
        return inception_extractor(cfg.inception_weights)
    return classifier_extractor(real, dataset, cache, cfg, seed)


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "collapse-diffusion"
