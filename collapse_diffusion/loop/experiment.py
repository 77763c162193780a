"""The experiment config: every stage's config, the study and the phase grid, loaded strictly.

:class:`ExperimentConfig` composes the stage configs of ``core.config``, the arms of
``selection.registry``, the study (paradigms, arms, the baseline arm the findings compare against,
cycles, seeds) and the phase grid. :func:`load_config` reads YAML (with ``base:`` inheritance),
applies ``--set`` overrides (a wrong one is blamed on the option, not on the file) and runs every
cross-field check before anything trains. Output folders record their resolved config and refuse
another one (:func:`claim_folder`).

Imports no torch: the report reads a run's config through this module.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from ..core.config import (
    DataConfig,
    DiffusionConfig,
    EvalConfig,
    ModelConfig,
    Preset,
    RuntimeConfig,
    SampleConfig,
    TrainConfig,
    apply_override,
    from_dict,
    merge,
    read_yaml,
    to_dict,
)
from ..core.errors import UserError
from ..selection.registry import BASES, SELECTORS, ArmConfig

Paradigm = Literal["replace", "accumulate-subsample", "accumulate", "fresh"]


@dataclass(frozen=True)
class StudyConfig:
    cycles: int = 5
    paradigms: tuple[Paradigm, ...] = ("replace",)
    arms: tuple[ArmConfig, ...] = (ArmConfig(),)
    baseline: str = "vanilla"        # the arm every other arm is judged against (findings, rankings)
    oversample: float = 2.0          # r: candidates per cycle = r * N
    fresh_fraction: float = 0.2      # lambda of the fresh paradigm
    seeds: tuple[int, ...] = ()      # replicates: the whole study once per seed; () = the top-level seed


@dataclass(frozen=True)
class PhaseConfig:
    """The grid of `collapse-diffusion phase` (docs/method.md §7): one replace/vanilla study per cell."""
    n: tuple[int, ...] = (32, 64, 128)               # training-set sizes N
    steps: tuple[int, ...] = (500, 1000, 2000, 4000) # training budgets, optimizer steps of train.batch_size
    presets: tuple[Preset, ...] = ()                 # model presets; () = model.preset only
    cycles: int = 1                                  # replace cycles per cell (>1 follows the loop along cycles)


@dataclass(frozen=True)
class ExperimentConfig:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    study: StudyConfig = field(default_factory=StudyConfig)
    phase: PhaseConfig = field(default_factory=PhaseConfig)


MOVED = {("train", k): ("runtime", k) for k in ("device", "fast", "compile", "threads")}
MOVED[("study", "workers")] = ("runtime", "workers")
LISTS = {"arms": ("study", lambda: [to_dict(a) for a in StudyConfig().arms])}


def _migrate(data: dict) -> dict:
    """A config.yaml written by an earlier version, read as this one: runtime keys moved to
    ``runtime:``, and the arm keys that version wrote for every arm dropped where the arm's selector
    does not read them and they hold the default (a non-default one still fails, by name)."""
    data = merge({}, data)
    for (sec, key), (new, _) in MOVED.items():
        if isinstance(data.get(sec), dict) and key in data[sec]:
            data.setdefault(new, {})[key] = data[sec].pop(key)
    defaults = {f.name: getattr(ArmConfig(), f.name) for f in fields(ArmConfig)}
    for arm in (data.get("study") or {}).get("arms") or []:
        if not isinstance(arm, dict) or arm.get("selector", "random") not in SELECTORS:
            continue
        probe = ArmConfig(selector=arm.get("selector", "random"),
                          base=arm["base"] if arm.get("base") in BASES else "random",
                          verify="reject" if arm.get("verify") == "reject" else "top")
        allowed = probe.to_config()
        for k in [k for k in arm if k not in allowed and k in defaults and arm[k] == defaults[k]]:
            del arm[k]
    return data


def _check_moved(data: dict, where: str) -> None:
    for (sec, key), (new, _) in MOVED.items():
        if isinstance(data.get(sec), dict) and key in data[sec]:
            raise UserError(f"{where}: '{sec}.{key}' has moved to '{new}.{key}'; write it under the {new}: section")


def load_config(path: str | Path | None, overrides: tuple[str, ...] | list[str] = (),
                saved: bool = False) -> ExperimentConfig:
    """Load an experiment config from YAML (``None``: all defaults) and apply ``--set`` overrides.
    ``saved``: the file is a run's own config.yaml, possibly written by an earlier version."""
    data: dict = {}
    where = "<defaults>"
    if path is not None:
        where = str(path)
        data = read_yaml(path)
        data = _migrate(data) if saved else data
        _check_moved(data, where)
    for assignment in overrides:
        apply_override(data, assignment, LISTS)
        if not assignment.split("=", 1)[0].strip().startswith("study.arms."):
            alone: dict = {}
            apply_override(alone, assignment, LISTS)  # a wrong key or type names the override, not the file
            _check_moved(alone, f"--set '{assignment}'")
            from_dict(ExperimentConfig, alone, f"--set '{assignment}'")
    cfg = from_dict(ExperimentConfig, data, where)
    validate(cfg, where if not overrides else f"{where} with --set {' --set '.join(overrides)}")
    return cfg


