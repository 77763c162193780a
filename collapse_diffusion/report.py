"""report.md of a finished run: a table per paradigm and arm, metric plots, the ln(GS)-entropy
correlation (METHOD.md §5), sample grids and nearest-neighbour pictures. Reads files only."""
from __future__ import annotations

import json
from pathlib import Path

from .config import load_config
from .cycle import cycle_path
from .errors import UserError
from .io import atomic_write_text
from .plots import savefig
from .results import (METRICS, figure_grids, figure_gs_vs_entropy, figure_gs_vs_trace, figure_metric, load_rows,
                      paradigms)


def _ci(v) -> str:
    return f"[{v[0]:.3f}, {v[1]:.3f}]" if v else ""


def _table(rows: list[dict]) -> list[str]:
    head = ("| cycle | n train | real share | mem. rate vs D_n [95% CI] | mem. rate vs R [95% CI] | GS | "
            "H(D_n) | H(G_n) | tr cov D_n | mean 1-NN D_n | FD | n gen |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        fd = f"{r['fd']:.2f}" if r.get("fd") is not None else "n/a"
        out.append(f"| {r['cycle']} | {r['n_train']} | {r['real_share']:.3f} | {r['memorization_rate']:.3f} "
                   f"{_ci(r['memorization_ci95'])} | {r['memorization_rate_real']:.3f} {_ci(r['memorization_real_ci95'])} "
                   f"| {r['generalization_score']:.1f} | {r['entropy_train']:.1f} | {r['entropy_generated']:.1f} | "
                   f"{r['trace_cov_train']:.3g} | {r['mean_nn_train']:.1f} | {fd} | {r['n_generated']} |")
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


def write_report(root: str | Path) -> Path:
    root = Path(root)
    if not (root / "metrics.jsonl").exists():
        raise UserError(f"'{root}' has no metrics.jsonl; finish the study first with `collapse-diffusion run`")
    cfg = load_config(root / "config.yaml")
    rows = load_rows([root])
    plots = root / "plots"
    first = rows[0]
    lines = [f"# Model-collapse study: {root.name}", "",
             f"Data: {cfg.data.source}, N = {cfg.data.n}; model preset {cfg.model.preset}; {cfg.train.steps} "
             f"training steps of batch {cfg.train.batch_size} per cycle; sampler {cfg.sample.sampler} "
             f"({cfg.sample.steps or cfg.diffusion.num_train_timesteps} steps); r = {cfg.study.oversample}; "
             f"{cfg.study.cycles} cycles; seed {cfg.seed}.", "",
             f"Nearest-neighbour metrics and entropies: {first['entropy_space']}, on the first "
             f"{first['n_generated']} samples of each cycle against D_n and against R (n = {first['n_real']} real). "
             f"Memorization: NN1/NN2 < {cfg.eval.memorization_threshold:.3f}, 95% bootstrap interval over "
             f"{cfg.eval.bootstrap} resamples. KL entropy with k = {cfg.eval.entropy_k}.",
             f"FD: {first.get('fd_label', 'not computed')} with {first.get('fd_n_real', 0)} real and "
             f"{first.get('fd_n_generated', 0)} generated images."
             + (" This is not Inception FID." if first.get("fd_label", "FID") != "FID" else ""), ""]
    fig, stats = figure_gs_vs_entropy(rows)
    savefig(fig, plots / "gs_vs_entropy.png")
    fig, tstats = figure_gs_vs_trace(rows)
    savefig(fig, plots / "gs_vs_trace.png")
    lines += ["## ln(GS) against the entropy of D_n", "",
              f"Pearson r = {stats['r']:.3f} (p = {stats['p']:.2g}) over {stats['n']} arm-cycles; fitted "
              f"ln GS = {stats['slope']:.4f} H + {stats['intercept']:.2f}. For comparison, GS against the trace "
              f"of the covariance of D_n: r = {tstats['r']:.3f}.", "",
              "![ln GS vs entropy](plots/gs_vs_entropy.png) ![GS vs trace](plots/gs_vs_trace.png)", ""]
    lines += ["## Metrics against cycle", ""]
    for key, ci, ylabel in METRICS:
        if any(r.get(key) is not None for r in rows):
            savefig(figure_metric(rows, key, ci, ylabel), plots / f"{key}.png")
            lines.append(f"![{key}](plots/{key}.png)")
    lines.append("")
    for p in paradigms(rows):
        lines += [f"## {p}", ""]
        for arm in dict.fromkeys(r["arm"] for r in rows if r["paradigm"] == p):
            sub = sorted((r for r in rows if r["paradigm"] == p and r["arm"] == arm), key=lambda r: r["cycle"])
            lines += [f"### {arm} (selector {sub[0]['selector']}, {sub[0]['space']} space)", ""] + _table(sub) + [""]
        for pic in ("samples.png", "nn.png"):
            name = f"{p}_{pic}"
            savefig(figure_grids(root, rows, p, pic), plots / name)
            lines += [f"![{p} {pic}](plots/{name})", ""]
    timings = _timings(root)
    if timings:
        lines += ["## Time per stage (all arms and cycles, this machine)", "",
                  " | ".join(f"{k}: {v:.0f} s" for k, v in sorted(timings.items())), ""]
    path = root / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
