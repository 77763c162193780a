"""Does a sampler turn black MNIST backgrounds grey? The same trained models sampled with DDIM and with
ancestral DDPM at the same step count, and the share of images whose background is no longer black.

    python scripts/sampler_drift.py runs/mnist5k_ddim20/shared/cycle_01/model \\
        runs/mnist5k_ddim20/replace/vanilla/cycle_03/model \\
        --labels "N = 16, cycle 1;replace/vanilla, cycle 3 of the DDIM-20 loop" \\
        --out docs/results/archive/sampler_drift_mnist5k.jsonl --figure docs/figures/mnist5k_sampler_drift.png

An image counts as grey when the median of its border (0-255; 3 pixels at 28 px, scaled with the image
size, 2 at 16 px) is above 25: MNIST digits are centred on a black field, so the border of a real digit
is black (the share among the 5,000 real digits
is printed for reference). Each share comes with its Clopper-Pearson 95% interval over the n images.
Images are seeded as in a study (image i depends on (seed, i) only), so both samplers start from the same
noise, on the default noise schedule (DiffusionConfig(), which configs/mnist5k.yaml uses). Used by
docs/experiments/mnist5k_ddim_drift.md for the choice of sampler in configs/mnist5k.yaml.

    python scripts/sampler_drift.py --run runs/mnist5k --out docs/results/grey_mnist5k.jsonl

counts instead the grey images among every cycle's generated images of a finished (or partial) study,
without sampling anything.
"""
from __future__ import annotations

import argparse
import json
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
    from collapse_diffusion.core.layout import RunLayout
    from collapse_diffusion.data.images import load_npz
    from collapse_diffusion.loop.config import load_config
    from collapse_diffusion.measure.memorization import clopper_pearson
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


def main() -> None:
    import torch

    from collapse_diffusion.core.config import DiffusionConfig, RuntimeConfig, SampleConfig
    from collapse_diffusion.data.sources import load_mnist5k
    from collapse_diffusion.diffusion.sample import generate
    from collapse_diffusion.measure.memorization import clopper_pearson

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, help="model folders (a cycle's model/)")
    ap.add_argument("--run", type=Path, help="a study folder: count grey images in its samples instead")
    ap.add_argument("--labels",
                    help="names of the models for the figure, separated by semicolons (default: their paths)")
    ap.add_argument("--n", type=int, default=256, help="images per model and sampler")
    ap.add_argument("--steps", type=int, default=20, help="denoising steps of both samplers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="JSON rows")
    ap.add_argument("--figure", type=Path, help="PNG: the first 64 images of each model and sampler")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    if args.run:
        rows = run_rows(args.run)
        if not rows:
            ap.exit(2, f"error: no config.yaml or sampled cycle under {args.run}; pass a study's run folder\n")
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
        for r in rows:
            print(f"{r['paradigm']:21s} {r['arm']:8s} cycle {r['cycle']}: {r['grey']:4d} of {r['n']} grey "
                  f"({100 * r['grey_share']:.0f}%), border mean {r['border_mean']:.1f}")
        return

    if not args.models:
        ap.exit(2, "error: give model folders (a cycle's model/) or --run RUN\n")
    real_grey, real_level = grey_share(load_mnist5k().images)
    print(f"real mnist5k: {real_grey} of 5000 grey, border mean {real_level:.1f}")
    labels = args.labels.split(";") if args.labels else [str(m) for m in args.models]
    rows, grids = [], []
    for model, label in zip(args.models, labels, strict=True):
        for sampler in ("ddim", "ddpm"):
            s = generate(model, args.n, args.seed, SampleConfig(sampler=sampler, steps=args.steps, batch_size=256),
                         DiffusionConfig(), RuntimeConfig(device="cpu"))
            k, level = grey_share(s.images)
            rows.append({"model": str(model), "sampler": sampler, "steps": args.steps, "n": args.n, "seed": args.seed,
                         "grey": k, "grey_share": k / args.n, "grey_ci95": list(clopper_pearson(k, args.n)),
                         "border_mean": level, "real_grey": real_grey, "real_n": 5000})
            grids.append((f"{label}\n{sampler.upper()}-{args.steps}: {k} of {args.n} grey", s.images[:64]))
            print(json.dumps(rows[-1]))
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if args.figure:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from torchvision.utils import make_grid
        cols = 2
        fig, axes = plt.subplots(len(grids) // cols, cols, figsize=(4.2 * cols, 4.4 * len(grids) // cols),
                                 squeeze=False)
        for ax, (title, imgs) in zip(axes.ravel(), grids):
            ax.imshow(make_grid(torch.from_numpy(imgs), nrow=8, padding=2, pad_value=128)[0].numpy(), cmap="gray",
                      vmin=0, vmax=255)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(args.figure, dpi=110)


if __name__ == "__main__":
    main()
