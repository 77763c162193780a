"""Reading a finished run (metrics.jsonl and the cycle folders) and drawing its figures.

The report and the analysis notebook both call these; nothing here recomputes a metric.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import pearsonr

from .plots import metric_lines

# (column, interval column, axis label)
METRICS = [
    ("generalization_score", None, "GS: mean NN distance to D_n (pixel L2)"),
    ("memorization_rate", "memorization_ci95", "memorization rate vs D_n"),
    ("memorization_rate_real", "memorization_real_ci95", "memorization rate vs real R"),
    ("entropy_train", None, "KL entropy of D_n (nats, pixels)"),
    ("entropy_generated", None, "KL entropy of G_n (nats, pixels)"),
    ("fd", None, "FD / FID vs real"),
    ("real_share", None, "real share of D_n"),
    ("trace_cov_train", None, "trace of covariance of D_n"),
]


def load_rows(run_dirs: Iterable[str | Path]) -> list[dict]:
    """All metrics.jsonl rows of the given runs, each tagged with its run directory."""
    rows = []
    for run in run_dirs:
        path = Path(run) / "metrics.jsonl"
        for line in path.read_text().splitlines():
            rows.append({**json.loads(line), "run": str(run)})
    return rows


def label(row: dict, multi_run: bool) -> str:
    return f"{Path(row['run']).name}:{row['arm']}" if multi_run else row["arm"]


def series(rows: list[dict], paradigm: str, key: str, ci: Optional[str] = None):
    """{arm label: cycles}, {arm label: values}, {arm label: intervals} of one paradigm."""
    multi = len({r["run"] for r in rows}) > 1
    cycles, values, intervals = {}, {}, {}
    for r in sorted((r for r in rows if r["paradigm"] == paradigm and r.get(key) is not None),
                    key=lambda r: (r["run"], r["arm"], r["cycle"])):
        name = label(r, multi)
        cycles.setdefault(name, []).append(r["cycle"])
        values.setdefault(name, []).append(r[key])
        if ci and r.get(ci):
            intervals.setdefault(name, []).append(r[ci])
    return cycles, values, intervals


def paradigms(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["paradigm"] for r in rows))


def figure_metric(rows: list[dict], key: str, ci: Optional[str], ylabel: str):
    ps = paradigms(rows)
    fig, axes = plt.subplots(1, len(ps), figsize=(4.6 * len(ps), 3.4), squeeze=False)
    for ax, p in zip(axes[0], ps):
        c, v, i = series(rows, p, key, ci)
        metric_lines(ax, c, v, i or None, ylabel)
        if key == "real_share":
            xs = np.arange(1, max(max(x) for x in c.values()) + 1)
            ax.plot(xs, 1.0 / xs, "k--", lw=1, label="1/n (equal share)")
        ax.set_title(p)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def correlation(rows: list[dict], x: str, y: str, log_y: bool = False) -> dict:
    """Pearson r of ``y`` (optionally ln y) against ``x`` over every row that has both."""
    pts = np.array([(r[x], r[y]) for r in rows if r.get(x) is not None and r.get(y) is not None and r[y] > 0])
    if len(pts) < 3:
        return {"r": float("nan"), "p": float("nan"), "n": len(pts), "slope": float("nan"), "intercept": float("nan")}
    ys = np.log(pts[:, 1]) if log_y else pts[:, 1]
    res = pearsonr(pts[:, 0], ys)
    slope, intercept = np.polyfit(pts[:, 0], ys, 1)
    return {"r": float(res.statistic), "p": float(res.pvalue), "n": len(pts), "slope": float(slope),
            "intercept": float(intercept)}


def figure_scatter(rows: list[dict], x: str, y: str, log_y: bool, xlabel: str, ylabel: str):
    """``y`` (or ln y) against ``x`` over all cycles and arms, the fitted line and Pearson r."""
    stats = correlation(rows, x, y, log_y)
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    multi = len({r["run"] for r in rows}) > 1
    groups: dict[str, list] = {}
    for r in rows:
        if r.get(x) is not None and r.get(y) is not None and r[y] > 0:
            groups.setdefault(f"{r['paradigm']}/{label(r, multi)}", []).append((r[x], np.log(r[y]) if log_y else r[y]))
    for name, pts in groups.items():
        pts = np.array(pts)
        ax.scatter(pts[:, 0], pts[:, 1], s=18, label=name)
    if np.isfinite(stats["slope"]):
        xs = np.linspace(*ax.get_xlim(), 50)
        ax.plot(xs, stats["slope"] * xs + stats["intercept"], "k--", lw=1)
    ax.set_title(f"Pearson r = {stats['r']:.3f} (n = {stats['n']} arm-cycles)", fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig, stats


def figure_gs_vs_entropy(rows: list[dict]):
    """The paper's central plot (METHOD.md §5): ln(GS) against the KL entropy of D_n."""
    return figure_scatter(rows, "entropy_train", "generalization_score", True,
                          "KL entropy of D_n (nats, pixel space)", "ln GS")


def figure_gs_vs_trace(rows: list[dict]):
    """GS against the trace of the covariance of D_n: the weaker predictor (METHOD.md §5)."""
    return figure_scatter(rows, "trace_cov_train", "generalization_score", False,
                          "trace of covariance of D_n", "GS")


def figure_grids(run: Path, rows: list[dict], paradigm: str, picture: str = "samples.png"):
    """Arms x cycles of a per-cycle picture (sample grids, or nn.png) of one paradigm."""
    from matplotlib.image import imread
    from .cycle import cycle_path
    sub = [r for r in rows if r["paradigm"] == paradigm and r["run"] == str(run)]
    arm_names = list(dict.fromkeys(r["arm"] for r in sub))
    cycles = sorted({r["cycle"] for r in sub})
    fig, axes = plt.subplots(len(arm_names), len(cycles), figsize=(2.0 * len(cycles), 2.1 * len(arm_names)),
                             squeeze=False)
    for i, arm in enumerate(arm_names):
        for j, c in enumerate(cycles):
            ax = axes[i, j]
            ax.axis("off")
            path = cycle_path(run, paradigm, arm, c) / picture
            if path.exists():
                ax.imshow(imread(path), cmap="gray", interpolation="nearest")
            if i == 0:
                ax.set_title(f"cycle {c}", fontsize=8)
            if j == 0:
                ax.text(-0.05, 0.5, arm, transform=ax.transAxes, ha="right", va="center", fontsize=8, rotation=90)
    fig.suptitle(f"{paradigm}: {picture}", fontsize=9)
    fig.tight_layout()
    return fig
