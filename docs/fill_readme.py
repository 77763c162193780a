"""Regenerate the README's result blocks from the shipped metrics in docs/results/.

    python docs/fill_readme.py            # rewrite README.md in place
    python docs/fill_readme.py --check    # exit 1 if any block differs from what the metrics give

Each block sits between ``<!-- KIND:NAME -->`` and ``<!-- /KIND:NAME -->`` and is generated from
``docs/results/NAME.jsonl`` (the ``metrics.jsonl`` of a finished run, or a phase run's ``phase.jsonl``):

- ``results:NAME``  the cycle 1 -> last summary table and every finding (collapse_diffusion.findings)
- ``summary:NAME``  the summary table alone (a study with many arms: its findings are in its report)
- ``ranking:NAME``  each paradigm's last-cycle ranking table (collapse_diffusion.report.ranking_table)
- ``phase:NAME``    the cycle-1 phase table (collapse_diffusion.phase.phase_table)
- ``cycles:NAME``   the phase diagram followed along the loop (collapse_diffusion.phase.cycles_table)

Hand-written prose around the blocks is checked against the same files by tests/test_readme.py.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- (results|summary|ranking|phase|cycles):([\w-]+) -->\n(.*?)<!-- /\1:\2 -->", re.S)


def shipped(name: str) -> list[dict]:
    return [{**json.loads(line), "run": name}
            for line in (ROOT / "docs" / "results" / f"{name}.jsonl").read_text().splitlines()]


def generate(kind: str, name: str) -> list[str]:
    from collapse_diffusion.findings import findings_lines, summary_table
    from collapse_diffusion.phase import cycles_table, phase_table
    from collapse_diffusion.report import ranking_table
    from collapse_diffusion.rows import normalize
    rows = [normalize(r) for r in shipped(name)]
    if kind == "results":
        return summary_table(rows) + [""] + [line for line in findings_lines(rows) if line.startswith("- ")]
    if kind == "summary":
        return summary_table(rows)
    if kind == "ranking":
        out: list[str] = []
        for p in dict.fromkeys(r["paradigm"] for r in rows):
            out += [f"**{p}**", ""] + ranking_table(rows, p) + [""]
        return out[:-1]
    if kind == "phase":
        return ["Lineage-aware memorization rate at cycle 1 (equal to the 1/3 rule at cycle 1):", ""] + phase_table(rows)
    return cycles_table(rows)


def fill(text: str) -> str:
    return BLOCK.sub(lambda m: f"<!-- {m[1]}:{m[2]} -->\n" + "\n".join(generate(m[1], m[2])) + f"\n\n<!-- /{m[1]}:{m[2]} -->",
                     text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 when the README is stale")
    args = ap.parse_args()
    readme = ROOT / "README.md"
    old = readme.read_text()
    new = fill(old)
    if args.check:
        sys.exit(0 if new == old else 1)
    readme.write_text(new)


if __name__ == "__main__":
    main()
