"""The factorial experiment's reading (docs/results/factorial.md): per cell (data, sampler, training
steps) and arm, the slope of copying over cycles with its 95% interval over seeds, the seed-paired
difference of greedy against vanilla, and a cheap predictor of the slope's sign. Reads rows only.

Rows are metrics.jsonl rows tagged with ``sampler`` and ``data`` (scripts/factorial.py).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .stats import FLAT, HELD_SEEDS, paired, slope, slopes

CELL = ("data", "sampler", "steps")
KEYS = (("copy_share", "copy share (copy rule)"), ("memorizer_share", "memorizer share (model probe)"))


def cells(rows: list[dict]) -> dict[tuple, list[dict]]:
    """Rows by cell (data, sampler, steps), in the order they appear."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in CELL), []).append(r)
    return out


def direction(est) -> str:
    """rises / falls / stays (|slope| < FLAT a cycle) / unsettled (the interval spans both signs
    beyond FLAT) from a slope estimate; one seed is read off its value alone."""
    if est is None:
        return "n/a"
    if est.n < 2:
        return "rises" if est.mean >= FLAT else "falls" if est.mean <= -FLAT else "stays"
    lo, hi = est.ci95
    if lo > 0 and est.mean >= FLAT:
        return "rises"
    if hi < 0 and est.mean <= -FLAT:
        return "falls"
    if -FLAT < lo and hi < FLAT:
        return "stays"
    return "unsettled"


def slope_table(rows: list[dict], key: str = "copy_share") -> list[str]:
    """Markdown: per cell and arm, cycle 1 and last-cycle means, the slope over cycles with its seed
    interval and its reading; per cell greedy minus vanilla (seed-paired slopes)."""
    out = ["| data | sampler | steps | arm | seeds | cycle 1 | last | slope a cycle [95% CI] | reading |",
           "|---|---|---|---|---|---|---|---|---|"]
    for (data, sampler, steps), sub in cells(rows).items():
        last = max(r["cycle"] for r in sub)
        for arm in dict.fromkeys(r["arm"] for r in sub):
            est = slopes(sub, "replace", arm, key)
            if est is None:
                continue
            first = np.mean([r[key] for r in sub if r["arm"] == arm and r["cycle"] == 1 and r.get(key) is not None])
            end = np.mean([r[key] for r in sub if r["arm"] == arm and r["cycle"] == last and r.get(key) is not None])
            ci = "" if est.n < 2 else f" [{est.ci95[0]:+.3f}, {est.ci95[1]:+.3f}]"
            out.append(f"| {data} | {sampler} | {steps} | {arm} | {est.n} | {first:.3f} | {end:.3f} | "
                       f"{est.mean:+.3f}{ci} | {direction(est)}{'' if est.n >= HELD_SEEDS else ' (suggested)'} |")
        diff = paired(sub, "replace", "greedy", "vanilla", key)
        if diff is not None:
            ci = "" if diff.n < 2 else f" [{diff.ci95[0]:+.3f}, {diff.ci95[1]:+.3f}]"
            slower = diff.n >= 2 and diff.ci95[1] < 0
            out.append(f"| {data} | {sampler} | {steps} | greedy - vanilla | {diff.n} | | | {diff.mean:+.3f}{ci} | "
                       f"{'greedy slower' if slower else 'no difference shown'} |")
    return out


def pilot_sign(rows: list[dict], key: str = "copy_share", pilot: int = 2) -> list[dict]:
    """The cheap predictor: the sign of the slope over cycles 1..``pilot`` of each vanilla chain
    against the sign of its slope over every cycle (the chain's answer). One dict per chain."""
    out = []
    for (data, sampler, steps), sub in cells(rows).items():
        for seed in sorted({r["seed"] for r in sub}):
            chain = sorted((r for r in sub if r["arm"] == "vanilla" and r["seed"] == seed and r.get(key) is not None),
                           key=lambda r: r["cycle"])
            if len(chain) < max(3, pilot + 1):
                continue
            c, v = [r["cycle"] for r in chain], [r[key] for r in chain]
            full, early = slope(c, v), slope(c[:pilot], v[:pilot])
            out.append({"data": data, "sampler": sampler, "steps": steps, "seed": seed, "pilot_slope": early,
                        "slope": full, "agree": bool(np.sign(early) == np.sign(full))})
    return out


def pilot_lines(rows: list[dict], key: str = "copy_share", pilot: int = 2) -> list[str]:
    """One line: the predictor's accuracy over the chains, with a Clopper-Pearson interval."""
    from ..measure.memorization import clopper_pearson
    chains = pilot_sign(rows, key, pilot)
    if not chains:
        return ["No chain has enough cycles to score the pilot predictor."]
    hits = sum(c["agree"] for c in chains)
    lo, hi = clopper_pearson(hits, len(chains))
    return [f"Sign of vanilla's {key} slope over cycles 1-{pilot} against its slope over every cycle: right in "
            f"{hits} of {len(chains)} chains ({hits / len(chains):.2f}, 95% CI [{lo:.2f}, {hi:.2f}])."]


def figure_cells(rows: list[dict], key: str = "copy_share", label: Optional[str] = None):
    """Copying against cycle, one panel per cell, one line per arm (mean over seeds) with the
    seeds' range as a band."""
    import matplotlib.pyplot as plt
    groups = cells(rows)
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 2.9), squeeze=False, sharey=True)
    for ax, ((data, sampler, steps), sub) in zip(axes[0], groups.items()):
        for arm in dict.fromkeys(r["arm"] for r in sub):
            cyc = sorted({r["cycle"] for r in sub if r["arm"] == arm})
            vals = [[r[key] for r in sub if r["arm"] == arm and r["cycle"] == c and r.get(key) is not None]
                    for c in cyc]
            mean = [np.mean(v) for v in vals]
            line, = ax.plot(cyc, mean, marker="o", label=arm)
            ax.fill_between(cyc, [min(v) for v in vals], [max(v) for v in vals], color=line.get_color(), alpha=0.2)
        n_seeds = len({r["seed"] for r in sub})
        ax.set_title(f"{data}, {sampler}, {steps} steps\n({n_seeds} seed{'s' if n_seeds != 1 else ''})", fontsize=9)
        ax.set_xlabel("cycle")
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel(label or key)
    axes[0, -1].legend(fontsize=8)
    fig.tight_layout()
    return fig
