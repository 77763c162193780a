"""FID's CPU cost per 1,024 images: the standard Inception features of 1,024 images plus one Fréchet
distance on them (docs/method.md §4, FID).

    python benchmarks/fid_cost.py [--count 1024] [--size 28] [--threads 0]

Needs the fid extra (pip install 'collapse-diffusion[fid]'). Images: the first --count of Debian's
Fashion-MNIST (apt-get install dataset-fashion-mnist) resized to --size px, else uniform noise;
Inception sees 299x299 whatever the size, so the content hardly matters. Timed: loading the network
(once per process), one warm-up batch (not counted), the features of --count images, then the Fréchet
distance of those features against a reference of as many 2048-d points (the real reference's
features are cached per content in a study, so each evaluation pays this). The 95% interval repeats
the distance eval.bootstrap times; the last line projects that.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from collapse_diffusion.core.config import DataConfig
from collapse_diffusion.core.errors import UserError
from collapse_diffusion.data.sources import load_real
from collapse_diffusion.measure.features import inception_extractor
from collapse_diffusion.measure.fid import frechet_distance


def images(count: int, size: int) -> tuple[np.ndarray, str]:
    """uint8 (count, 1, size, size) images and what they are."""
    try:
        cfg = DataConfig(source="fashion-mnist", n=count, fit="none" if size == 28 else "resize", resolution=size)
        return load_real(cfg, seed=0).images, f"Fashion-MNIST at {size} px"
    except UserError:
        noise = np.random.default_rng(0).integers(0, 256, (count, 1, size, size)).astype(np.uint8)
        return noise, f"uniform noise at {size} px (no Fashion-MNIST files)"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1024, help="images whose features are timed")
    ap.add_argument("--size", type=int, default=28, help="image size in pixels")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--bootstrap", type=int, default=200, help="resamples to project the FD interval's cost for")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    x, what = images(a.count, a.size)
    ex, load = timed(lambda: inception_extractor(None))
    print(f"torch threads {torch.get_num_threads()}; {ex.name} ({ex.info['weights']}) loaded in {load:.1f} s")
    ex(x[:min(len(x), 4)])  # warm-up: TorchScript's first passes profile the graph
    feats, extract = timed(lambda: ex(x))
    reference = np.random.default_rng(1).normal(feats.mean(0), feats.std(0) + 1e-6, feats.shape)
    _, fd = timed(lambda: frechet_distance(reference, feats))
    per_image = extract / len(x)
    print(f"{what}: features of {len(x)} images in {extract:.1f} s ({per_image:.3f} s per image)")
    print(f"Fréchet distance on {feats.shape[1]}-d features ({len(x)} vs {len(reference)} points): {fd:.1f} s")
    print(f"FID per 1,024 images: {per_image * 1024 + fd:.1f} s "
          f"({per_image * 1024:.1f} s features + {fd:.1f} s distance)")
    print(f"with the 95% interval ({a.bootstrap} resamples of the distance): about {a.bootstrap * fd:.0f} s more")


if __name__ == "__main__":
    main()
