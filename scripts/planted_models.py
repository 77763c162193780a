"""Ground truth from trained models (docs/method.md §7; docs/results/copy_suite.md): trains the
default study's model on both sides of its phase diagram and at the default's own place, then scores
every copy measure on planted copies (collapse_diffusion/experiments/groundtruth.py: planted_models).

    python scripts/planted_models.py --out docs/results/copy_planted.jsonl --work /tmp/planted
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from collapse_diffusion.experiments.groundtruth import planted_models
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("copy_planted.jsonl"))
    ap.add_argument("--work", type=Path, default=Path("planted"), help="folder for the trained models")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = planted_models(ROOT / "configs" / "digits.yaml", args.out, args.work, args.samples, args.seed)
    print(f"wrote {args.out} ({len(rows)} rows)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
