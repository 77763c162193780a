"""Regenerate the generated blocks of the results pages from the shipped rows in docs/results/.

    python scripts/results_pages.py            # rewrite every stale page in place
    python scripts/results_pages.py --check    # exit 1, naming the stale pages, when any block differs

The machinery and the markers a page may hold are collapse_diffusion/experiments/pages.py's.
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from collapse_diffusion.experiments.pages import main
    main()
