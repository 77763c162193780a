"""Scores of copy measures against planted truth (docs/method.md §7), from the rows of the
ground-truth suite (``experiments.groundtruth``; `collapse-diffusion groundtruth`): per scenario and size, each
measure's largest error over cycles and whether its trend over cycles goes the truth's way. Reads
rows only."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..analysis.stats import FLAT
from ..analysis.stats import slope as cycle_slope

RESULTS_ROWS = Path(__file__).resolve().parents[2] / "docs" / "results" / "copy_suite.jsonl"  # the shipped rows
TOLERANCE = 0.10  # a measure passes a scenario when it is this close to the truth in every cycle
BOUNDS = ("near_share",)  # upper bounds: they pass when never below the truth by more than TOLERANCE
CONTEXT = ("scenario", "data", "d", "n", "seed", "cycle", "m", "truth", "spacing", "precision")


def measures(rows: list[dict]) -> list[str]:
    """The copy measures a suite's rows carry (every column that is not context)."""
    return [k for k in rows[0] if k not in CONTEXT]


def slope(values: list[float]) -> float:
    """Least-squares slope per cycle of values at cycles 1, 2, ... (analysis.stats.slope)."""
    return cycle_slope(list(range(1, len(values) + 1)), values)


def direction(s: float) -> int:
    """+1 rising, -1 falling, 0 flat (within FLAT per cycle)."""
    return 0 if abs(s) < FLAT else int(np.sign(s))


def score(rows: list[dict], measure: str) -> dict:
    """How ``measure`` fares on the rows of one scenario and size (all seeds): the largest and the
    mean error against the truth over cycles (seed means), both slopes and whether their directions
    agree; ``passed`` when every cycle it gives a number in is within TOLERANCE and the direction is
    right (a measure that reads "cannot tell", None, in a cycle is not scored there). An upper bound
    (``BOUNDS``) is scored on how far it falls below the truth, and its trend is not scored."""
    cycles = sorted({r["cycle"] for r in rows})
    truth = [float(np.mean([r["truth"] for r in rows if r["cycle"] == c])) for c in cycles]
    # a measure that reads "cannot tell" (None) in a cycle is scored on the cycles where it gives a number
    given = [[r[measure] for r in rows if r["cycle"] == c and r.get(measure) is not None] for c in cycles]
    kept = [i for i, g in enumerate(given) if g]
    value = [float(np.mean(given[i])) for i in kept]
    if not kept:
        return {"measure": measure, "max_error": float("nan"), "mean_error": float("nan"), "truth_slope": slope(truth),
                "measure_slope": float("nan"), "direction_right": False, "passed": False, "truth": truth,
                "values": [], "cycles": []}
    diff = np.array(value) - np.array([truth[i] for i in kept])
    err = np.maximum(-diff, 0.0) if measure in BOUNDS else np.abs(diff)
    st = cycle_slope([cycles[i] for i in kept], [truth[i] for i in kept]) if len(kept) > 1 else 0.0
    sm = cycle_slope([cycles[i] for i in kept], value) if len(kept) > 1 else 0.0
    right = direction(st) == direction(sm) or measure in BOUNDS
    return {"measure": measure, "max_error": float(err.max()), "mean_error": float(err.mean()),
            "truth_slope": st, "measure_slope": sm, "direction_right": right,
            "passed": bool(err.max() <= TOLERANCE and right), "truth": truth, "values": value,
            "cycles": [cycles[i] for i in kept]}


def groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    """Rows by (scenario, data, N), in the order they appear."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault((r["scenario"], r.get("data", ""), r["n"]), []).append(r)
    return out


def score_table(rows: list[dict]) -> list[str]:
    """Markdown: a line per scenario and size, the truth's trajectory, then each measure's largest
    error and trend (arrow: its direction; a cross where it differs from the truth's)."""
    names = measures(rows)
    arrow = {1: "↑", 0: "→", -1: "↓"}
    head = "| scenario | data, d, N | seeds | truth, cycles 1→last | " + " | ".join(names) + " |"
    out = [head, "|" + "---|" * (4 + len(names))]
    for (scenario, data, n), sub in groups(rows).items():
        scores = [score(sub, m) for m in names]
        truth = scores[0]["truth"]
        cells = [_cell(s, len(truth), arrow) for s in scores]
        out.append(f"| {scenario} | {data}, {sub[0]['d']}, {n} | {len({r['seed'] for r in sub})} | "
                   f"{truth[0]:.2f} → {truth[-1]:.2f} {arrow[direction(slope(truth))]} | " + " | ".join(cells) + " |")
    return out


def _cell(s: dict, cycles: int, arrow: dict) -> str:
    """One measure's cell: largest error, trend, a cross for a wrong trend, the cycles it gave a number
    in where it did not give one in all, and pass."""
    if not s["cycles"]:
        return "cannot tell"
    part = "" if len(s["cycles"]) == cycles else f" (cycles {','.join(map(str, s['cycles']))})"
    return (f"{s['max_error']:.2f} {arrow[direction(s['measure_slope'])]}" + ("" if s["direction_right"] else " ✗")
            + part + (" **pass**" if s["passed"] else ""))


PLANTED = ("copy_share", "memorization_rate", "memorization_rate_lineage", "relative_copy_share")


def planted_table(rows: list[dict]) -> list[str]:
    """Markdown: per trained model (N, steps) and group of images (its own samples, planted exact and
    near copies, fresh real images), the share each copy measure flags, with the truth where known,
    and the model's memorizer share (the model probe)."""
    head = "| model (digits) | memorizer share | images | m | truth | " + " | ".join(PLANTED) + " |"
    out = [head, "|" + "---|" * (5 + len(PLANTED))]
    for r in rows:
        truth = "unknown" if r["truth"] is None else f"{r['truth']:.0f}"
        out.append(f"| N = {r['n']}, {r['steps']} steps | {r['memorizer_share']:.2f} | {r['group']} | {r['m']} | "
                   f"{truth} | " + " | ".join(f"{r[k]:.3f}" for k in PLANTED) + " |")
    return out
