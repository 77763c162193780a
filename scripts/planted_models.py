"""Ground truth from trained models (docs/method.md §7; docs/results/copy_suite.md): trains the
default study's model on both sides of its phase diagram and at the default's own place (digits,
N = 16 for 2000 steps, N = 32 for 1000, N = 512 for 1000), then scores every copy measure on planted
exact copies, planted near copies carrying the model's own error, fresh real images and the
model's own samples (measure.truth.planted_model_rows). Writes the rows as JSON lines.

    python scripts/planted_models.py --out docs/results/copy_planted.jsonl --work /tmp/planted
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

MODELS = ((16, 2000), (32, 1000), (512, 1000))  # (N, steps): memorizing side, the default, generalizing side


def main() -> None:
    from collapse_diffusion.core.config import DataConfig
    from collapse_diffusion.core.io import atomic_write_text
    from collapse_diffusion.data.sources import load_real
    from collapse_diffusion.diffusion.train import train
    from collapse_diffusion.loop.config import load_config
    from collapse_diffusion.measure.truth import planted_model_rows
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("copy_planted.jsonl"))
    ap.add_argument("--work", type=Path, default=Path("planted"), help="folder for the trained models")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "digits.yaml")
    rows = []
    for n, steps in MODELS:
        both = load_real(DataConfig(source="digits", n=n), args.seed, n=min(n + args.samples, 1797))
        real, pool = both.take(np.arange(n)), both.take(np.arange(n, len(both)))
        out = args.work / f"digits_n{n}_s{steps}"
        model = train(real.images, dataclasses.replace(cfg.train, steps=steps), cfg.diffusion, cfg.model.preset, out,
                      args.seed, runtime=cfg.runtime)
        rows += [{**r, "steps": steps} for r in planted_model_rows(model, real, pool, cfg.diffusion, cfg.sample,
                                                                   args.seed, args.samples)]
        print(json.dumps(rows[-4:], indent=None), flush=True)
    atomic_write_text(args.out, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    print(f"wrote {args.out} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
