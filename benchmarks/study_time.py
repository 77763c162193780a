"""Wall time per stage of a finished study, summed from every cycle's timings.jsonl.

    make study && python benchmarks/study_time.py runs/digits

The README's goal for the default digits study: at most 10 minutes on 2 CPU cores. Prints each
stage's total, count and mean, and the run's total (first to last stage, from file times).
"""
from __future__ import annotations

import sys
from pathlib import Path

from collapse_diffusion.analysis.report import stage_times
from collapse_diffusion.core.layout import RunLayout


def main(run: str) -> None:
    root = Path(run)
    per = stage_times(RunLayout(root)) if root.is_dir() else {}
    if not per:
        sys.exit(f"error: '{run}' holds no timings.jsonl; pass a study folder, e.g. runs/digits after `make study`")
    total = sum(sum(v) for v in per.values())
    for stage, v in sorted(per.items()):
        print(f"{stage:9s} total {sum(v):7.1f} s  count {len(v):3d}  mean {sum(v) / len(v):6.2f} s")
    files = [p.stat().st_mtime for p in root.rglob("*") if p.is_file()]
    print(f"stages sum {total:.1f} s; wall span of the run's files {max(files) - min(files):.1f} s")


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        sys.exit(0)
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/digits")
