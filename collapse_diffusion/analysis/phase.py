"""Tables of a phase diagram (docs/method.md §7) from its rows (RUN/phase.jsonl): the grid of one
metric over N x training steps, and each cell followed along the loop. Reads rows only."""
from __future__ import annotations

import numpy as np

from ..loop.rows import BY_NAME, RATES

HEAT = ("copy_share", "memorization_rate", "generalization_score")  # metrics.jsonl columns


def grid(rows: list[dict], key: str, cycle: int, preset: str) -> tuple[list[int], list[int], np.ndarray]:
    """(sizes, budgets, values[N index, steps index]) of one metric at one cycle: the mean over a
    cell's seeds (nan where missing)."""
    sub = [r for r in rows if r["cycle"] == cycle and r["preset"] == preset]
    ns, steps = sorted({r["n"] for r in sub}), sorted({r["steps"] for r in sub})
    values = np.full((len(ns), len(steps)), np.nan)
    for i, n in enumerate(ns):
        for j, s in enumerate(steps):
            vals = [r[key] for r in sub if (r["n"], r["steps"]) == (n, s) and r.get(key) is not None]
            if vals:
                values[i, j] = float(np.mean(vals))
    return ns, steps, values


def phase_table(rows: list[dict], key: str = "copy_share", cycle: int = 1) -> list[str]:
    """Markdown: ``key`` at ``cycle`` over N (rows) x training steps (columns), per preset."""
    out = []
    for preset in dict.fromkeys(r["preset"] for r in rows):
        ns, steps, v = grid(rows, key, cycle, preset)
        out += [f"| N ↓ steps → ({preset}) | " + " | ".join(map(str, steps)) + " |", "|" + "---|" * (len(steps) + 1)]
        out += [f"| {n} | " + " | ".join("n/a" if not np.isfinite(x) else f"{x:.2f}" for x in v[i]) + " |"
                for i, n in enumerate(ns)]
    return out


def cycles_table(rows: list[dict], keys: tuple[str, ...] = ("copy_share", "memorization_rate",
                                                            "duplicate_share_geometric", "generalization_score",
                                                            "mean_nn_train")) -> list[str]:
    """Markdown: per cell, each metric cycle by cycle (the phase diagram followed along the loop)."""
    head = "| N | steps | metric | " + " | ".join(f"cycle {c}" for c in sorted({r["cycle"] for r in rows})) + " |"
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for cell in dict.fromkeys(r["cell"] for r in rows):
        sub = sorted((r for r in rows if r["cell"] == cell), key=lambda r: r["cycle"])
        for key in keys:
            vals = [r.get(key) for r in sub]
            fmt = ".2f" if key in RATES else ".0f"
            out.append(f"| {sub[0]['n']} | {sub[0]['steps']} | {BY_NAME[key].name} | "
                       + " | ".join("n/a" if x is None else format(x, fmt) for x in vals) + " |")
    return out


MEMORIZES = 0.6   # memorization seen: every seed's membership AUC interval above this (a margin fixed in advance)
COPIES = 0.05     # copying seen: every seed's calibrated copy share interval above this; not seen: below it


def _verdict(lows: list, highs: list, margin: float, what: str) -> str:
    """"seen" when every seed's interval lies above ``margin``, "no ..." when every one lies below it,
    "cannot tell" where a seed gave no number, else "not shown" (neither side established)."""
    if any(v is None for v in lows + highs):
        return "cannot tell"
    if all(v > margin for v in lows):
        return f"{what} seen"
    if all(v < margin for v in highs):
        return f"no {what}"
    return "not shown"


def cells_table(rows: list[dict], cycle: int = 1) -> list[str]:
    """Markdown: per cell (N, steps) over its seeds, memorization (membership AUC per level, mean and
    range over seeds), copying (raw and calibrated copy share, frozen probe) and the verdict on each:
    memorization seen when every seed's AUC interval lies above MEMORIZES, copying seen when every seed's
    calibrated copy share interval lies above COPIES, "no copying" when every one lies below it."""
    from ..measure.membership import LEVELS, level_key
    sub = [r for r in rows if r["cycle"] == cycle]
    cells = sorted({(r["n"], r["steps"]) for r in sub})
    head = ("| N | steps | seeds | " + " | ".join(f"AUC abar={level_key(a)}" for a in LEVELS)
            + " | copy share (raw / calibrated) | memorizer share (frozen) | memorization | copying |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]

    def spread(vals: list) -> str:
        vals = [v for v in vals if v is not None]
        if not vals:
            return "n/a"
        return f"{np.mean(vals):.2f}" + (f" ({min(vals):.2f}-{max(vals):.2f})" if len(vals) > 1 else "")

    for n, steps in cells:
        rs = [r for r in sub if (r["n"], r["steps"]) == (n, steps)]
        by = [spread([(r.get("membership_auc_by_level") or {}).get(level_key(a)) for r in rs]) for a in LEVELS]
        auc_ci = [r.get("membership_auc_ci95") or [None, None] for r in rs]
        cal_ci = [r.get("copy_share_calibrated_ci95") or [None, None] for r in rs]
        mem = _verdict([c[0] for c in auc_ci], [c[1] for c in auc_ci], MEMORIZES, "memorization")
        cop = _verdict([c[0] for c in cal_ci], [c[1] for c in cal_ci], COPIES, "copying")
        raw, cal = spread([r.get("copy_share") for r in rs]), spread([r.get("copy_share_calibrated") for r in rs])
        out.append(f"| {n} | {steps} | {len(rs)} | " + " | ".join(by) + f" | {raw} / {cal}"
                   + f" | {spread([r.get('memorizer_share_frozen') for r in rs])} | {mem} | {cop} |")
    return out
