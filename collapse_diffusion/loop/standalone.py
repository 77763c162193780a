"""The cycle's stages as single commands outside a run directory (the CLI's `data`, `train`,
`sample`, `evaluate`, `entropy` and pool-form `select`): a config and files in, files out. Each
checks what the user gave before any work starts; inside a study the same stages run through
``stages.py``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..core.errors import UserError
from ..data.images import ImageSet, load_npz
from .experiment import ExperimentConfig, claim_folder, save_config
from .study import extractor_for


def real_subset(cfg: ExperimentConfig, n: Optional[int] = None) -> ImageSet:
    """The configured real data set's seeded class-balanced subset (``n`` images, default data.n)."""
    from ..data.sources import load_real
    if n is not None and n < 1:
        raise UserError(f"--n {n}: the subset needs at least 1 image")
    return load_real(cfg.data, cfg.seed, n)


def train_command(cfg: ExperimentConfig, out: Path, data_file: Optional[Path]) -> Path:
    """A fresh UNet trained on the real subset (or the images of ``data_file``); resumes from
    OUT/checkpoint. The model folder written."""
    from ..diffusion.model import check_fits
    from ..diffusion.train import train
    images = (load_npz(data_file) if data_file else real_subset(cfg)).images
    check_fits(cfg.model.preset, images.shape[-1])
    claim_folder(out, cfg)
    return train(images, cfg.train, cfg.diffusion, cfg.model.preset, out, cfg.seed, runtime=cfg.runtime)


def sample_command(cfg: ExperimentConfig, model: Path, n: int, seed: int) -> ImageSet:
    """``n`` images of a trained model with the configured sampler; image i depends only on (seed, i)."""
    from ..core.layout import is_model
    from ..diffusion.sample import check_room, generate
    if not is_model(model):
        raise UserError(f"'{model}' is not a model folder (no model_index.json); pass OUT/model of a `train` run")
    if n < 1:
        raise UserError("--count must be at least 1")
    check_room(model, n)
    return generate(model, n, seed, cfg.sample, cfg.diffusion, cfg.runtime)


def evaluate_command(cfg: ExperimentConfig, generated: Path, train_set: Path, real: Optional[Path], out: Path,
                     model: Optional[Path]):
    """Every metric of a generated set against its training set and the real set, written to
    OUT/metrics.json and OUT/nn.npz with the resolved config; with ``model``, the model probe's
    memorizer share of the training set too. Returns (metrics, per-sample arrays, G, D)."""
    from ..core.layout import CycleFiles
    from ..measure.evaluate import check_shapes, evaluate_to
    gen, train_s = load_npz(generated), load_npz(train_set)
    real_s = load_npz(real) if real else real_subset(cfg)
    check_shapes(generated=gen, train=train_s, real=real_s)
    extractor = extractor_for(cfg)
    probe = None
    if model is not None:
        from ..core.layout import is_model
        from ..measure.probe import probe_model
        if not is_model(model):
            raise UserError(f"--model {model}: not a trained model folder (no weights); pass a cycle's model/ folder")
        probe = probe_model(model, train_s.images, cfg.seed, cfg.diffusion, cfg.runtime)
    inputs = {"generated": str(generated), "train": str(train_set), "real": str(real or "configured subset"),
              "model": str(model) if model else None}
    metrics, arrays = evaluate_to(CycleFiles(out), gen, train_s, real_s, cfg.eval, cfg.seed, extractor, probe=probe,
                                  inputs=inputs)
    save_config(cfg, out / "config.yaml")
    return metrics, arrays, gen, train_s


def entropy_command(images: Path, k: int, space: str, cfg: Optional[ExperimentConfig]):
    """The Kozachenko-Leonenko entropy of an image set in pixel space (0-255) or in the configured
    extractor's feature space (``cfg`` needed)."""
    from ..measure.entropy import kl_entropy
    s = load_npz(images)
    if not 1 <= k < len(s):
        raise UserError(f"--k must be between 1 and {len(s) - 1} for {len(s)} images")
    if space == "pixel":
        return kl_entropy(s.flat(), k=k, space="pixel 0-255")
    if space == "feature":
        ex = extractor_for(cfg)
        return kl_entropy(ex(s.images), k=k, space=ex.space)
    raise UserError(f"--space must be pixel or feature, got '{space}'")


def select_pool_command(cfg: ExperimentConfig, pool: Path, arm: str, n: Optional[int], seed: int,
                        current: Optional[Path]):
    """N images of a candidate pool chosen by an arm of the config, as in a study; (set, record)."""
    from ..selection.pipeline import pool_inputs, select_pool
    names = [a.name for a in cfg.study.arms]
    if arm not in names:
        raise UserError(f"--arm '{arm}' is not an arm of the config (arms: {', '.join(names)}); add it to "
                        f"study.arms or pass another config")
    picked = next(a for a in cfg.study.arms if a.name == arm)
    images = load_npz(pool)
    extractor = extractor_for(cfg) if picked.space == "feature" else None
    features = (lambda s: extractor(s.images)) if extractor is not None else None
    inputs = pool_inputs(picked, seed, features, load_npz(current) if current else None)
    return select_pool(inputs, images, n or cfg.data.n)

