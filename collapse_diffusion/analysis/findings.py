"""The paper's checkable claims (docs/method.md §5), judged from a run's metrics rows.

Every claim the report judges comes from here: each with its figures, held or not, against the
baseline arm the config names (``study.baseline``). With several seeds a claim is judged on the
mean over seeds, and the range across seeds is
printed beside it. Memorization claims are judged on the lineage-aware 1/3 rule (docs/method.md §7);
the plain rule is reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .results import correlation, seeds


@dataclass(frozen=True)
class Finding:
    claim: str
    held: Optional[bool]     # None: the run lacks the arms or cycles to judge it
    evidence: str


def _values(rows: list[dict], paradigm: str, arm: str, cycle: int, key: str) -> list[float]:
    return [r[key] for r in rows if r["paradigm"] == paradigm and r["arm"] == arm and r["cycle"] == cycle
            and r.get(key) is not None]


def _mean(rows, paradigm, arm, cycle, key) -> Optional[float]:
    v = _values(rows, paradigm, arm, cycle, key)
    return float(np.mean(v)) if v else None


def _fmt(rows, paradigm, arm, cycle, key, digits: int = 3) -> str:
    v = _values(rows, paradigm, arm, cycle, key)
    if not v:
        return "n/a"
    text = f"{np.mean(v):.{digits}f}"
    return text + (f" (seeds {min(v):.{digits}f}..{max(v):.{digits}f})" if len(v) > 1 else "")


def findings(rows: list[dict], baseline: str) -> list[Finding]:
    """The claims of §5 that this run can judge, in the paper's order. ``baseline`` names the control
    arm (the config's ``study.baseline``); every other arm is judged against it as the paper judges
    greedy and tdf against vanilla. A paradigm without the baseline arm gets no comparisons."""
    out: list[Finding] = []
    last = max(r["cycle"] for r in rows)
    arms = list(dict.fromkeys((r["paradigm"], r["arm"]) for r in rows))
    for paradigm in dict.fromkeys(p for p, _ in arms):
        vanilla = baseline if (paradigm, baseline) in arms else None
        if vanilla is None or last < 2:
            continue
        if paradigm == "replace":
            out += _vanilla_claims(rows, vanilla, last)
        for p, a in arms:
            if p == paradigm and a != vanilla:
                out += _selector_claims(rows, paradigm, vanilla, a, last)
    out += _correlation_claims(rows)
    out += _real_share_claims(rows, arms, baseline, last)
    return out


def _vanilla_claims(rows, v: str, last: int) -> list[Finding]:
    f = lambda key, c, d=3: _fmt(rows, "replace", v, c, key, d)  # noqa: E731
    m = lambda key, c: _mean(rows, "replace", v, c, key)  # noqa: E731
    out = []
    for key, name in (("memorization_rate_lineage", "lineage-aware memorization rate"),
                      ("memorization_rate", "memorization rate (plain 1/3 rule)")):
        if m(key, 1) is not None and m(key, last) is not None:
            rise = m(key, last) - m(key, 1)
            out.append(Finding(f"replace/{v}: the {name} vs D_n rises by at least 0.15 from cycle 1 to {last}",
                               rise >= 0.15, f"{f(key, 1)} -> {f(key, last)} (change {rise:+.3f})"))
    gs1, gsl = m("generalization_score", 1), m("generalization_score", last)
    out.append(Finding(f"replace/{v}: GS falls by at least 30% from cycle 1 to {last}", gsl <= 0.7 * gs1,
                       f"{f('generalization_score', 1, 1)} -> {f('generalization_score', last, 1)} "
                       f"({(gsl / gs1 - 1) * 100:+.0f}%)"))
    h1, hl = m("entropy_train", 1), m("entropy_train", last)
    out.append(Finding(f"replace/{v}: the entropy of D_n falls", hl < h1,
                       f"H(D_1) {f('entropy_train', 1, 1)} -> H(D_{last}) {f('entropy_train', last, 1)} nats"))
    return out


def _selector_claims(rows, p: str, v: str, a: str, last: int) -> list[Finding]:
    m = lambda arm, key: _mean(rows, p, arm, last, key)  # noqa: E731
    f = lambda arm, key, d=3: _fmt(rows, p, arm, last, key, d)  # noqa: E731
    out = []
    gs1, gsl = _mean(rows, p, a, 1, "generalization_score"), m(a, "generalization_score")
    if gs1 is not None and gsl is not None:
        out.append(Finding(f"{p}/{a}: GS falls by less than 30% from cycle 1 to {last} (collapse held off, by "
                           f"the yardstick vanilla's collapse is judged on)", gsl > 0.7 * gs1,
                           f"{_fmt(rows, p, a, 1, 'generalization_score', 1)} -> {f(a, 'generalization_score', 1)} "
                           f"({(gsl / gs1 - 1) * 100:+.0f}%)"))
    key = "memorization_rate_lineage"
    if m(a, key) is not None and m(v, key) is not None:
        out.append(Finding(f"{p}/{a}: at cycle {last} the lineage-aware memorization rate is at least 0.10 "
                           f"below {v}'s", m(a, key) <= m(v, key) - 0.10, f"{f(a, key)} vs {f(v, key)}"))
    h, gs = "entropy_train", "generalization_score"
    out.append(Finding(f"{p}/{a}: at cycle {last} the entropy of D_n is higher than {v}'s", m(a, h) > m(v, h),
                       f"{f(a, h, 1)} vs {f(v, h, 1)} nats"))
    out.append(Finding(f"{p}/{a}: at cycle {last} GS is at least 1.2x {v}'s", m(a, gs) >= 1.2 * m(v, gs),
                       f"{f(a, gs, 1)} vs {f(v, gs, 1)} ({m(a, gs) / m(v, gs):.2f}x)"))
    if m(a, "fd") is not None and m(v, "fd") is not None:
        out.append(Finding(f"{p}/{a}: at cycle {last} FD is lower than {v}'s", m(a, "fd") < m(v, "fd"),
                           f"{f(a, 'fd', 2)} vs {f(v, 'fd', 2)}"))
    return out


def _correlation_claims(rows) -> list[Finding]:
    c = correlation(rows, "entropy_train", "generalization_score", log_y=True)
    t = correlation(rows, "trace_cov_train", "generalization_score", log_y=True)
    if not np.isfinite(c["r"]):
        return []
    ev = f"r = {c['r']:.3f} [95% CI {c['ci95'][0]:.3f}, {c['ci95'][1]:.3f}] over {c['n']} distinct D_n"
    out = [Finding("ln GS is close to linear in H(D_n): Pearson r >= 0.8", c["r"] >= 0.8, ev)]
    if np.isfinite(t["r"]):
        out.append(Finding("the entropy predicts ln GS better than the trace of the covariance does",
                           abs(c["r"]) > abs(t["r"]), f"{ev}; trace: r = {t['r']:.3f} [95% CI {t['ci95'][0]:.3f}, "
                                                     f"{t['ci95'][1]:.3f}]"))
    return out


def _real_share_claims(rows, arms: list, vanilla: str, last: int) -> list[Finding]:
    out = []
    if ("accumulate-subsample", vanilla) not in arms or last < 2:
        return out
    base = _mean(rows, "accumulate-subsample", vanilla, last, "real_share")
    for p, a in arms:
        if p == "accumulate-subsample" and a != vanilla:
            share = _mean(rows, p, a, last, "real_share")
            out.append(Finding(f"accumulate-subsample/{a}: at cycle {last} the real share of D_n exceeds "
                               f"{vanilla}'s (about 1/{last})", share > base,
                               f"{_fmt(rows, p, a, last, 'real_share')} vs "
                               f"{_fmt(rows, p, vanilla, last, 'real_share')}"))
    return out


def findings_lines(rows: list[dict], baseline: str) -> list[str]:
    """Markdown: one bullet per finding, with 'held' / 'not held' and its figures."""
    n = len(seeds(rows))
    lines = [f"Judged on {'the mean over ' + str(n) + ' seeds' if n > 1 else 'one seed'} against the baseline "
             f"arm '{baseline}' (docs/method.md §5, §8).", ""]
    for f in findings(rows, baseline):
        verdict = {True: "**held**", False: "**not held**", None: "not judged"}[f.held]
        lines.append(f"- {verdict}: {f.claim}. {f.evidence}.")
    return lines


SUMMARY = (("memorization_rate_lineage", "mem. lineage-aware", 3), ("memorization_rate", "mem. 1/3 rule", 3),
           ("generalization_score", "GS", 0), ("entropy_train", "H(D_n), nats", 1), ("fd", "FD", 1),
           ("real_share", "real share", 2))


def summary_table(rows: list[dict]) -> list[str]:
    """Markdown: per paradigm and arm, each headline metric at cycle 1 -> the last cycle (means over seeds)."""
    last = max(r["cycle"] for r in rows)
    keys = [k for k in SUMMARY if any(r.get(k[0]) is not None for r in rows)]
    head = f"| cycle 1 → {last} | " + " | ".join(k[1] for k in keys) + " |"
    out = [head, "|" + "---|" * (len(keys) + 1)]
    for p, a in dict.fromkeys((r["paradigm"], r["arm"]) for r in rows):
        cells = []
        for key, _, d in keys:
            v1, vl = _mean(rows, p, a, 1, key), _mean(rows, p, a, last, key)
            cells.append("n/a" if v1 is None or vl is None else f"{v1:.{d}f} → {vl:.{d}f}")
        out.append(f"| {p} / {a} | " + " | ".join(cells) + " |")
    return out
