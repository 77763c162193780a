"""How the next training set D_{n+1} is built (docs/method.md §1). Pure functions of image sets.

N is the size of D_1. With a selector, M_n generates r*N candidates G_n and the selector picks N;
the ``all`` selector keeps every candidate (the vanilla-rN control, training size r*N).

- replace:              D_{n+1} = select(G_n)
- accumulate-subsample: D_{n+1} = N images from R u G_1 u ... u G_n. The random (vanilla) arm takes
                        an equal share of each of the n+1 sources, so the real share is ~1/(n+1);
                        greedy and tdf select from the whole pool.
- accumulate:           D_{n+1} = D_n u select(G_n)          (grows by N each cycle)
- fresh:                D_{n+1} = lambda*N new real images never used before u select(G_n) of the rest
Provenance travels with every image, so the real share of D_{n+1} is exact.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from ..data.images import ImageSet
from .record import SelectionReport
from .registry import ArmConfig

# (pool, n, rng) -> n indices into the pool; bound to an arm and a feature space by the caller
# (pipeline.Chooser, which also records a SelectionReport of what its filters did)
PickFn = Callable[[ImageSet, int, np.random.Generator], np.ndarray]


def target_size(arm: ArmConfig, n: int, oversample: float) -> int:
    """Training-set size an arm keeps per source: N, or r*N for the vanilla-rN control (``all``)."""
    return int(round(oversample * n)) if arm.entry.keeps_all else n


def equal_shares(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` near-equal integers, the larger ones first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def fresh_count(n: int, fraction: float) -> int:
    """New real images per cycle under the fresh paradigm: round(lambda * N)."""
    return int(round(fraction * n))


def real_pool_size(n: int, cycles: int, paradigms: tuple[str, ...], fraction: float) -> int:
    """Real images a study needs: N for D_1, plus lambda*N unused ones per later cycle for fresh."""
    return n + ((cycles - 1) * fresh_count(n, fraction) if "fresh" in paradigms else 0)


def holdout_size(paradigm: str, arm: ArmConfig, h: int) -> int:
    """Non-members held out of each selection (docs/method.md §7): ``h`` where D_{n+1} is one selection
    from one cycle's candidates (replace, an arm that selects), so that the held-out images are drawn
    exactly as D_{n+1} is; none elsewhere (there no held-out set is exchangeable with all of D_{n+1})."""
    return h if paradigm == "replace" and not arm.entry.keeps_all else 0


def candidate_count(n: int, oversample: float, holdout: int = 0) -> int:
    """Candidates a cycle generates for an arm to select from: r*(N + h), at least N."""
    return max(n, int(round(oversample * (n + holdout))))


def split_holdout(selected: ImageSet, h: int, anchors: int, rng: np.random.Generator) -> tuple[ImageSet, ImageSet]:
    """(D_{n+1}, held-out non-members): a seeded random ``h`` of the N + h selected images, never one
    of the first ``anchors`` (real anchors stay in every training set)."""
    order = anchors + rng.permutation(len(selected) - anchors)
    held = np.sort(order[:h])
    keep = np.concatenate([np.arange(anchors), np.sort(order[h:])])
    return selected.take(keep), selected.take(held)


def equal_shares_arm(arm: ArmConfig) -> bool:
    """Whether accumulate-subsample takes an equal share of each source (vanilla, no pool filter)."""
    return arm.entry.equal_shares and arm.provenance is None


def next_training_set(paradigm: str, arm: ArmConfig, choose: PickFn, real_pool: ImageSet, current: ImageSet,
                      generated: list[ImageSet], n: int, cycle: int, oversample: float, fresh_fraction: float,
                      rng: np.random.Generator) -> tuple[ImageSet, SelectionReport]:
    """D_{cycle+1} from D_cycle (``current``) and G_1..G_cycle (``generated``, candidates of each cycle),
    and the record of how it was chosen.

    ``real_pool`` holds R = D_1 in its first N rows and, under fresh, the unused real images after.
    With ``arm.real_anchor = m`` the first m images of R are in every training set and the paradigm
    fills the other size - m (accumulate keeps all of D_1 anyway). The record is the chooser's
    (``choose.report``, what its filters did); where nothing chose (vanilla's equal shares of
    accumulate-subsample, ``all``) it counts the pool the paradigm drew from.
    """
    size = target_size(arm, n, oversample)
    m = arm.real_anchor if paradigm != "accumulate" else 0
    anchor = real_pool.take(np.arange(m))
    rest = _build(paradigm, arm, choose, real_pool, current, generated, n, m, size - m, cycle, fresh_fraction, rng)
    out = ImageSet.concat([anchor, rest]) if m else rest
    report = getattr(choose, "report", None)
    if report is None:
        pooled = generated if paradigm == "accumulate-subsample" else generated[-1:]
        made = sum(len(g) for g in pooled)
        real = n if paradigm == "accumulate-subsample" else 0
        report = SelectionReport(pool=made + real, size=len(out), pool_generated=made, pool_real=real)
    return out, dataclasses.replace(report, real_anchors=int(m))


def _build(paradigm: str, arm: ArmConfig, choose: PickFn, real_pool: ImageSet, current: ImageSet,
           generated: list[ImageSet], n: int, m: int, size: int, cycle: int, fresh_fraction: float,
           rng: np.random.Generator) -> ImageSet:
    """The training set without its anchors (``m`` real images already taken)."""
    latest = generated[-1]
    if paradigm == "replace":
        return _pick(arm, choose, latest, size, rng)
    if paradigm == "accumulate":
        return ImageSet.concat([current, _pick(arm, choose, latest, size, rng)])
    if paradigm == "fresh":
        k = fresh_count(n, fresh_fraction)
        start = n + (cycle - 1) * k
        new_real = real_pool.take(np.arange(start, start + k))
        return ImageSet.concat([new_real, _pick(arm, choose, latest, size - k, rng)])
    if paradigm == "accumulate-subsample":
        sources = [real_pool.take(np.arange(m, n))] + generated
        if equal_shares_arm(arm):
            parts = [s.take(rng.choice(len(s), size=min(c, len(s)), replace=False))
                     for s, c in zip(sources, equal_shares(size, len(sources)))]
            return ImageSet.concat(parts)
        pool = ImageSet.concat(sources)
        return pool.take(choose(pool, size, rng))
    raise ValueError(f"unknown paradigm '{paradigm}'")


def _pick(arm: ArmConfig, choose: PickFn, candidates: ImageSet, size: int, rng: np.random.Generator) -> ImageSet:
    if arm.entry.keeps_all:
        return candidates.take(np.arange(min(size, len(candidates))))
    return candidates.take(choose(candidates, size, rng))
