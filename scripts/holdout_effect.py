"""What the membership test's holdout does to a selecting arm's D_{n+1} (docs/method.md §7b): one
selection step from a model's samples, with and without it (collapse_diffusion/experiments/holdout.py).

    python scripts/holdout_effect.py RUN/cells/n32_s1000/replace/vanilla/cycle_01/samples.npz --n 32 --h 64
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from collapse_diffusion.data.images import load_npz
    from collapse_diffusion.experiments.holdout import effect_table, holdout_effect
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("samples", type=Path, help="a cycle's samples.npz (the pool candidates are drawn from)")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--h", type=int, default=64)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None, help="rows (.jsonl)")
    args = ap.parse_args()
    rows = holdout_effect(load_npz(args.samples), args.n, args.h, trials=args.trials)
    if args.out:
        args.out.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    print("\n".join(effect_table(rows)))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
