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
- ``cycles:SOURCE``   the phase diagram followed along the loop (analysis.phase.cycles_table)
- ``setup:SOURCE``    what the rows say was run: N, steps, preset, cycles, seeds, arms, sample counts, spaces
- ``pivot:SOURCE COLUMN FORMAT [KEY=VALUE,...]``  one column per cycle, one line per paradigm / arm
- ``truth:SOURCE``    the ground-truth suite's score of every copy measure (analysis.copy_suite)
- ``planted:SOURCE``  every copy measure on planted copies in trained models' samples (analysis.copy_suite)
- ``factorial:SOURCE KEY``  per cell and arm the slope of KEY over cycles with seed intervals, and the
  pilot predictor's accuracy (analysis.factorial)
- ``predictor:SOURCE``  the cheap predictors of the sign of vanilla's slope over every chain (analysis.factorial)

A number inside a sentence is ``<!-- value:SOURCE SELECT COLUMN FORMAT -->text<!-- /value -->``:
SELECT is ``paradigm/arm/cycle`` or ``key=value,...`` and must match exactly one row; a cycle ``1-5``
gives the values of cycles 1 to 5 joined by arrows, ``1>5`` the relative change from cycle 1 to 5.
FORMAT is a Python format spec (``.2f``, ``.0%``, ``+.0%``); an interval column gives ``[lo, hi]``.
A trend inside a sentence is ``<!-- slope:SOURCE SELECT COLUMN FORMAT -->text<!-- /slope -->``: the
slope of COLUMN over cycles per seed, as the mean over seeds with its 95% t interval and the number of
seeds (analysis.stats.slopes); SELECT is ``key=value,...`` over the rows (``arm=greedy-vanilla``: the
seed-paired difference of the slopes, analysis.stats.paired).

Imports only collapse_diffusion.analysis and collapse_diffusion.loop.rows: no torch.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
KINDS = "results|summary|ranking|phase|cycles|setup|pivot|truth|planted|factorial|predictor"
BLOCK = re.compile(rf"<!-- ({KINDS}):([\w/-]+)((?: [^\n>]*?)?) -->\n(.*?)<!-- /\1:\2 -->", re.S)
VALUE = re.compile(r"<!-- value:([\w/-]+) (\S+) (\w+) (\S+) -->(.*?)<!-- /value -->")
SLOPE = re.compile(r"<!-- slope:([\w/-]+) (\S+) (\w+) (\S+) -->(.*?)<!-- /slope -->")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def shipped(name: str) -> list[dict]:
    """The rows of one study, each with every metrics.jsonl column (None where the run predates it)."""
    from collapse_diffusion.loop.rows import normalize
    files, where = VIEWS.get(name, (name, {}))
    lines = [line for f in ((files,) if isinstance(files, str) else files)
             for line in (RESULTS / f"{f}.jsonl").read_text().splitlines() if line.strip()]
    rows = [normalize({**json.loads(line), "run": name}) for line in lines]
    return [r for r in rows if all(r[k] in allowed for k, allowed in where.items())]


def _fmt(x, spec: str) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_fmt(v, spec) for v in x) + "]"
    return format(x, spec)


def _filters(text: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in text.split(",") if kv)


def _one(rows: list[dict], where: dict[str, str], what: str) -> dict:
    match = lambda w: [r for r in rows if all(str(r.get(k)) == v for k, v in w.items())]  # noqa: E731
    hits = match(where)
    if not hits and where.get("cycle") == "1" and "arm" in where:   # cycle 1 is shared by every arm
        hits = (match({**where, "paradigm": "shared", "arm": "*"})
                or match({k: v for k, v in where.items() if k != "arm"}))
    if len(hits) != 1:
        raise ValueError(f"{what}: {len(hits)} rows match {where}, not one")
    return hits[0]


def value(source: str, select: str, column: str, spec: str) -> str:
    rows, what = shipped(source), f"value:{source} {select}"
    if "=" in select:
        where = _filters(select)
    else:
        where = dict(zip(("paradigm", "arm", "cycle"), select.split("/")))
    cycle = where.pop("cycle", None)
    if cycle and (">" in cycle or "-" in cycle):
        a, b = map(int, re.split("[>-]", cycle))
        xs = [_one(rows, {**where, "cycle": str(c)}, what)[column] for c in range(a, b + 1)]
        return format(xs[-1] / xs[0] - 1, spec) if ">" in cycle else " → ".join(_fmt(x, spec) for x in xs)
    return _fmt(_one(rows, {**where, **({"cycle": cycle} if cycle else {})}, what)[column], spec)


def trend_text(source: str, select: str, column: str, spec: str) -> str:
    """'mean [lo, hi] a cycle, N seeds' of the slope of ``column`` over the chains ``select`` picks."""
    from collapse_diffusion.analysis.stats import paired, slopes
    where = _filters(select)
    arm = where.pop("arm")
    paradigm = where.pop("paradigm", "replace")
    rows = [r for r in shipped(source) if all(str(r.get(k)) == v for k, v in where.items())]
    est = paired(rows, paradigm, *arm.split("-"), column) if "-" in arm else slopes(rows, paradigm, arm, column)
    if est is None:
        raise ValueError(f"slope:{source} {select}: no chain matches")
    interval = f" [{format(est.ci95[0], spec)}, {format(est.ci95[1], spec)}]" if est.n > 1 else ""
    return f"{format(est.mean, spec)}{interval} a cycle, {est.n} seed{'s' * (est.n != 1)}"


