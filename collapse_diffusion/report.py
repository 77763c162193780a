"""report.md of a finished run: findings generated from the metrics, a table per paradigm and arm,
metric plots, the ln(GS)-entropy correlation (docs/method.md §5), sample grids and nearest-neighbour
pictures; phase.md of a phase diagram. Reads files only."""
from __future__ import annotations

import json
from pathlib import Path

from .config import load_config
from .errors import UserError
from .findings import findings_lines, summary_table
from .io import atomic_write_text
from .plots import savefig
from .results import (METRICS, figure_grids, figure_gs_vs_entropy, figure_gs_vs_trace, figure_images, figure_metric,
                      figure_nn_pairs, load_rows, paradigms, seed_root, seeds)


def _ci(v) -> str:
    return f"[{v[0]:.3f}, {v[1]:.3f}]" if v else ""


def _table(rows: list[dict]) -> list[str]:
    head = ("| cycle | seed | real share | mem. lineage-aware [95% CI] | mem. 1/3 rule [95% CI] | relative < 1/3 | "
            "dup. share | mem. vs R | GS | H(D_n) | H(G_n) | tr cov D_n | mean 1-NN D_n | FD [95% CI] |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    opt = lambda r, k, f="{:.3f}": f.format(r[k]) if r.get(k) is not None else "n/a"  # noqa: E731
    for r in rows:
        out.append(f"| {r['cycle']} | {r.get('seed', 0)} | {r['real_share']:.3f} | "
                   f"{opt(r, 'memorization_rate_lineage')} {_ci(r.get('memorization_lineage_ci95'))} | "
                   f"{r['memorization_rate']:.3f} {_ci(r['memorization_ci95'])} | {opt(r, 'relative_copy_share')} | "
                   f"{opt(r, 'duplicate_share')} | {opt(r, 'memorization_rate_real')} | "
                   f"{r['generalization_score']:.1f} | {r['entropy_train']:.1f} | {r['entropy_generated']:.1f} | "
                   f"{r['trace_cov_train']:.3g} | {r['mean_nn_train']:.1f} | {_fd(r)} |")
    return out


def _timings(root: Path) -> dict[str, float]:
    total: dict[str, float] = {}
    for path in root.rglob("timings.jsonl"):
        for line in path.read_text().splitlines():
            try:
                t = json.loads(line)
            except json.JSONDecodeError:  # a line torn by a kill
                continue
            total[t["stage"]] = total.get(t["stage"], 0.0) + t["seconds"]
    return total


def _header(root: Path, cfg, rows: list[dict]) -> list[str]:
    first = rows[0]
    ss = seeds(rows)
    acc = first.get("classifier_accuracy")
    fd_label = first.get("fd_label", "not computed")
    return [f"# Model-collapse study: {root.name}", "",
            f"Data: {cfg.data.source}, N = {cfg.data.n}; model preset {cfg.model.preset}; {cfg.train.steps} "
            f"training steps of batch {cfg.train.batch_size} per cycle; sampler {cfg.sample.sampler} "
            f"({cfg.sample.steps or cfg.diffusion.num_train_timesteps} steps); r = {cfg.study.oversample}; "
            f"{cfg.study.cycles} cycles; seed{'s' if len(ss) > 1 else ''} {', '.join(map(str, ss))}.", "",
            f"Every cycle: {first['n_generated']} generated images against D_n ({first['n_train']} images) and "
            f"against R (n = {first['n_real']} real), {first['entropy_space']}. Memorization: NN1/NN2 < "
            f"{cfg.eval.memorization_threshold:.3f}, plain and lineage-aware (docs/method.md §7); rates and shares "
            f"with Clopper-Pearson 95% intervals. KL entropy with k = {cfg.eval.entropy_k}, H(D_n) and H(G_n) at "
            f"n = {first['n_train']}.",
            f"FD: {fd_label} on {first.get('fd_n_generated', 0)} generated and {first.get('fd_n_real', 0)} real "
            f"images, 95% bootstrap interval over {cfg.eval.bootstrap} resamples of the generated images"
            + (f"; classifier held-out accuracy {acc:.3f}" if acc is not None else "")
            + (". This is not Inception FID." if fd_label != "FID" else "."), ""]


def write_report(root: str | Path) -> Path:
    root = Path(root)
    if not (root / "metrics.jsonl").exists():
        raise UserError(f"'{root}' has no metrics.jsonl; finish the study first with `collapse-diffusion run`")
    cfg = load_config(root / "config.yaml")
    rows = load_rows([root])
    plots = root / "plots"
    lines = (_header(root, cfg, rows) + ["## Findings", ""] + findings_lines(rows) + [""]
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
    lines += ["## Metrics against cycle", "",
              "Lines: " + ("the mean over seeds; bands: the range across seeds." if len(seeds(rows)) > 1
                           else "one seed; bands: 95% intervals where the metric has one."), ""]
    for key, ci, ylabel in METRICS:
        if any(r.get(key) is not None for r in rows):
            savefig(figure_metric(rows, key, ci, ylabel), plots / f"{key}.png")
            lines.append(f"![{key}](plots/{key}.png)")
    lines.append("")
    real = seed_root(root, rows) / "shared" / "cycle_01" / "train.npz"
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
                         key=lambda r: (r["cycle"], r.get("seed", 0)))
            lines += [f"### {arm} (selector {sub[0]['selector']}, {sub[0]['space']} space)", ""] + _table(sub) + [""]
        savefig(figure_grids(seed_root(root, rows), rows, p, "samples.png"), plots / f"{p}_samples.png")
        savefig(figure_nn_pairs(seed_root(root, rows), rows, p), plots / f"{p}_nn.png")
        lines += [f"Samples (64 per cycle, first seed):", "", f"![{p} samples](plots/{p}_samples.png)", "",
                  "Nearest training images:", "", f"![{p} nearest neighbours](plots/{p}_nn.png)", ""]
    timings = _timings(root)
    if timings:
        lines += ["## Time per stage (all arms and cycles, this machine)", "",
                  " | ".join(f"{k}: {v:.0f} s" for k, v in sorted(timings.items())), ""]
    path = root / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def write_phase_report(root: Path, rows: list[dict]) -> Path:
    """RUN/phase.md: heat maps (a panel per cycle) with the 1/2 boundary, the table, sample grids."""
    from .phase import HEAT
    from .results import figure_phase, figure_phase_samples
    plots = root / "plots"
    cycles = max(r["cycle"] for r in rows)
    first = rows[0]
    lines = [f"# Phase diagram: {root.name}", "",
             f"Each cell: N real images ({first['preset']} model unless named), a fresh model trained for the "
             f"given optimizer steps, {cycles} replace/vanilla cycle(s). Metrics on {first['n_generated']} generated "
             f"images per cell and cycle against the cell's D_n, pixel space; rates with Clopper-Pearson 95% "
             f"intervals; FD: {first.get('fd_label', 'not computed')} against {first.get('fd_n_real', 0)} real images.",
             ""]
    for key, title in HEAT:
        savefig(figure_phase(rows, key, title), plots / f"phase_{key}.png")
        lines += [f"![{title}](plots/phase_{key}.png)", ""]
    head = ("| N | steps | preset | cycle | final loss | mem. rate (1/3 rule) | lineage-aware | relative < 1/3 "
            "| GS | H(D_n) | FD |")
    lines += ["## Cells", "", head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(rows, key=lambda r: (r["preset"], r["n"], r["steps"], r["cycle"])):
        loss = f"{r['final_loss']:.4f}" if r.get("final_loss") is not None else "n/a"
        lines.append(f"| {r['n']} | {r['steps']} | {r['preset']} | {r['cycle']} | {loss} | "
                     f"{_rate(r, 'memorization_rate', 'memorization_ci95')} | "
                     f"{_rate(r, 'memorization_rate_lineage', 'memorization_lineage_ci95')} | "
                     f"{_rate(r, 'relative_copy_share', 'relative_copy_ci95')} | {r['generalization_score']:.1f} | "
                     f"{r['entropy_train']:.1f} | {_fd(r)} |")
    savefig(figure_phase_samples(root, rows), plots / "phase_samples.png")
    lines += ["", "## Samples per cell (cycle 1)", "", "![samples](plots/phase_samples.png)", ""]
    path = root / "phase.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _rate(r: dict, key: str, ci: str) -> str:
    if r.get(key) is None:
        return "n/a"
    return f"{r[key]:.3f} {_ci(r.get(ci))}"


def _fd(r: dict) -> str:
    if r.get("fd") is None:
        return "n/a"
    return f"{r['fd']:.2f} {_ci(r.get('fd_ci95'))}"