def validate(cfg: ExperimentConfig, where: str = "<config>") -> None:
    """Checks across fields that types alone cannot express; all run before any training starts."""
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise UserError(f"{where}: {msg}")
    need(cfg.seed >= 0, f"seed must be a non-negative integer, got {cfg.seed}")
    need(cfg.data.n >= 2, "data.n must be at least 2")
    need(cfg.data.fit == "none" or cfg.data.resolution is not None, "data.fit needs data.resolution")
    need(cfg.data.resolution is None or cfg.data.fit != "none",
         "data.resolution is set but data.fit is none; set data.fit to pad or resize")
    need(cfg.data.resolution is None or 4 <= cfg.data.resolution <= 512,
         f"data.resolution must be between 4 and 512 pixels, got {cfg.data.resolution}")
    need(cfg.train.steps >= 1 and cfg.train.batch_size >= 1, "train.steps and train.batch_size must be >= 1")
    need(cfg.train.checkpoint_every >= 1, "train.checkpoint_every must be >= 1")
    need(0 < cfg.eval.memorization_threshold < 1, "eval.memorization_threshold must be in (0, 1)")
    need(cfg.eval.entropy_k >= 1, "eval.entropy_k must be >= 1")
    need(cfg.eval.n_generated >= 2, "eval.n_generated must be at least 2")
    need(cfg.eval.bootstrap >= 0 and cfg.eval.fid_real >= 0, "eval.bootstrap and eval.fid_real must be >= 0")
    need(cfg.eval.fid_real != 1, "eval.fid_real must be 0 (all) or at least 2 images")
    e = cfg.eval
    need(e.membership_holdout >= 0, f"eval.membership_holdout must be >= 0 (0: no non-members held out), "
                                    f"got {e.membership_holdout}")
    need(e.membership_draws >= 1, f"eval.membership_draws must be >= 1, got {e.membership_draws}")
    need(e.probe_draws >= 0, f"eval.probe_draws must be >= 0 (0: ceil(256 / N)), got {e.probe_draws}")
    need(e.planted >= 4, f"eval.planted must be at least 4 (half the model's copies, half of fixed size), "
                         f"got {e.planted}")
    need(cfg.eval.classifier_steps >= 1 and cfg.eval.classifier_batch >= 1 and cfg.eval.classifier_lr > 0,
         "eval.classifier_steps, eval.classifier_batch and eval.classifier_lr must be positive")
    need(cfg.runtime.threads >= 0, "runtime.threads must be >= 0 (0 = torch's default)")
    need(cfg.runtime.workers >= 0, "runtime.workers must be >= 0 (0 = up to two per CPU core)")
    need(math.isfinite(cfg.train.lr) and cfg.train.lr > 0, f"train.lr must be a positive number, got {cfg.train.lr}")
    need(cfg.sample.steps >= 0 and cfg.sample.batch_size >= 1, "sample.steps >= 0 and sample.batch_size >= 1")
    need(cfg.sample.sampler == "ddpm" or cfg.sample.steps >= 1, "sample.steps must be >= 1 for ddim")
    s = cfg.study
    need(s.cycles >= 1, "study.cycles must be >= 1")
    need(len(set(s.seeds)) == len(s.seeds) and all(x >= 0 for x in s.seeds), "study.seeds: non-negative, each once")
    need(math.isfinite(s.oversample) and 0 < s.oversample <= 64,
         f"study.oversample must be a number in (0, 64], got {s.oversample}")
    need(len(s.paradigms) >= 1 and len(set(s.paradigms)) == len(s.paradigms), "study.paradigms: list each once")
    names = [a.name for a in s.arms]
    need(len(names) >= 1 and len(set(names)) == len(names), "study.arms: give each arm a unique name")
    need(all(n.replace("-", "").replace("_", "").isalnum() for n in names),
         "study.arms: names may hold only letters, digits, '-' and '_'")
    need(s.baseline in names, f"study.baseline '{s.baseline}' is not an arm (arms: {', '.join(names)}); name "
                              f"the control arm every other arm is judged against")
    need(s.oversample >= 1.0 or not any(a.entry.needs_candidates() for a in s.arms),
         f"study.oversample is {s.oversample}: a selector needs r >= 1 candidates per training image")
    need(0.0 < s.fresh_fraction < 1.0 or "fresh" not in s.paradigms, "study.fresh_fraction must be in (0, 1)")
    ph = cfg.phase
    need(len(ph.n) >= 1 and all(x >= 2 for x in ph.n), "phase.n: list training-set sizes of at least 2")
    need(len(set(ph.n)) == len(ph.n) and len(set(ph.steps)) == len(ph.steps), "phase.n and phase.steps: list each once")
    need(len(ph.steps) >= 1 and all(x >= 1 for x in ph.steps), "phase.steps: list step budgets of at least 1")
    need(ph.cycles >= 1, "phase.cycles must be >= 1")
    for a in s.arms:
        need(0 <= a.real_anchor < cfg.data.n, f"arm '{a.name}': real_anchor must be between 0 and data.n - 1")


