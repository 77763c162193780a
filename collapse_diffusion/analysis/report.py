"""report.md of a finished run: findings generated from the metrics, a table per paradigm and arm,
metric plots, the ln(GS)-entropy correlation (docs/method.md §5), sample grids and nearest-neighbour
pictures; phase.md of a phase diagram. Reads files only."""
from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import UserError
from ..core.io import atomic_write_text
from ..core.layout import RunLayout
from ..core.records import format_value
from ..loop.experiment import load_config
from ..loop.rows import BY_NAME, RANKING, TABLE, read_rows
from .findings import findings_lines, summary_table
from .plots import savefig
from .results import (
    METRICS,
    figure_grids,
    figure_gs_vs_entropy,
    figure_gs_vs_trace,
    figure_images,
    figure_metric,
    figure_nn_pairs,
    load_rows,
    paradigms,
    seed_root,
    seeds,
)


def _table(rows: list[dict]) -> list[str]:
    """The per-arm table: cycle, seed, then every column the records mark for it, with its interval."""
    head = "| cycle | seed | " + " | ".join(c.short + (" [95% CI]" if c.ci else "") for c in TABLE) + " |"
    out = [head, "|" + "---|" * (len(TABLE) + 2)]
    for r in rows:
        out.append(f"| {r['cycle']} | {r['seed']} | "
                   + " | ".join(format_value(r.get(c.name), c.fmt, r.get(c.ci) if c.ci else None) for c in TABLE)
                   + " |")
    return out


def ranking_table(rows: list[dict], paradigm: str) -> list[str]:
    """Each arm of ``paradigm`` at its last cycle, sorted by the first RANKING column (the
    lineage-aware memorization rate): one seed shows each value with its interval, several seeds
    the mean with the [min, max] across seeds."""
    sub = [r for r in rows if r["paradigm"] == paradigm]
    last = max(r["cycle"] for r in sub)
    arms = list(dict.fromkeys(r["arm"] for r in sub))
    per = {a: [r for r in sub if r["arm"] == a and r["cycle"] == last] for a in arms}
    key, multi = RANKING[0].name, len({r["seed"] for r in sub}) > 1

    def cell(rs: list[dict], c) -> str:
        vals = [r[c.name] for r in rs if r.get(c.name) is not None]
        if not vals:
            return "n/a"
        if multi:
            return format_value(sum(vals) / len(vals), c.fmt, [min(vals), max(vals)])
        return format_value(vals[0], c.fmt, rs[0].get(c.ci) if c.ci else None)

    order = sorted(arms, key=lambda a: sum(r[key] for r in per[a]) / len(per[a]) if per[a] and per[a][0].get(key)
                   is not None else float("inf"))
    head = f"| arm (cycle {last}) | " + " | ".join(c.short for c in RANKING) + " |"
    out = [head, "|" + "---|" * (len(RANKING) + 1)]
    out += [f"| {a} | " + " | ".join(cell(per[a], c) for c in RANKING) + " |" for a in order]
    return out


def _legend(rows: list[dict]) -> list[str]:
    """What each table column is, and on how many images (from the first row; counts are equal in
    every row of a study)."""
    first = rows[0]
    out = ["| column | meaning | sample count | interval |", "|---|---|---|---|"]
    for c in TABLE:
        n = ", ".join(f"{k.replace('_', ' ')} = {first[k]}" for k in c.n if first.get(k) is not None) or "-"
        out.append(f"| {c.short} | {first.get(c.name_col) or c.label if c.name_col else c.label} | {n} | "
                   f"{'95% (Clopper-Pearson for rates, bootstrap for FD)' if c.ci else '-'} |")
    return out


def stage_times(layout: RunLayout) -> dict[str, list[float]]:
    """Every recorded wall time of each stage, over all cycles, arms and seeds of a run."""
    per: dict[str, list[float]] = {}
    for path in layout.timing_files():
        for line in path.read_text().splitlines():
            try:
                t = json.loads(line)
            except json.JSONDecodeError:  # a line torn by a kill
                continue
            per.setdefault(t["stage"], []).append(t["seconds"])
    return per


