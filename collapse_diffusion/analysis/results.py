"""Reading a finished run (metrics.jsonl and the cycle folders) and drawing its figures.

The report and the analysis notebook both call these; nothing here recomputes a metric.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import matplotlib.pyplot as plt
import numpy as np

from ..core.errors import UserError
from ..core.layout import RunLayout
from ..loop.rows import BY_NAME, PLOTTED, RATES, read_rows
from .plots import metric_lines

# (column, interval column, axis label) of every metric drawn against cycle: from the records' metadata
METRICS = [(c.name, c.ci, c.label) for c in PLOTTED]
ARM_COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def load_rows(run_dirs: Iterable[str | Path]) -> list[dict]:
    """All metrics.jsonl rows of the given runs, each tagged with its run directory; every schema
    column present (None where a run predates it)."""
    rows = []
    for run in run_dirs:
        path = RunLayout(run).metrics
        got = read_rows(path, {"run": str(run)}, hint="; point at a run directory that `collapse-diffusion run` wrote")
        if not got:
            raise UserError(f"'{path}' holds no rows; finish the study with `collapse-diffusion run`")
        rows += got
    return rows


def baseline(run: str | Path) -> str:
    """The baseline arm of a run (its config's study.baseline), the arm findings compare against."""
    from ..loop.experiment import load_config
    return load_config(RunLayout(run).config, saved=True).study.baseline


def label(row: dict, multi_run: bool) -> str:
    return f"{Path(row['run']).name}:{row['arm']}" if multi_run else row["arm"]


def seeds(rows: list[dict]) -> list[int]:
    return sorted({r.get("seed", 0) for r in rows})


def series(rows: list[dict], paradigm: str, key: str, ci: Optional[str] = None):
    """{arm label: cycles}, {arm label: values}, {arm label: bands} of one paradigm.

    One seed: the row's value and its interval. Several seeds: the mean over seeds and, as the
    band, the min-max range across seeds (docs/method.md §8)."""
    multi = len({r["run"] for r in rows}) > 1
    groups: dict[str, dict[int, list[dict]]] = {}
    for r in rows:
        if r["paradigm"] == paradigm and r.get(key) is not None:
            groups.setdefault(label(r, multi), {}).setdefault(r["cycle"], []).append(r)
    cycles, values, intervals = {}, {}, {}
    for name, by_cycle in groups.items():
        cs = sorted(by_cycle)
        cycles[name] = cs
        values[name] = [float(np.mean([r[key] for r in by_cycle[c]])) for c in cs]
        if len(seeds(rows)) > 1:
            intervals[name] = [[min(r[key] for r in by_cycle[c]), max(r[key] for r in by_cycle[c])] for c in cs]
        elif ci and all(by_cycle[c][0].get(ci) for c in cs):
            intervals[name] = [by_cycle[c][0][ci] for c in cs]
    return cycles, values, intervals


def arm_colour(arm: str, rows: list[dict]) -> str:
    """One colour per arm across every figure."""
    names = list(dict.fromkeys(r["arm"] for r in rows))
    return ARM_COLOURS[names.index(arm) % len(ARM_COLOURS)] if arm in names else "k"


def paradigms(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["paradigm"] for r in rows))