def _join(values) -> str:
    return ", ".join(str(v) for v in dict.fromkeys(values))


def setup(rows: list[dict]) -> list[str]:
    """What was run, read from the rows themselves."""
    r0, seeds = rows[0], sorted({r["seed"] for r in rows})
    cycles = max(r["cycle"] for r in rows)
    if "cell" in r0:
        cells = list(dict.fromkeys(r["cell"] for r in rows))
        out = [f"- cells: N ∈ {{{_join(sorted({r['n'] for r in rows}))}}} × training steps ∈ "
               f"{{{_join(sorted({r['steps'] for r in rows}))}}}, preset {_join(r['preset'] for r in rows)}: "
               f"{len(cells)} cells, one replace/vanilla chain of {cycles} cycle{'s' * (cycles > 1)} each; "
               f"seed {_join(seeds)}"]
    else:
        arms = _join(f"{r['arm']} ({r['selector']}, {r['space']} space)" for r in rows)
        per_seed = 1 + sum(1 for r in rows if r["cycle"] > 1 and r["seed"] == seeds[0])
        out = [f"- N = {_join(r['n'] for r in rows)} real images, {_join(r['steps'] for r in rows)} training steps "
               f"per cycle, preset {_join(r['preset'] for r in rows)}; {cycles} cycles; "
               f"seed{'s' * (len(seeds) > 1)} {_join(seeds)}; {per_seed} models trained per seed (cycle 1 is shared)",
               f"- paradigms: {_join(r['paradigm'] for r in rows)}; arms (selector, selection space): {arms}"]
    out.append(f"- every metric on {_join(r['n_generated'] for r in rows)} generated images per "
               f"{'cell and cycle' if 'cell' in r0 else 'arm and cycle'}; nearest neighbours and entropies in "
               f"{_join(r['entropy_space'] for r in rows)}")
    if r0.get("fd_label"):
        out.append(f"- {_join(r['fd_label'] for r in rows)}: {_join(r['fd_n_generated'] for r in rows)} generated "
                   f"against {_join(r['fd_n_real'] for r in rows)} real images")
    return out


def pivot(rows: list[dict], column: str, spec: str, where: str = "") -> list[str]:
    """``column`` per cycle (columns) for each paradigm / arm (lines); a ``shared`` row is every arm's cycle 1."""
    rows = [r for r in rows if r["paradigm"] == "shared" or all(str(r.get(k)) == v for k, v in _filters(where).items())]
    cycles = sorted({r["cycle"] for r in rows})
    out = [f"| {column} | " + " | ".join(f"cycle {c}" for c in cycles) + " |", "|" + "---|" * (len(cycles) + 1)]
    for p, a in dict.fromkeys((r["paradigm"], r["arm"]) for r in rows if r["paradigm"] != "shared"):
        cells = []
        for c in cycles:
            hits = [r for r in rows if r["cycle"] == c and (r["paradigm"], r["arm"]) in ((p, a), ("shared", "*"))]
            if not hits and c == 1:       # cycle 1 is shared: a run may list it under one arm only
                first = [r for r in rows if r["cycle"] == 1 and r["paradigm"] == p]
                hits = first if len(first) == 1 else []
            if len(hits) > 1:
                raise ValueError(f"pivot {column}: {len(hits)} rows for {p}/{a} cycle {c}; add a filter")
            cells.append(_fmt(hits[0][column], spec) if hits else "n/a")
        out.append(f"| {p} / {a} | " + " | ".join(cells) + " |")
    return out


def generate(kind: str, name: str, args: str = "") -> list[str]:
    from collapse_diffusion.analysis.findings import findings_lines, summary_table
    from collapse_diffusion.analysis.phase import cycles_table, phase_table
    from collapse_diffusion.analysis.report import ranking_table
    if kind in ("truth", "planted"):
        from collapse_diffusion.analysis.copy_suite import planted_table, score_table
        lines = [json.loads(line) for line in (RESULTS / f"{name}.jsonl").read_text().splitlines()]
        return score_table(lines) if kind == "truth" else planted_table(lines)
    rows = shipped(name)
    if kind == "predictor":
        from collapse_diffusion.analysis.factorial import predictor_lines
        return predictor_lines(rows)
    if kind == "factorial":
        from collapse_diffusion.analysis.factorial import pilot_lines, slope_table
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
        from collapse_diffusion.loop.rows import BY_NAME
        if args.split() or any(r.get("copy_share") is not None for r in rows):
            col = BY_NAME[(args.split() or ["copy_share"])[0]]
            return [f"{col.label[0].upper()}{col.label[1:]} at cycle 1:", ""] + phase_table(rows, col.name)
        head = ("1/3-rule memorization rate at cycle 1 (these rows predate the copy rule; on the real, distinct "
                "D_1 of cycle 1 its near branch is the 1/3 rule):")
        return [head, ""] + phase_table(rows, "memorization_rate")
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
    return SLOPE.sub(lambda m: f"<!-- slope:{m[1]} {m[2]} {m[3]} {m[4]} -->{trend_text(m[1], m[2], m[3], m[4])}"
                               f"<!-- /slope -->", text)


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


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