def _header(root: Path, cfg, rows: list[dict]) -> list[str]:
    ss = seeds(rows)
    return [f"# Model-collapse study: {root.name}", "",
            f"Data: {cfg.data.source}, N = {cfg.data.n}; model preset {cfg.model.preset}; {cfg.train.steps} "
            f"training steps of batch {cfg.train.batch_size} per cycle; sampler {cfg.sample.sampler} "
            f"({cfg.sample.steps or cfg.diffusion.num_train_timesteps} steps); r = {cfg.study.oversample}; "
            f"{cfg.study.cycles} cycles; seed{'s' if len(ss) > 1 else ''} {', '.join(map(str, ss))}.", "",
            f"Nearest-neighbour metrics and entropies in {rows[0].get('entropy_space') or 'pixel space'}; "
            f"copying: the copy rule (a sample is a copy of its nearest training image when it is within a third "
            f"of the distance to the nearest distinct training image, or its offset carries none of the set's "
            f"structure; docs/method.md §7), the same for every arm, and the model probe's memorizer share (the "
            f"share of noised D_n images the model denoises as D_n's exact memorizer does); secondary: "
            f"NN1/NN2 < {cfg.eval.memorization_threshold:.3f}, plain and lineage-aware, whose biases the copy suite "
            f"measures (docs/results/copy_suite.md); contraction: D_n's spacing and its geometric duplicate "
            f"share, never counted as copying. Measured limit: once D_n holds near-twins carrying a model's "
            f"smooth error, geometry undercounts copies of them (docs/method.md §7); the probe does not; KL "
            f"entropy with k = {cfg.eval.entropy_k}, H(D_n) and H(G_n) at equal n; FD bootstrap over "
            f"{cfg.eval.bootstrap} resamples of the generated images. A Fréchet distance is FID only with the "
            f"Inception TF weights.", ""] + _legend(rows) + [""]


