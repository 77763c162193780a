"""The read side of a results page: numbers, trends, setup lines and pivots, each a pure function of
rows (``loop.rows`` columns). ``experiments.pages`` places them in the pages between their markers.
"""
from __future__ import annotations

import re

from .stats import paired, sign, slopes


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


def value(rows: list[dict], select: str, column: str, spec: str, what: str = "value") -> str:
    """One number of the rows, formatted: SELECT is ``paradigm/arm/cycle`` or ``key=value,...`` and
    must match one row; a cycle ``1-5`` gives cycles 1 to 5 joined by arrows, ``1>5`` the relative
    change from cycle 1 to 5."""
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


def trend_text(rows: list[dict], select: str, column: str, spec: str, what: str = "slope") -> str:
    """'mean [lo, hi] a cycle, N seeds' of the slope of ``column`` over the chains ``select`` picks
    (``arm=greedy-vanilla``: the seed-paired difference of the slopes)."""
    where = _filters(select)
    arm = where.pop("arm")
    paradigm = where.pop("paradigm", "replace")
    rows = [r for r in rows if all(str(r.get(k)) == v for k, v in where.items())]
    est = paired(rows, paradigm, *arm.split("-"), column) if "-" in arm else slopes(rows, paradigm, arm, column)
    if est is None:
        raise ValueError(f"{what}: no chain matches")
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


# each read with analysis.stats.sign: a bound within ZERO of 0 is 0 on every machine, never a rounding sign
TESTS = {"mean<0": lambda e: sign(e.mean) < 0, "mean>0": lambda e: sign(e.mean) > 0,
         "lo>0": lambda e: sign(e.ci95[0]) > 0, "hi<0": lambda e: sign(e.ci95[1]) < 0,
         "spans0": lambda e: sign(e.ci95[0]) <= 0 <= sign(e.ci95[1])}


def cell_estimate(rows: list[dict], arm: str, column: str, paradigm: str = "replace"):
    """The estimate a count tests in one cell: the slope of COLUMN over cycles (``ln:COLUMN``: of its
    log) for ARM over seeds, or for ``A-B`` the seed-paired difference; ``COLUMN@C``: the paired
    difference of the values at cycle C instead of slopes."""
    log = column.startswith("ln:")
    column = column[3:] if log else column
    column, _, at = column.partition("@")
    if "-" in arm:
        return paired(rows, paradigm, *arm.split("-"), column, cycle=int(at) if at else None)
    return slopes(rows, paradigm, arm, column, log=log)


def count(groups: dict[tuple, list[dict]], args: str, what: str = "count") -> str:
    """``ARM COLUMN TEST [cells] [paradigm=P]`` over the cells of ``groups``: 'k of n' cells whose
    estimate (:func:`cell_estimate`) passes TEST (mean<0, mean>0, lo>0, hi<0, spans0), or with
    ``cells`` the passing cells named (a/b/c), 'none' when none does."""
    words = args.split()
    opts = dict(w.split("=", 1) for w in words if "=" in w)
    arm, column, test, *form = [w for w in words if "=" not in w]
    if test not in TESTS:
        raise ValueError(f"{what}: test '{test}' is not one of {', '.join(TESTS)}")
    hits, n = [], 0
    for cell, sub in groups.items():
        est = cell_estimate(sub, arm, column, opts.get("paradigm", "replace"))
        if est is None:
            continue
        n += 1
        if est.n > 1 and TESTS[test](est) or est.n == 1 and test.startswith("mean") and TESTS[test](est):
            hits.append("/".join(str(c) for c in cell))
    if not n:
        raise ValueError(f"{what}: no cell has {arm} {column}")
    if form == ["cells"]:
        return ", ".join(hits) or "none"
    return f"{len(hits)} of {n}"
