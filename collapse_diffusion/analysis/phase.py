"""Tables of a phase diagram (docs/method.md §7) from its rows (RUN/phase.jsonl): the grid of one
metric over N x training steps, and each cell followed along the loop. Reads rows only."""
from __future__ import annotations

import numpy as np

from ..loop.rows import BY_NAME, RATES

HEAT = ("copy_share", "memorization_rate", "generalization_score")  # metrics.jsonl columns


def grid(rows: list[dict], key: str, cycle: int, preset: str) -> tuple[list[int], list[int], np.ndarray]:
    """(sizes, budgets, values[N index, steps index]) of one metric at one cycle (nan where missing)."""
    sub = [r for r in rows if r["cycle"] == cycle and r["preset"] == preset]
    ns, steps = sorted({r["n"] for r in sub}), sorted({r["steps"] for r in sub})
    values = np.full((len(ns), len(steps)), np.nan)
    for r in sub:
        if r.get(key) is not None:
            values[ns.index(r["n"]), steps.index(r["steps"])] = r[key]
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
