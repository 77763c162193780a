"""Statistics behind every verdict (docs/method.md §8): trends as slopes over all cycles with an
interval over seeds, a claim "held" only on at least HELD_SEEDS seeds, and Williams' test when two
predictors of one quantity are compared on the same points. Reads rows only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

HELD_SEEDS = 3    # fewer seeds make a claim "suggested", never "held"
FLAT = 0.025      # |slope| of a rate per cycle below which a trend counts as flat (the copy suite's band)
ZERO = 1e-9       # |slope| per cycle at or below which a slope is exactly 0: its sign is rounding, not data


def slope(cycles: list[int], values: list[float]) -> float:
    """Least-squares slope of ``values`` per cycle. A slope within ZERO of 0 is returned as exactly
    0.0: values such as 0, .0625, 0, .0625, 0 have slope 0 in exact arithmetic, and the sign of the
    rounding error (-1.75e-20 on one machine, +1e-17 on another) must not decide any result. This is
    not FLAT, the band within which :func:`trend` reads a real slope as flat."""
    if len(values) < 2:
        return 0.0
    s = float(np.polyfit(np.asarray(cycles, float), np.asarray(values, float), 1)[0])
    return 0.0 if abs(s) <= ZERO else s


def sign(x: float) -> int:
    """-1, 0 or +1; 0 for |x| <= ZERO (see :func:`slope`)."""
    return 0 if abs(x) <= ZERO else int(np.sign(x))


def chain(rows: list[dict], paradigm: str, arm: str, key: str, seed) -> tuple[list[int], list[float]]:
    """(cycles, values) of one chain (paradigm, arm, seed), in cycle order; rows without the key skipped."""
    sub = sorted((r for r in rows if r["paradigm"] == paradigm and r["arm"] == arm and r.get("seed", 0) == seed
                  and r.get(key) is not None), key=lambda r: r["cycle"])
    return [r["cycle"] for r in sub], [float(r[key]) for r in sub]


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds with its 95% t interval (nan with one seed) and the per-seed values."""
    mean: float
    ci95: tuple[float, float]
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    def text(self, digits: int = 3, unit: str = "") -> str:
        body = f"{self.mean:+.{digits}f}{unit}"
        if self.n > 1:
            body += f" [95% CI {self.ci95[0]:+.{digits}f}, {self.ci95[1]:+.{digits}f}]"
        return body + f" over {self.n} seed{'s' if self.n != 1 else ''}"


def estimate(values: list[float]) -> Optional[Estimate]:
    """Mean and 95% t interval over seeds (each seed one independent chain)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if len(v) == 0:
        return None
    if len(v) == 1:
        return Estimate(float(v[0]), (float("nan"), float("nan")), (float(v[0]),))
    from scipy.stats import t
    half = float(t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return Estimate(float(v.mean()), (float(v.mean() - half), float(v.mean() + half)), tuple(map(float, v)))


def slopes(rows: list[dict], paradigm: str, arm: str, key: str, log: bool = False) -> Optional[Estimate]:
    """Per-seed slope of ``key`` (or ln key) over all cycles of a chain, as an estimate over seeds."""
    out = []
    for s in sorted({r.get("seed", 0) for r in rows}):
        c, v = chain(rows, paradigm, arm, key, s)
        if len(c) > 1 and (not log or min(v) > 0):
            out.append(slope(c, np.log(v) if log else v))
    return estimate(out)


def paired(rows: list[dict], paradigm: str, arm: str, base: str, key: str, cycle: Optional[int] = None
           ) -> Optional[Estimate]:
    """Seed-paired difference arm - base: of the slope over cycles (``cycle`` None) or of the value at
    ``cycle``. Both chains of one seed share cycle 1, so seeds, not chains, are the independent units."""
    out = []
    for s in sorted({r.get("seed", 0) for r in rows}):
        ca, va = chain(rows, paradigm, arm, key, s)
        cb, vb = chain(rows, paradigm, base, key, s)
        if cycle is None and len(ca) > 1 and len(cb) > 1:
            out.append(slope(ca, va) - slope(cb, vb))
        elif cycle is not None and cycle in ca and cycle in cb:
            out.append(va[ca.index(cycle)] - vb[cb.index(cycle)])
    return estimate(out)


def trend(e: Estimate) -> int:
    """+1 rising, -1 falling, 0 flat or undecided: over >= 2 seeds the 95% interval must exclude 0 (and
    the mean clear FLAT); one seed has only its sign against FLAT."""
    if abs(e.mean) < FLAT:
        return 0
    if e.n > 1 and e.ci95[0] <= 0 <= e.ci95[1]:
        return 0
    return int(np.sign(e.mean))


def williams(r12: float, r13: float, r23: float, n: int) -> dict:
    """Williams' t (Steiger 1980, eq. 14) for H0: rho12 = rho13, two correlations of variable 1 with
    variables 2 and 3 measured on the same n points; two-sided p on n - 3 degrees of freedom."""
    from scipy.stats import t as student
    if n <= 3:
        return {"t": float("nan"), "p": float("nan"), "df": n - 3}
    det = 1 - r12 ** 2 - r13 ** 2 - r23 ** 2 + 2 * r12 * r13 * r23
    rbar = (r12 + r13) / 2
    t = (r12 - r13) * np.sqrt((n - 1) * (1 + r23) / (2 * (n - 1) / (n - 3) * det + rbar ** 2 * (1 - r23) ** 3))
    return {"t": float(t), "p": float(2 * student.sf(abs(t), n - 3)), "df": n - 3}


def verdict(held: Optional[bool], n_seeds: int) -> str:
    """'held' / 'not held' on >= HELD_SEEDS seeds; 'suggested' / 'not suggested' below; 'not judged'."""
    if held is None:
        return "not judged"
    if n_seeds >= HELD_SEEDS:
        return "held" if held else "not held"
    return "suggested" if held else "not suggested"


def slope_power(n: int, rise: float, start: float = 0.3, cycles: int = 5, seeds: int = 3, sims: int = 4000,
                seed: int = 0) -> float:
    """Power of the seed-level slope test for a share measured on ``n`` independent units a cycle: the
    share of simulated designs (binomial draws at start + rise * (cycle - 1), clipped to [0, 1]) whose
    95% t interval of the mean slope over ``seeds`` chains lies above 0 (docs/method.md §8)."""
    from scipy.stats import t
    rng = np.random.default_rng(seed)
    c = np.arange(1, cycles + 1)
    p = np.clip(start + rise * (c - 1), 0, 1)
    shares = rng.binomial(n, p, size=(sims, seeds, cycles)) / n
    cc = c - c.mean()
    b = (shares - shares.mean(-1, keepdims=True)) @ cc / (cc ** 2).sum()    # (sims, seeds) slopes
    half = t.ppf(0.975, seeds - 1) * b.std(-1, ddof=1) / np.sqrt(seeds)
    return float(np.mean(b.mean(-1) - half > 0))