def check_study(cfg: ExperimentConfig) -> None:
    """What a study (not a single command) needs of its config: every metric on at least the r*(N + h)
    candidates a cycle generates (h: the membership test's held-out non-members)."""
    from ..selection.paradigms import candidate_count, holdout_size
    s, e = cfg.study, cfg.eval
    h = max((holdout_size(p, a, e.membership_holdout) for p in s.paradigms for a in s.arms), default=0) \
        if e.membership and s.cycles > 1 else 0
    candidates = candidate_count(cfg.data.n, s.oversample, h)
    if e.n_generated < candidates:
        held = f" and h = {h} held-out non-members (eval.membership_holdout)" if h else ""
        raise UserError(f"eval.n_generated ({e.n_generated}) is below the r*(N + h) = {candidates} candidates a "
                        f"cycle of N = {cfg.data.n}{held} generates; raise it to at least {candidates}")


def differing_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted(set(a) | set(b))
                for k in differing_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]


# Keys that cannot change a result (checkpoints are bitwise-resumable; results do not depend on the
# number of worker processes): a run may be resumed with other values.
BOOKKEEPING = ("train.checkpoint_every", "train.keep_checkpoint", "runtime.workers")


def check_same_config(saved: Path, cfg: ExperimentConfig, what: str, ignore: tuple[str, ...] = ()) -> None:
    """Refuse to reuse ``what`` (a run or model folder) started with another config; name the keys.

    The saved config is read through the current defaults, so keys added since it was written do not
    count as differences; BOOKKEEPING keys and ``ignore`` (dotted keys or sections) never do."""
    if saved.exists():
        skip = BOOKKEEPING + tuple(ignore)
        diff = [k for k in differing_keys(to_dict(load_config(saved, saved=True)), to_dict(cfg))
                if not any(k == i or k.startswith(i + ".") for i in skip)]
        if diff:
            raise UserError(f"'{what}' was started with a different config ({saved}; differs in "
                            f"{', '.join(diff[:6])}{' ...' if len(diff) > 6 else ''}); pass the same config or "
                            f"choose a new folder")


def claim_folder(folder: Path, cfg: ExperimentConfig, ignore: tuple[str, ...] = (), save: bool = True) -> None:
    """The guard of every output folder (a model, a run, a phase diagram): refuse one started with
    another config (:func:`check_same_config`), else record ``cfg`` there (rank 0) when ``save``."""
    from ..core.layout import RunLayout
    saved = RunLayout(folder).config
    check_same_config(saved, cfg, str(folder), ignore)
    if save and not saved.exists():
        from ..core.runtime import is_main
        if is_main():
            save_config(cfg, saved)


def save_config(cfg: ExperimentConfig, path: Path) -> None:
    """Write the resolved config next to an output (atomically)."""
    from ..core.io import atomic_write_text
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