def write_report(root: str | Path) -> Path:
    layout = RunLayout(root)
    root = layout.root
    if layout.phase_rows.exists() and not layout.metrics.exists():
        raise UserError(f"'{root}' is a phase diagram: its report is phase.md, which `collapse-diffusion phase` "
                        f"writes (rerun it with the same arguments to redraw)")
    if not layout.config.exists() or not layout.metrics.exists():
        raise UserError(f"'{root}' is not a finished run of this tool (it needs config.yaml and metrics.jsonl); "
                        f"finish the study first with `collapse-diffusion run`")
    cfg = load_config(layout.config, saved=True)
    rows = load_rows([root])
    plots = layout.plots
    lines = (_header(root, cfg, rows) + ["## Findings", ""] + findings_lines(rows, cfg.study.baseline) + [""]
             + ["## Cycle 1 against the last cycle", ""] + summary_table(rows) + [""])
    fig, stats = figure_gs_vs_entropy(rows)
    savefig(fig, plots / "gs_vs_entropy.png")
    fig, tstats = figure_gs_vs_trace(rows)
    savefig(fig, plots / "gs_vs_trace.png")
    lines += ["## ln(GS) against the entropy of D_n", "",
              f"Pearson r = {stats['r']:.3f} [95% CI {stats['ci95'][0]:.3f}, {stats['ci95'][1]:.3f}] (p = "
              f"{stats['p']:.2g}) over {stats['n']} distinct training sets (cycle 1 counted once per seed); fitted "
              f"ln GS = {stats['slope']:.4f} H + {stats['intercept']:.2f}. ln GS against the trace of the "
              f"covariance of D_n: r = {tstats['r']:.3f} [95% CI {tstats['ci95'][0]:.3f}, {tstats['ci95'][1]:.3f}].",
              "", "![ln GS vs entropy](plots/gs_vs_entropy.png) ![ln GS vs trace](plots/gs_vs_trace.png)", ""]
    spread = ("mean over seeds [min, max]" if len(seeds(rows)) > 1 else
              "one seed, 95% intervals (Clopper-Pearson for rates, bootstrap for FD)")
    lines += ["## Ranking of arms at the last cycle", "",
              f"Sorted by the {RANKING[0].label}; {spread}. Every arm's rate against cycle: "
              f"plots/{RANKING[0].name}.png below.", ""]
    for p in paradigms(rows):
        lines += [f"**{p}**", ""] + ranking_table(rows, p) + [""]
    lines += ["## Metrics against cycle", "",
              "Lines: " + ("the mean over seeds; bands: the range across seeds." if len(seeds(rows)) > 1
                           else "one seed; bands: 95% intervals where the metric has one."), ""]
    for key, ci, ylabel in METRICS:
        if any(r.get(key) is not None for r in rows):
            savefig(figure_metric(rows, key, ci, ylabel), plots / f"{key}.png")
            lines.append(f"![{key}](plots/{key}.png)")
    lines.append("")
    real = RunLayout(seed_root(root, rows)).shared.train
    if real.exists():
        import numpy as np
        with np.load(real) as z:
            savefig(figure_images(z["images"][:64], f"the real training set D_1 ({min(64, len(z['images']))} images)"),
                    plots / "real.png")
        lines += ["Real training images D_1:", "", "![real D_1](plots/real.png)", ""]
    for p in paradigms(rows):
        lines += [f"## {p}", ""]
        for arm in dict.fromkeys(r["arm"] for r in rows if r["paradigm"] == p):
            sub = sorted((r for r in rows if r["paradigm"] == p and r["arm"] == arm),
                         key=lambda r: (r["cycle"], r["seed"]))
            lines += [f"### {arm} (selector {sub[0]['selector']}, {sub[0]['space']} space)", ""] + _table(sub) + [""]
        savefig(figure_grids(seed_root(root, rows), rows, p, "samples.png"), plots / f"{p}_samples.png")
        savefig(figure_nn_pairs(seed_root(root, rows), rows, p), plots / f"{p}_nn.png")
        lines += ["Samples (64 per cycle, first seed):", "", f"![{p} samples](plots/{p}_samples.png)", "",
                  "Nearest training images:", "", f"![{p} nearest neighbours](plots/{p}_nn.png)", ""]
    timings = stage_times(layout)
    if timings:
        lines += ["## Time per stage (all arms and cycles, this machine)", "",
                  " | ".join(f"{k}: {sum(v):.0f} s" for k, v in sorted(timings.items())), ""]
    atomic_write_text(layout.report, "\n".join(lines) + "\n")
    return layout.report


def write_phase_report(root: str | Path) -> Path:
    """RUN/phase.md from RUN/phase.jsonl: heat maps (a panel per cycle) with the 1/2 boundary, the
    table, sample grids."""
    from .phase import HEAT
    from .results import figure_phase, figure_phase_samples
    layout = RunLayout(root)
    if not layout.phase_rows.exists():
        raise UserError(f"'{root}' has no phase.jsonl; run the grid first with `collapse-diffusion phase`")
    rows = read_rows(layout.phase_rows)
    cycles = max(r["cycle"] for r in rows)
    lines = [f"# Phase diagram: {layout.root.name}", "",
             f"Each cell: N real images ({rows[0]['preset']} model unless named), a fresh model trained for the "
             f"given optimizer steps, {cycles} replace/vanilla cycle(s), the cell's metrics against its own D_n.",
             ""] + _legend(rows) + [""]
    for key in HEAT:
        savefig(figure_phase(rows, key, BY_NAME[key].label), layout.plots / f"phase_{key}.png")
        lines += [f"![{BY_NAME[key].label}](plots/phase_{key}.png)", ""]
    head = "| N | steps | preset | final loss | " + _table(rows)[0][2:]
    lines += ["## Cells", "", head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(rows, key=lambda r: (r["preset"], r["n"], r["steps"], r["cycle"])):
        lines.append(f"| {r['n']} | {r['steps']} | {r['preset']} | {format_value(r.get('final_loss'), '.4f')} | "
                     + _table([r])[2][2:])
    savefig(figure_phase_samples(layout.root, rows), layout.plots / "phase_samples.png")
    lines += ["", "## Samples per cell (cycle 1)", "", "![samples](plots/phase_samples.png)", ""]
    atomic_write_text(layout.phase_report, "\n".join(lines) + "\n")
    return layout.phase_report
