"""Does a sampler turn black MNIST backgrounds grey? The grey-background share of a set of images,
of every cycle of a study, and of trained models sampled with DDIM and with ancestral DDPM at the same
step count (`python scripts/sampler_drift.py`, docs/experiments/mnist5k_ddim_drift.md).

An image counts as grey when the median of its border (0-255; 3 pixels at 28 px, scaled with the image
size, 2 at 16 px) is above 25: MNIST digits are centred on a black field, so the border of a real digit
is black. Each share comes with its Clopper-Pearson 95% interval over the n images. Images are seeded
as in a study (image i depends on (seed, i) only), so both samplers start from the same noise.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

GREY = 25      # border median above this (0-255) = not a black background
BORDER = 3     # pixels at 28 px; scaled with the image size


def grey_share(images: np.ndarray) -> tuple[int, float]:
    """(number of grey-background images, mean border level) of uint8 images (N, 1, H, W)."""
    x = images[:, 0].astype(np.float64)
    b = max(1, round(BORDER * x.shape[-1] / 28))
    frame = np.ones(x.shape[1:], bool)
    frame[b:-b, b:-b] = False
    border = x[:, frame]
    return int((np.median(border, axis=1) > GREY).sum()), float(border.mean())


def run_rows(run: Path) -> list[dict]:
    """The grey share of every cycle's samples in a study folder (cycles not yet sampled are skipped):
    cycle 1 once as paradigm "shared", arm "*", then each paradigm, arm and cycle of the run's config."""
    from ..core.layout import RunLayout
    from ..data.images import load_npz
    from ..loop.experiment import load_config
    from ..measure.memorization import clopper_pearson
    layout = RunLayout(run)
    if not layout.config.is_file():
        return []
    study = load_config(layout.config).study
    cells = [("shared", "*", 1)] + [(p, a.name, c) for p in study.paradigms for a in study.arms
                                    for c in range(2, study.cycles + 1)]
    rows = []
    for paradigm, arm, cycle in cells:
        path = layout.cycle(paradigm, arm, cycle).samples
        if not path.is_file():
            continue
        images = load_npz(path).images
        k, level = grey_share(images)
        n = len(images)
        rows.append({"paradigm": paradigm, "arm": arm, "cycle": cycle, "n": n, "grey": k, "grey_share": k / n,
                     "grey_ci95": list(clopper_pearson(k, n)), "border_mean": level})
    return rows


def sampler_drift(models: list[Path], labels: list[str], n: int, steps: int, seed: int) -> tuple[list[dict], list]:
    """Each model sampled with DDIM and with ancestral DDPM at ``steps`` steps, ``n`` images from the
    same seeds: one row per model and sampler with its grey share and Clopper-Pearson interval, and
    (title, first 64 images) per row for a figure."""
    from ..core.config import DiffusionConfig, RuntimeConfig, SampleConfig
    from ..data.sources import load_mnist5k
    from ..diffusion.sample import generate
    from ..measure.memorization import clopper_pearson
    real_grey, real_level = grey_share(load_mnist5k().images)
    print(f"real mnist5k: {real_grey} of 5000 grey, border mean {real_level:.1f}")
    rows, grids = [], []
    for model, label in zip(models, labels, strict=True):
        for sampler in ("ddim", "ddpm"):
            s = generate(model, n, seed, SampleConfig(sampler=sampler, steps=steps, batch_size=256),
                         DiffusionConfig(), RuntimeConfig(device="cpu"))
            k, level = grey_share(s.images)
            rows.append({"model": str(model), "sampler": sampler, "steps": steps, "n": n, "seed": seed,
                         "grey": k, "grey_share": k / n, "grey_ci95": list(clopper_pearson(k, n)),
                         "border_mean": level, "real_grey": real_grey, "real_n": 5000})
            grids.append((f"{label}\n{sampler.upper()}-{steps}: {k} of {n} grey", s.images[:64]))
    return rows, grids


def grids_figure(grids: list):
    """The first 64 images of each model and sampler, two panels a row."""
    import matplotlib.pyplot as plt
    import torch
    from torchvision.utils import make_grid
    cols = 2
    fig, axes = plt.subplots(len(grids) // cols, cols, figsize=(4.2 * cols, 4.4 * len(grids) // cols), squeeze=False)
    for ax, (title, imgs) in zip(axes.ravel(), grids):
        ax.imshow(make_grid(torch.from_numpy(imgs), nrow=8, padding=2, pad_value=128)[0].numpy(), cmap="gray",
                  vmin=0, vmax=255)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig
