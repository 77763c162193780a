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
import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    from collapse_diffusion.experiments.grey import grids_figure, run_rows, sampler_drift
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
    labels = args.labels.split(";") if args.labels else [str(m) for m in args.models]
    rows, grids = sampler_drift(args.models, labels, args.n, args.steps, args.seed)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if args.figure:
        import matplotlib
        matplotlib.use("Agg")
        grids_figure(grids).savefig(args.figure, dpi=110)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
