"""Regenerate the generated blocks of the results pages from the shipped rows in docs/results/.

    python scripts/results_pages.py            # rewrite every stale page in place
    python scripts/results_pages.py --check    # exit 1, naming the stale pages, when any block differs

The pages are README.md and every Markdown file under docs/ (docs/results/*.md, docs/experiments/*.md).
A block sits between ``<!-- KIND:SOURCE ARGS -->`` and ``<!-- /KIND:SOURCE -->``; SOURCE is a study:
the stem of a rows file under docs/results/ (``archive/NAME`` for an archived one) or one of VIEWS.

- ``results:SOURCE``  the cycle 1 -> last summary table and every finding (analysis.findings)
- ``summary:SOURCE``  the summary table alone
- ``ranking:SOURCE``  each paradigm's last-cycle ranking table (analysis.report.ranking_table)
- ``phase:SOURCE [COLUMN]``  the cycle-1 phase table of the copy share, or of COLUMN (analysis.phase.phase_table)
- ``cells:SOURCE``    per cell over its seeds: memorization and copying apart (analysis.phase.cells_table)
- ``cycles:SOURCE``   the phase diagram followed along the loop (analysis.phase.cycles_table)
- ``setup:SOURCE``    what the rows say was run: N, steps, preset, cycles, seeds, arms, sample counts, spaces
- ``pivot:SOURCE COLUMN FORMAT [KEY=VALUE,...]``  one column per cycle, one line per paradigm / arm
- ``truth:SOURCE``    the ground-truth suite's score of every copy measure (experiments.copy_suite)
- ``planted:SOURCE``  every copy measure on planted copies in trained models' samples (experiments.copy_suite)
- ``factorial:SOURCE KEY``  per cell and arm the slope of KEY over cycles with seed intervals, and the
  pilot predictor's accuracy (experiments.factorial_tables)
- ``predictor:SOURCE``  the cheap predictors of the sign of vanilla's slope over every chain
  (experiments.factorial_tables)

A number inside a sentence is
``<!-- value:SOURCE SELECT COLUMN FORMAT -->text<!-- /value -->``:
SELECT is ``paradigm/arm/cycle`` or ``key=value,...`` and must match exactly one row; a cycle ``1-5``
gives the values of cycles 1 to 5 joined by arrows, ``1>5`` the relative change from cycle 1 to 5.
FORMAT is a Python format spec (``.2f``, ``.0%``, ``+.0%``); an interval column gives ``[lo, hi]``.
A trend inside a sentence is ``<!-- slope:SOURCE SELECT COLUMN FORMAT -->text<!-- /slope -->``: the
slope of COLUMN over cycles per seed, as the mean over seeds with its 95% t interval and the number of
seeds (analysis.stats.slopes); SELECT is ``key=value,...`` over the rows (``arm=greedy-vanilla``: the
seed-paired difference of the slopes, analysis.stats.paired).
A claim about every cell is ``<!-- count:SOURCE ARM COLUMN TEST [cells] [paradigm=P] -->text<!-- /count -->``:
how many cells of SOURCE (the factorial's (data, sampler, steps), else one) have an estimate of ARM's
COLUMN that passes TEST (mean<0, mean>0, lo>0, hi<0, spans0), as 'k of n', or with ``cells`` the
passing cells by name (analysis.pages.count). Prose quotes these instead of asserting counts in tests.

The numbers, trends, setup lines and pivots are ``analysis.pages``'s, the tables of the experiments
their own modules'; nothing here loads torch. `python scripts/results_pages.py` runs :func:`main`
from a clone of the repository (the pages and rows live there, not in an installed package).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..analysis.pages import count as rows_count
from ..analysis.pages import pivot, setup
from ..analysis.pages import trend_text as rows_trend
from ..analysis.pages import value as rows_value
from ..core.io import read_jsonl
from ..loop.rows import read_rows

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
BASELINE = "vanilla"   # every shipped study's study.baseline
PAPER_ARMS = ("vanilla", "greedy", "tdf")
# Studies whose rows are a subset of another shipped file (common random numbers: an arm's seeds do not
# depend on which other arms run). digits.jsonl is a file of its own: it is what `make study` writes,
# byte for byte, made by the current code (the archived mitigations rows were made on another CPU).
VIEWS = {
    "archive/digits_accumulate": ("archive/digits_mitigations",
                                  {"paradigm": ("accumulate-subsample",), "arm": PAPER_ARMS}),
    "factorial": (("factorial_digits", "factorial_mnist16"), {}),   # every cell of the factorial experiment
    "factorial_default": ("factorial_digits", {"sampler": ("ddim",), "steps": (1000,)}),  # the default's regime
}
KINDS = "results|summary|ranking|phase|cells|cycles|setup|pivot|truth|planted|factorial|predictor"
BLOCK = re.compile(rf"<!-- ({KINDS}):([\w/-]+)((?: [^\n>]*?)?) -->\n(.*?)<!-- /\1:\2 -->", re.S)
VALUE = re.compile(r"<!-- value:([\w/-]+) (\S+) (\w+) (\S+) -->(.*?)<!-- /value -->")
SLOPE = re.compile(r"<!-- slope:([\w/-]+) (\S+) (\w+) (\S+) -->(.*?)<!-- /slope -->")
COUNT = re.compile(r"<!-- count:([\w/-]+) ([^>]+?) -->(.*?)<!-- /count -->")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def shipped(name: str) -> list[dict]:
    """The rows of one study, each with every metrics.jsonl column (None where the run predates it)."""
    files, where = VIEWS.get(name, (name, {}))
    rows = [r for f in ((files,) if isinstance(files, str) else files)
            for r in read_rows(RESULTS / f"{f}.jsonl", {"run": name}, keys=())]
    return [r for r in rows if all(r[k] in allowed for k, allowed in where.items())]


def value(source: str, select: str, column: str, spec: str) -> str:
    return rows_value(shipped(source), select, column, spec, f"value:{source} {select}")


def trend_text(source: str, select: str, column: str, spec: str) -> str:
    return rows_trend(shipped(source), select, column, spec, f"slope:{source} {select}")


def count_text(source: str, args: str) -> str:
    """A claim about every cell of a study, counted from its rows (analysis.pages.count); the cells of
    the factorial are (data, sampler, steps), any other study is one cell."""
    from .factorial_tables import cells
    rows = shipped(source)
    groups = cells(rows) if source.startswith("factorial") else {(): rows}
    return rows_count(groups, args, f"count:{source} {args}")


def generate(kind: str, name: str, args: str = "") -> list[str]:
    from ..analysis.findings import findings_lines, summary_table
    from ..analysis.phase import cells_table, cycles_table, phase_table
    from ..analysis.report import ranking_table
    if kind in ("truth", "planted"):
        from .copy_suite import planted_table, score_table
        lines = read_jsonl(RESULTS / f"{name}.jsonl")
        return score_table(lines) if kind == "truth" else planted_table(lines)
    rows = shipped(name)
    if kind == "predictor":
        from .factorial_tables import predictor_lines
        return predictor_lines(rows)
    if kind == "factorial":
        from .factorial_tables import pilot_lines, slope_table
        key = args.split()[0] if args.split() else "copy_share"
        return slope_table(rows, key) + [""] + pilot_lines(rows, key)
    if kind == "results":
        return summary_table(rows) + [""] + [line for line in findings_lines(rows, BASELINE) if line.startswith("- ")]
    if kind == "summary":
        return summary_table(rows)
    if kind == "ranking":
        out: list[str] = []
        for p in dict.fromkeys(r["paradigm"] for r in rows):
            out += [f"**{p}**", ""] + ranking_table(rows, p) + [""]
        return out[:-1]
    if kind == "phase":            # <!-- phase:NAME [COLUMN] -->: the copy share unless a column is named
        from ..loop.rows import BY_NAME
        if args.split() or any(r.get("copy_share") is not None for r in rows):
            col = BY_NAME[(args.split() or ["copy_share"])[0]]
            return [f"{col.label[0].upper()}{col.label[1:]} at cycle 1:", ""] + phase_table(rows, col.name)
        head = ("1/3-rule memorization rate at cycle 1 (these rows predate the copy rule; on the real, distinct "
                "D_1 of cycle 1 its near branch is the 1/3 rule):")
        return [head, ""] + phase_table(rows, "memorization_rate")
    if kind == "cells":
        return cells_table(rows)
    if kind == "setup":
        return setup(rows)
    if kind == "pivot":
        return pivot(rows, *args.split())
    return cycles_table(rows)


def fill(text: str) -> str:
    text = BLOCK.sub(lambda m: f"<!-- {m[1]}:{m[2]}{m[3]} -->\n" + "\n".join(generate(m[1], m[2], m[3]))
                     + f"\n\n<!-- /{m[1]}:{m[2]} -->", text)
    text = VALUE.sub(lambda m: f"<!-- value:{m[1]} {m[2]} {m[3]} {m[4]} -->{value(m[1], m[2], m[3], m[4])}"
                               f"<!-- /value -->", text)
    text = SLOPE.sub(lambda m: f"<!-- slope:{m[1]} {m[2]} {m[3]} {m[4]} -->{trend_text(m[1], m[2], m[3], m[4])}"
                               f"<!-- /slope -->", text)
    return COUNT.sub(lambda m: f"<!-- count:{m[1]} {m[2]} -->{count_text(m[1], m[2])}<!-- /count -->", text)


def stale() -> list[Path]:
    """The pages whose generated blocks differ from what the shipped rows give."""
    return [p for p in pages() if fill(p.read_text()) != p.read_text()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 when any page is stale")
    args = ap.parse_args()
    old = stale()
    for page in old:
        print(f"{'stale' if args.check else 'rewrote'}: {page.relative_to(ROOT)}")
        if not args.check:
            page.write_text(fill(page.read_text()))
    if args.check and old:
        sys.exit(1)
