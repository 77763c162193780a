"""The factorial experiment's reading (docs/results/factorial.md): per cell (data, sampler, training
steps) and arm, the slope of copying over cycles with its 95% interval over seeds, the seed-paired
difference of greedy against vanilla, and a cheap predictor of the slope's sign. Reads rows only.

Rows are metrics.jsonl rows tagged with ``sampler`` and ``data`` (scripts/factorial.py).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..analysis.stats import FLAT, HELD_SEEDS, paired, sign, slope, slopes

CELL = ("data", "sampler", "steps")
KEYS = (("copy_share", "copy share (copy rule)"), ("memorizer_share", "memorizer share (model probe)"))
FIGURES = KEYS + (("duplicate_share_geometric", "duplicate share of D_n (contraction)"),
                  ("grey_share", "grey-background share (MNIST)"))


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
    against the sign of its slope over every cycle (the chain's answer). One dict per chain. Signs
    are -1, 0 or +1 (analysis.stats.sign: a slope within 1e-9 of 0 is flat), so a flat chain is
    predicted right only by a flat pilot."""
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
                        "slope": full, "agree": sign(early) == sign(full)})
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
    """Copying against cycle: one row of panels per data set, one panel per (sampler, steps) cell,
    one line per arm (mean over seeds) with the seeds' range as a band."""
    import matplotlib.pyplot as plt
    groups = cells(rows)
    data = list(dict.fromkeys(d for d, _, _ in groups))
    width = max(sum(1 for g in groups if g[0] == d) for d in data)
    fig, axes = plt.subplots(len(data), width, figsize=(3.0 * width, 2.7 * len(data)), squeeze=False, sharey=True)
    for ax in axes.ravel():
        ax.set_visible(False)
    for row, d in enumerate(data):
        for ax, ((_, sampler, steps), sub) in zip(axes[row], [(g, v) for g, v in groups.items() if g[0] == d]):
            ax.set_visible(True)
            for arm in dict.fromkeys(r["arm"] for r in sub):
                cyc = sorted({r["cycle"] for r in sub if r["arm"] == arm})
                vals = [[r[key] for r in sub if r["arm"] == arm and r["cycle"] == c and r.get(key) is not None]
                        for c in cyc]
                line, = ax.plot(cyc, [np.mean(v) for v in vals], marker="o", label=arm)
                ax.fill_between(cyc, [min(v) for v in vals], [max(v) for v in vals], color=line.get_color(),
                                alpha=0.2)
            n_seeds = len({r["seed"] for r in sub})
            ax.set_title(f"{d}, {sampler}, {steps} steps ({n_seeds} seed{'s' if n_seeds != 1 else ''})", fontsize=8)
            ax.set_xlabel("cycle")
            ax.set_ylim(0, 1)
        axes[row, 0].set_ylabel(label or key, fontsize=8)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def chain_signs(rows: list[dict], key: str) -> list[dict]:
    """Every vanilla chain of every cell: its slope of ``key`` over all cycles (the answer) with the
    cheap quantities that could predict its sign: the slope over cycles 1-2 (a 2-cycle pilot) and
    the cycle-1 copy share and memorizer share."""
    out = []
    for c in pilot_sign(rows, key):
        first = next((r for r in rows if r.get("data") == c["data"] and r.get("sampler") == c["sampler"]
                      and r["steps"] == c["steps"] and r["seed"] == c["seed"] and r["cycle"] == 1), {})
        out.append({**c, "cycle1_copy_share": first.get("copy_share"),
                    "cycle1_memorizer_share": first.get("memorizer_share")})
    return out


def loo_threshold(xs: list[float], ys: list[int]) -> Optional[float]:
    """Leave-one-out accuracy of the best one-threshold rule (x above t, or below t, gives +1, else
    -1; t midway between two observed values) for the signs ys (+1, -1, or 0 for a flat chain, which
    the rule never gets right) from xs: each chain predicted by the rule fitted on the others. None
    when every chain has the same sign (nothing to predict)."""
    if len(set(ys)) < 2:
        return None
    hits = 0
    for i in range(len(xs)):
        x, y = [v for j, v in enumerate(xs) if j != i], [v for j, v in enumerate(ys) if j != i]
        best, cuts = (-1.0, 0.0, 1), sorted(set(x))
        for t in [cuts[0] - 1] + [(a + b) / 2 for a, b in zip(cuts, cuts[1:])]:  # midpoints between values
            for d in (1, -1):
                acc = np.mean([(1 if d * (a - t) > 0 else -1) == b for a, b in zip(x, y)])
                best = max(best, (acc, t, d))
        _, t, d = best
        hits += (1 if d * (xs[i] - t) > 0 else -1) == ys[i]
    return hits / len(xs)


def predictor_lines(rows: list[dict]) -> list[str]:
    """The cheap predictors of the sign of vanilla's slope, scored over every chain of every cell,
    for the copy share and the memorizer share, against guessing the more common sign."""
    from ..measure.memorization import clopper_pearson
    out = ["| measure | chains | slope > 0 | slope < 0 | flat | 2-cycle pilot right | more common sign right | "
           "cycle-1 copy share, LOO threshold | cycle-1 memorizer share, LOO threshold |",
           "|---|---|---|---|---|---|---|---|---|"]
    for key, _ in KEYS:
        chains = [c for c in chain_signs(rows, key)
                  if c["cycle1_copy_share"] is not None and c["cycle1_memorizer_share"] is not None]
        if not chains:
            continue
        ys = [sign(c["slope"]) for c in chains]
        n, up, down = len(ys), ys.count(1), ys.count(-1)
        pilot = sum(c["agree"] for c in chains)
        lo, hi = clopper_pearson(pilot, n)
        cells = []
        for feature in ("cycle1_copy_share", "cycle1_memorizer_share"):
            acc = loo_threshold([c[feature] for c in chains], ys)
            cells.append("no chain rises: nothing to predict" if acc is None else f"{acc:.2f}")
        common = max(ys.count(s) for s in (1, -1, 0))
        out.append(f"| {key} | {n} | {up} | {down} | {n - up - down} | {pilot} ({pilot / n:.2f}, 95% CI [{lo:.2f}, "
                   f"{hi:.2f}]) | {common} ({common / n:.2f}) | {cells[0]} | {cells[1]} |")
    return out
