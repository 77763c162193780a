"""The factorial experiment of docs/results/factorial.md, cell by cell, resumable across sessions
(collapse_diffusion/experiments/factorial.py runs it in this process).

    python scripts/factorial.py --data mnist16          # every missing cell of one data set, in order
    python scripts/factorial.py --data digits --only ddim/1000
    python scripts/factorial.py --figure                # docs/figures/factorial_*.png from every shipped row
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from collapse_diffusion.experiments import factorial
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=sorted(factorial.DATA), default="digits")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "factorial")
    ap.add_argument("--only", default=None, help="SAMPLER/STEPS: one cell")
    ap.add_argument("--figure", action="store_true", help="draw the figures from the shipped rows and stop")
    ap.add_argument("--backfill-grey", action="store_true", help="add the grey-background columns to shipped MNIST "
                                                                 "rows from the run folders, and stop")
    args = ap.parse_args()
    if args.figure:
        import matplotlib
        matplotlib.use("Agg")
        for path in factorial.draw(ROOT):
            print(f"wrote {path}")
    elif args.backfill_grey:
        factorial.backfill_grey(ROOT, args.data, args.runs)
    else:
        factorial.run(ROOT, args.data, args.runs, args.only)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
