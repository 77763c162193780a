"""Scores of copy measures against planted truth (docs/method.md §7), from the rows of the
ground-truth suite (``experiments.groundtruth``; `collapse-diffusion groundtruth`): per scenario and size, each
measure's largest error over cycles and whether its trend over cycles goes the truth's way. Reads
rows only."""
from __future__ import annotations

import numpy as np

from ..analysis.stats import FLAT
from ..analysis.stats import slope as cycle_slope

TOLERANCE = 0.10  # a measure passes a scenario when it is this close to the truth in every cycle
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
    agree; ``passed`` when every cycle is within TOLERANCE and the direction is right."""
    cycles = sorted({r["cycle"] for r in rows})
    truth = [float(np.mean([r["truth"] for r in rows if r["cycle"] == c])) for c in cycles]
    value = [float(np.mean([r[measure] for r in rows if r["cycle"] == c])) for c in cycles]
    err = np.abs(np.array(value) - np.array(truth))
    st, sm = slope(truth), slope(value)
    right = direction(st) == direction(sm)
    return {"measure": measure, "max_error": float(err.max()), "mean_error": float(err.mean()),
            "truth_slope": st, "measure_slope": sm, "direction_right": right,
            "passed": bool(err.max() <= TOLERANCE and right), "truth": truth, "values": value}


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
        cells = [f"{s['max_error']:.2f} {arrow[direction(s['measure_slope'])]}" + ("" if s["direction_right"] else " ✗")
                 + (" **pass**" if s["passed"] else "") for s in scores]
        out.append(f"| {scenario} | {data}, {sub[0]['d']}, {n} | {len({r['seed'] for r in sub})} | "
                   f"{truth[0]:.2f} → {truth[-1]:.2f} {arrow[direction(slope(truth))]} | " + " | ".join(cells) + " |")
    return out


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