def figure_metric(rows: list[dict], key: str, ci: Optional[str], ylabel: str):
    ps = paradigms(rows)
    fig, axes = plt.subplots(1, len(ps), figsize=(4.6 * len(ps), 3.4), squeeze=False)
    for ax, p in zip(axes[0], ps):
        c, v, i = series(rows, p, key, ci)
        metric_lines(ax, c, v, i or None, ylabel, {a: arm_colour(a.split(":")[-1], rows) for a in c})
        if key == "real_share" and p == "accumulate-subsample":
            xs = np.arange(1, max(max(x) for x in c.values()) + 1)
            ax.plot(xs, 1.0 / xs, "k--", lw=1, label="1/n (equal share)")
        if key in RATES and v:
            top = max(max(vals) for vals in v.values())
            ax.set_ylim(-0.02, max(0.1, min(1.02, top * 1.15 + 0.02)) if top < 0.9 else 1.02)
        ax.set_title(p)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def distinct(rows: list[dict]) -> list[dict]:
    """Rows of distinct training sets: cycle 1 (shared by every paradigm and arm) counted once per seed."""
    seen, out = set(), []
    for r in rows:
        key = (r["run"], r.get("seed", 0), 1) if r["cycle"] == 1 else (r["run"], r.get("seed", 0), r["paradigm"],
                                                                         r["arm"], r["cycle"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def fisher_ci(r: float, n: int, level: float = 0.95) -> list[float]:
    """Interval of a Pearson r from the Fisher z transform (n > 3 points)."""
    from scipy.stats import norm
    if n <= 3 or not np.isfinite(r) or abs(r) >= 1:
        return [float("nan"), float("nan")]
    z, se = np.arctanh(r), 1 / np.sqrt(n - 3)
    q = norm.ppf(0.5 + level / 2)
    return [float(np.tanh(z - q * se)), float(np.tanh(z + q * se))]


def correlation(rows: list[dict], x: str, y: str, log_y: bool = False) -> dict:
    """Pearson r of ``y`` (optionally ln y) against ``x`` over distinct training sets, with its interval."""
    pts = np.array([(r[x], r[y]) for r in distinct(rows)
                    if r.get(x) is not None and r.get(y) is not None and r[y] > 0], dtype=float).reshape(-1, 2)
    if len(pts) < 3 or np.ptp(pts[:, 0]) == 0:
        return {"r": float("nan"), "p": float("nan"), "n": len(pts), "slope": float("nan"),
                "intercept": float("nan"), "ci95": [float("nan"), float("nan")]}
    from scipy.stats import pearsonr
    ys = np.log(pts[:, 1]) if log_y else pts[:, 1]
    res = pearsonr(pts[:, 0], ys)
    slope, intercept = np.polyfit(pts[:, 0], ys, 1)
    return {"r": float(res.statistic), "p": float(res.pvalue), "n": len(pts), "slope": float(slope),
            "intercept": float(intercept), "ci95": fisher_ci(float(res.statistic), len(pts))}


def figure_scatter(rows: list[dict], x: str, y: str, log_y: bool, xlabel: str, ylabel: str):
    """``y`` (or ln y) against ``x`` over all cycles and arms, the fitted line and Pearson r."""
    stats = correlation(rows, x, y, log_y)
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    multi = len({r["run"] for r in rows}) > 1
    groups: dict[str, list] = {}
    for r in distinct(rows):
        if r.get(x) is not None and r.get(y) is not None and r[y] > 0:
            groups.setdefault(f"{r['paradigm']}/{label(r, multi)}", []).append((r[x], np.log(r[y]) if log_y else r[y]))
    for name, pts in groups.items():
        pts = np.array(pts)
        ax.scatter(pts[:, 0], pts[:, 1], s=18, label=name)
    if np.isfinite(stats["slope"]):
        xs = np.linspace(*ax.get_xlim(), 50)
        ax.plot(xs, stats["slope"] * xs + stats["intercept"], "k--", lw=1)
    ax.set_title(f"Pearson r = {stats['r']:.3f} [{stats['ci95'][0]:.2f}, {stats['ci95'][1]:.2f}] "
                 f"(n = {stats['n']} distinct D_n)", fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig, stats


def figure_gs_vs_entropy(rows: list[dict]):
    """The paper's central plot (docs/method.md §5): ln(GS) against the KL entropy of D_n."""
    return figure_scatter(rows, "entropy_train", "generalization_score", True,
                          BY_NAME["entropy_train"].label, "ln GS")


def figure_gs_vs_trace(rows: list[dict]):
    """ln GS against the trace of the covariance of D_n, on the same footing as the entropy (§5)."""
    return figure_scatter(rows, "trace_cov_train", "generalization_score", True,
                          BY_NAME["trace_cov_train"].label, "ln GS")


def seed_root(run: Path, rows: list[dict]) -> Path:
    """The folder of the first seed's cycles: RUN itself, or RUN/seed_<s> for a replicated study."""
    nested = RunLayout(run).seed(seeds(rows)[0]).root
    return nested if nested.is_dir() else Path(run)


def figure_grids(run: Path, rows: list[dict], paradigm: str, picture: str = "samples.png"):
    """Arms x cycles of a per-cycle picture (the sample grids) of one paradigm, first seed."""
    from matplotlib.image import imread
    first = seeds(rows)[0]
    sub = [r for r in rows if r["paradigm"] == paradigm and r.get("seed", 0) == first]
    arm_names = list(dict.fromkeys(r["arm"] for r in sub))
    cycles = sorted({r["cycle"] for r in sub})
    fig, axes = plt.subplots(len(arm_names), len(cycles), figsize=(2.0 * len(cycles), 2.1 * len(arm_names)),
                             squeeze=False)
    for i, arm in enumerate(arm_names):
        for j, c in enumerate(cycles):
            ax = axes[i, j]
            ax.axis("off")
            path = RunLayout(run).cycle(paradigm, arm, c).dir / picture
            if path.exists():
                ax.imshow(imread(path), cmap="gray", interpolation="nearest")
            if i == 0:
                ax.set_title(f"cycle {c}", fontsize=8)
            if j == 0:
                ax.text(-0.05, 0.5, arm, transform=ax.transAxes, ha="right", va="center", fontsize=8, rotation=90)
    fig.suptitle(f"{paradigm}: {picture} (seed {first})", fontsize=9)
    fig.tight_layout()
    return fig


def figure_phase(rows: list[dict], key: str, title: str):
    """Heat map of ``key`` over N x training steps, a panel per cycle; the 1/2 line for rates."""
    from .phase import grid
    cycles = sorted({r["cycle"] for r in rows})
    presets = list(dict.fromkeys(r["preset"] for r in rows))
    fig, axes = plt.subplots(len(presets), len(cycles), figsize=(3.6 * len(cycles) + 0.8, 3.0 * len(presets)),
                             squeeze=False, layout="constrained")
    rate = key in RATES
    for i, preset in enumerate(presets):
        for j, c in enumerate(cycles):
            ax = axes[i, j]
            ns, steps, v = grid(rows, key, c, preset)
            im = ax.imshow(v, origin="lower", cmap="viridis", aspect="auto",
                           vmin=0 if rate else None, vmax=1 if rate else None)
            for (a, b), x in np.ndenumerate(v):
                if np.isfinite(x):
                    ax.text(b, a, f"{x:.2f}" if rate else f"{x:.0f}", ha="center", va="center", fontsize=8,
                            color="white" if (x < 0.6 if rate else x < np.nanmean(v)) else "black")
            if rate and v.shape[0] > 1 and v.shape[1] > 1 and np.isfinite(v).all():
                ax.contour(v, levels=[0.5], colors="red", linewidths=1.5)
            ax.set_xticks(range(len(steps)), [str(s) for s in steps])
            ax.set_yticks(range(len(ns)), [str(n) for n in ns])
            ax.set_xlabel("training steps")
            if j == 0:
                ax.set_ylabel(f"N ({preset})")
            ax.set_title(f"cycle {c}", fontsize=9)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.9)
    fig.suptitle(title + (" (red: 1/2 boundary)" if rate else ""), fontsize=10)
    return fig


def figure_phase_samples(root: Path, rows: list[dict]):
    """Cycle-1 sample grids of every cell, N down and steps across."""
    from matplotlib.image import imread
    cells = {(r["preset"], r["n"], r["steps"]): r["cell"] for r in rows if r["cycle"] == 1}
    ns, steps = sorted({k[1] for k in cells}), sorted({k[2] for k in cells})
    presets = list(dict.fromkeys(k[0] for k in cells))
    fig, axes = plt.subplots(len(ns) * len(presets), len(steps),
                             figsize=(2.2 * len(steps), 2.3 * len(ns) * len(presets)),
                             squeeze=False)
    for p_i, p in enumerate(presets):
        for i, n in enumerate(ns):
            for j, s in enumerate(steps):
                ax = axes[p_i * len(ns) + i, j]
                ax.axis("off")
                path = RunLayout(root).cell(cells.get((p, n, s), "?")).shared.samples_grid
                if path.exists():
                    ax.imshow(imread(path), cmap="gray", interpolation="nearest")
                ax.set_title(f"N={n}, {s} steps" + (f", {p}" if len(presets) > 1 else ""), fontsize=8)
    fig.tight_layout()
    return fig


def figure_nn_pairs(run: Path, rows: list[dict], paradigm: str, pairs: int = 4):
    """Per arm, at the first and the last cycle: the first ``pairs`` samples (an unselected draw), each
    above its nearest training image, with the copy rule's verdict and the NN1/NN2 ratio under it."""
    from .plots import _show
    first = seeds(rows)[0]
    sub = [r for r in rows if r["paradigm"] == paradigm and r.get("seed", 0) == first]
    arm_names = list(dict.fromkeys(r["arm"] for r in sub))
    cycles = sorted({1, max(r["cycle"] for r in sub)})
    fig, axes = plt.subplots(2 * len(arm_names), pairs * len(cycles),
                             figsize=(0.95 * pairs * len(cycles) + 0.8, 2.1 * len(arm_names)), squeeze=False)
    for i, arm in enumerate(arm_names):
        for j, c in enumerate(cycles):
            f = RunLayout(run).cycle(paradigm, arm, c)
            with np.load(f.nn) as z:
                ratios, nn = z["ratios"], z["nn_index"][:, 0]
                copy = z["copy"] if "copy" in z else ratios < 1 / 3
            with np.load(f.samples) as g, np.load(f.train) as t:
                gen, train = g["images"], t["images"]
            for k, s in enumerate(range(min(pairs, len(ratios)))):
                top, bottom = axes[2 * i, j * pairs + k], axes[2 * i + 1, j * pairs + k]
                _show(top, gen[s])
                _show(bottom, train[nn[s]])
                bottom.set_xlabel(f"{'copy' if copy[s] else 'new'} {ratios[s]:.2f}", fontsize=8,
                                  color="red" if copy[s] else "black")
                if k == 0:
                    top.set_ylabel(f"{arm}\ngenerated", fontsize=7)
                    bottom.set_ylabel("nearest\ntraining", fontsize=7)
                if i == 0 and k == 0:
                    top.set_title(f"cycle {c}", fontsize=9, loc="left")
    fig.suptitle(f"{paradigm} (seed {first}): the first {pairs} samples, over their nearest training image;\n"
                 f"under each pair the copy rule's verdict (red: a copy) and NN1/NN2", fontsize=9)
    fig.tight_layout()
    return fig


def figure_images(images: np.ndarray, title: str, ncol: int = 8):
    """A grid of uint8 images (N, C, H, W), drawn with matplotlib (no torch needed)."""
    from .plots import _show
    rows = -(-len(images) // ncol)
    fig, axes = plt.subplots(rows, ncol, figsize=(0.55 * ncol, 0.55 * rows + 0.3), squeeze=False)
    for ax, img in zip(axes.ravel(), images):
        _show(ax, img)
    for ax in axes.ravel()[len(images):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=8)
    return fig
