"""The arms of a study and the one table of selectors (docs/method.md §3, §9).

An arm (:class:`ArmConfig`) names a selector, the space it measures distances in, and the options
every arm may take (a real anchor, a simulated provenance filter). Each selector's entry in
:data:`SELECTORS` owns what is particular to it: the arm keys it reads, their checks, its flags and
the function that applies it. Nothing else in the package compares selector names: the pipeline,
the paradigms and the config ask the entry. Adding a selector is one entry here (and, for a new
algorithm, one function in ``selectors.py``).

Imports no torch: configs and run readers load this module; the selector functions load lazily.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable, Literal, Optional

import numpy as np

from ..core.config import from_dict
from ..core.errors import UserError

Space = Literal["pixel", "feature"]


@dataclass(frozen=True)
class ProvenanceConfig:
    """A simulated detector of generated images (a watermark check), run on the pool before selection."""
    recall: float = 0.8              # share of generated images it flags
    false_positive: float = 0.05     # share of real images it flags


# (features (|S|, D), n, rng, arm, fixed neighbours (m, D) or None, device) -> n indices into S
Pick = Callable[[np.ndarray, int, np.random.Generator, "ArmConfig", Optional[np.ndarray], object], np.ndarray]


@dataclass(frozen=True)
class Selector:
    """One selector: the arm keys it reads, how they are checked, what it is, and how it picks."""
    name: str
    doc: str
    params: tuple[str, ...] = ()     # ArmConfig keys this selector reads (beyond the COMMON ones)
    check: Callable[["ArmConfig"], list[str]] = field(default=lambda arm: [], repr=False)  # problems
    pick: Optional[Pick] = field(default=None, repr=False)  # None: a filter or `all`, not a base selector
    filter: Optional[Callable] = field(default=None, repr=False)  # (chooser, pool, idx, size) -> (idx, back, dropped)
    keeps_all: bool = False          # trains on every candidate (vanilla-rN): target size r*N, no choice
    filters: bool = False            # a filter in front of the arm's `base` selector
    equal_shares: bool = False       # accumulate-subsample draws equal shares of each source (vanilla)
    wants_reference: bool = False    # pick() uses D_n as fixed neighbours when the arm asks (klprune)

    def needs_candidates(self) -> bool:
        """Whether it chooses among r*N candidates (r >= 1 needed); random and all do not."""
        return not (self.equal_shares or self.keeps_all)


def _random(x, n, rng, arm, ref, device):
    return np.sort(rng.choice(len(x), size=n, replace=False))


def _greedy(x, n, rng, arm, ref, device):
    from .selectors import select_greedy
    return select_greedy(x, n, rng, device)


def _tdf(x, n, rng, arm, ref, device):
    from .selectors import select_tdf
    return select_tdf(x, n, rng, arm.tau0, arm.alpha, device)


def _klprune(x, n, rng, arm, ref, device):
    from .selectors import select_klprune
    return select_klprune(x, n, ref if arm.prune_with_train else None, device)


def _memfilter(ch, pool, idx, size):
    from .filters import memorization_filter
    return memorization_filter(ch, pool, idx, size)


def _selfverify(ch, pool, idx, size):
    from .filters import self_verification
    return self_verification(ch, pool, idx, size)


def _tdf_check(a: "ArmConfig") -> list[str]:
    return [] if a.tau0 > 0 and 0 < a.alpha < 1 else ["tdf needs tau0 > 0 and 0 < alpha < 1"]


def _verify_check(a: "ArmConfig") -> list[str]:
    ok = 0 < a.reject_fraction < 1 and a.verify_timesteps >= 1 and a.verify_noise >= 1
    return [] if ok else ["selfverify needs 0 < reject_fraction < 1, verify_timesteps and verify_noise >= 1"]


SELECTORS: dict[str, Selector] = {s.name: s for s in (
    Selector("random", "N uniformly at random: the vanilla arm", pick=_random, equal_shares=True),
    Selector("all", "every r*N candidate, no choice: the vanilla-rN control", keeps_all=True, equal_shares=True),
    Selector("greedy", "farthest-point (k-center) selection from a random start", pick=_greedy),
    Selector("tdf", "threshold decay filter: accept x farther than tau from every accepted point; "
             "tau <- alpha tau after a pass that accepts none", ("tau0", "alpha"), _tdf_check, _tdf),
    Selector("klprune", "entropy-score pruning: drop the candidate nearest its nearest remaining "
             "neighbour until N remain", ("prune_with_train",), pick=_klprune, wants_reference=True),
    Selector("memfilter", "memorization filter: drop candidates the lineage-aware 1/3 rule calls copies, "
             "then `base` picks N", ("base", "filter_against"), filter=_memfilter, filters=True),
    Selector("selfverify", "self-verification: drop the candidates the model denoises least well, then "
             "`base` picks N", ("base", "verify", "reject_fraction", "verify_timesteps", "verify_noise"),
             _verify_check, filter=_selfverify, filters=True),
)}
BASES = tuple(name for name, s in SELECTORS.items() if s.pick is not None)
COMMON = ("name", "selector", "space", "real_anchor", "provenance")  # keys every arm may set


@dataclass(frozen=True)
class ArmConfig:
    """One arm: how D_{n+1} is chosen from the pool (docs/method.md §3, §9). Only COMMON keys and
    the keys of the arm's selector (and of its base selector, for a filter) may be set."""
    name: str = "vanilla"
    selector: str = "random"         # a key of SELECTORS
    space: Space = "pixel"
    tau0: float = 2000.0             # tdf: starting threshold, in the space's units (pixels 0-255)
    alpha: float = 0.95              # tdf: decay
    base: str = "random"             # memfilter / selfverify: the selector (one of BASES) that picks N
    filter_against: Literal["current", "all"] = "current"  # memfilter: score against D_n, or every D_1..D_n
    prune_with_train: bool = False   # klprune: D_n counts as neighbours too
    verify: Literal["top", "reject"] = "top"  # selfverify: keep the N most confident, or reject a fraction
    reject_fraction: float = 0.5     # selfverify reject: the least confident share dropped before `base`
    verify_timesteps: int = 10       # selfverify: evenly spaced timesteps of the denoising score
    verify_noise: int = 2            # selfverify: fixed noise draws per timestep
    real_anchor: int = 0             # m real images of D_1 kept in every training set (0 = off)
    provenance: Optional[ProvenanceConfig] = None  # simulated detector filter; None = off

    @property
    def entry(self) -> Selector:
        return SELECTORS[self.selector]

    @property
    def picker(self) -> Selector:
        """The selector that picks N in the end: the base of a filter, else the selector itself."""
        return SELECTORS[self.base] if self.entry.filters else self.entry

    def to_config(self) -> list[str]:
        """The keys this arm reads (``core.config.to_dict`` writes only these)."""
        keys = list(COMMON) + list(self.entry.params)
        if self.entry.filters:
            keys += [k for k in SELECTORS[self.base].params if k not in keys]
        if self.selector == "selfverify" and self.verify == "top":
            keys.remove("reject_fraction")
        return keys

    @classmethod
    def from_config(cls, data: dict, where: str, prefix: str = "") -> "ArmConfig":
        """An arm from its YAML mapping; a key its selector never reads is refused."""
        label = f"{prefix.rstrip('.')} ('{data.get('name', cls.name)}')"
        selector = data.get("selector", cls.selector)
        if selector not in SELECTORS:
            raise UserError(f"{where}: key '{prefix}selector' of {label}: unknown selector {selector!r} "
                            f"(choose from {', '.join(SELECTORS)})")
        base = data.get("base", cls.base)
        if SELECTORS[selector].filters and base not in BASES:
            raise UserError(f"{where}: {label}: base must be one of {', '.join(BASES)}, got {base!r}")
        known = {f.name for f in fields(cls)}
        unknown = [k for k in data if k not in known]
        if unknown:
            raise UserError(f"{where}: unknown key '{prefix}{unknown[0]}' (allowed: {', '.join(sorted(known))})")
        arm = from_dict(cls, data, where, prefix)
        allowed = arm.to_config()
        extra = [k for k in data if k not in allowed]
        if extra:
            raise UserError(f"{where}: {label}: selector '{selector}' does not read '{extra[0]}' (it reads "
                            f"{', '.join(k for k in allowed if k not in COMMON) or 'no keys of its own'}); "
                            f"remove it or change the selector")
        problems = arm.entry.check(arm) + (SELECTORS[base].check(arm) if arm.entry.filters else [])
        if problems:
            raise UserError(f"{where}: {label}: {problems[0]}")
        if arm.provenance is not None and not (0 <= arm.provenance.recall <= 1
                                               and 0 <= arm.provenance.false_positive < 1):
            raise UserError(f"{where}: {label}: provenance needs recall in [0, 1] and false_positive in [0, 1)")
        return arm


def choose(arm: ArmConfig, x: np.ndarray, n: int, rng: np.random.Generator, ref: Optional[np.ndarray] = None,
           device=None) -> np.ndarray:
    """n unique indices into the (|S|, D) features ``x``, picked by the arm's picking selector;
    ``ref``: fixed neighbours (D_n) for a selector that uses them."""
    if n > len(x):
        raise ValueError(f"cannot select {n} of {len(x)} candidates")
    return arm.picker.pick(x, n, rng, arm, ref, device)


def select(name: str, x: np.ndarray, n: int, rng: np.random.Generator, tau0: float = 2000.0,
           alpha: float = 0.95, device=None, ref: Optional[np.ndarray] = None) -> np.ndarray:
    """A picking selector by name, outside any arm (the reference checks and benchmarks)."""
    if name not in BASES:
        raise ValueError(f"unknown selector '{name}' (choose from {', '.join(BASES)})")
    arm = ArmConfig(name=name, selector=name, tau0=tau0, alpha=alpha, prune_with_train=ref is not None)
    return choose(arm, x, n, rng, ref, device)
