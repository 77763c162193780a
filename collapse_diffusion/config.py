"""Typed, frozen experiment configuration loaded strictly from YAML.

One dataclass per stage, composed into :class:`ExperimentConfig`. Defaults live at the field, once,
with units in a trailing comment. An unknown key or a value of the wrong type is a
:class:`~collapse_diffusion.errors.UserError` that names the key and the file.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from .errors import UserError

Source = Literal["digits", "mnist5k", "mnist", "fashion-mnist", "cifar10", "folder", "npz"]
Fit = Literal["none", "pad", "resize"]
Preset = Literal["digits-tiny", "mnist-tiny", "mnist-small", "unet48"]
Sampler = Literal["ddpm", "ddim"]
Paradigm = Literal["replace", "accumulate-subsample", "accumulate", "fresh"]
SelectorName = Literal["random", "greedy", "tdf", "all", "klprune", "memfilter", "selfverify"]
BaseSelector = Literal["random", "greedy", "tdf", "klprune"]
Space = Literal["pixel", "feature"]
Extractor = Literal["auto", "classifier", "inception"]


@dataclass(frozen=True)
class DataConfig:
    source: Source = "digits"
    root: str = "data"               # folder for torchvision sets, or the folder/npz path
    download: bool = False           # torchvision sets only; never implicit
    n: int = 256                     # |R| = |D_1|, images
    fit: Fit = "none"                # how images reach model.resolution
    resolution: Optional[int] = None # pixels; None keeps the native size
    train_split: bool = True         # torchvision sets: train (True) or test split


@dataclass(frozen=True)
class ModelConfig:
    preset: Preset = "digits-tiny"


@dataclass(frozen=True)
class DiffusionConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1500                # optimizer steps per cycle
    batch_size: int = 128
    lr: float = 1e-3
    betas: tuple[float, float] = (0.95, 0.999)
    weight_decay: float = 1e-6
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    checkpoint_every: int = 500      # steps between resumable checkpoints
    keep_checkpoint: bool = False    # keep checkpoint/ once the final model is written
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    fast: Optional[bool] = None      # bf16 autocast, channels_last, fused AdamW, TF32; None = on for CUDA
    compile: Optional[bool] = None   # torch.compile of the UNet; None = on for CUDA
    threads: int = 0                 # CPU threads of one training/sampling process; 0 = torch's default.
                                     # On CPU the result depends on it (summation order), not on study.workers


@dataclass(frozen=True)
class SampleConfig:
    sampler: Sampler = "ddim"
    steps: int = 50                  # denoising steps (ddpm uses all num_train_timesteps when 0)
    batch_size: int = 512


@dataclass(frozen=True)
class EvalConfig:
    memorization_threshold: float = 1 / 3   # NN1/NN2 ratio below which an image is a copy
    n_generated: int = 256                   # images generated per cycle for every metric (>= r*N candidates)
    bootstrap: int = 200                     # resamples of generated images for the FD interval
    entropy_k: int = 1                       # k of the Kozachenko-Leonenko estimator
    extractor: Extractor = "auto"            # auto: inception when weights exist and images >= 32px
    inception_weights: Optional[str] = None  # path to the TF-FID Inception weights (.pth)
    classifier_steps: int = 600              # training steps of the project's feature classifier
    fid_real: int = 0                        # real images for FD; 0 = every image of the data set (up to 20k)


@dataclass(frozen=True)
class ProvenanceConfig:
    """A simulated detector of generated images (a watermark check), run on the pool before selection."""
    recall: float = 0.8              # share of generated images it flags
    false_positive: float = 0.05     # share of real images it flags


@dataclass(frozen=True)
class ArmConfig:
    """One arm: how D_{n+1} is chosen from the pool (docs/method.md §3, §9)."""
    name: str = "vanilla"
    selector: SelectorName = "random"
    space: Space = "pixel"
    tau0: float = 2000.0             # TDF starting threshold, in the space's units (pixels 0-255)
    alpha: float = 0.95              # TDF decay
    base: BaseSelector = "random"    # memfilter / selfverify: the selector that picks N among the survivors
    filter_against: Literal["current", "all"] = "current"  # memfilter: score against D_n, or every D_1..D_n
    prune_with_train: bool = False   # klprune: D_n counts as neighbours too
    verify: Literal["top", "reject"] = "top"  # selfverify: keep the N most confident, or reject a fraction
    reject_fraction: float = 0.5     # selfverify reject: the least confident share dropped before `base`
    verify_timesteps: int = 10       # selfverify: evenly spaced timesteps of the denoising score
    verify_noise: int = 2            # selfverify: fixed noise draws per timestep
    real_anchor: int = 0             # m real images of D_1 kept in every training set (0 = off)
    provenance: Optional[ProvenanceConfig] = None  # simulated detector filter; None = off


@dataclass(frozen=True)
class StudyConfig:
    cycles: int = 5
    paradigms: tuple[Paradigm, ...] = ("replace",)
    arms: tuple[ArmConfig, ...] = (ArmConfig(),)
    oversample: float = 2.0          # r: candidates per cycle = r * N
    fresh_fraction: float = 0.2      # lambda of the fresh paradigm
    seeds: tuple[int, ...] = ()      # replicates: the whole study once per seed; () = the top-level seed
    workers: int = 0                 # parallel CPU processes for a cycle's arms; 0 = up to 2 per core (1 on CUDA)


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
    study: StudyConfig = field(default_factory=StudyConfig)
    phase: PhaseConfig = field(default_factory=PhaseConfig)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert lists to tuples and dicts to configs."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = UserError(f"{where}: key '{key}' must be {_type_name(tp)}, got {value!r}")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key, where)
    if origin is Literal:
        if value not in args:
            raise bad
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]", where) for i, v in enumerate(value))
        if len(value) != len(args):
            raise bad
        return tuple(_coerce(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args)))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad
        return from_dict(tp, value, where, prefix=f"{key}.")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool) or tp is int and isinstance(value, bool):
        raise bad
    if not isinstance(value, tp):
        raise bad
    return value


def from_dict(cls: type, data: dict, where: str = "<config>", prefix: str = "") -> Any:
    """Build the dataclass ``cls`` from ``data``; unknown keys and wrong types raise UserError."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise UserError(f"{where}: unknown key '{prefix}{key}' (allowed: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(v, hints[k], prefix + k, where) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    """Plain YAML-safe dict of a config (tuples become lists)."""
    def plain(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(cfg))


def _apply_override(data: dict, assignment: str) -> None:
    """Set one dotted key; inside a list of named items (study.arms) a key selects the item by name."""
    if "=" not in assignment:
        raise UserError(f"--set '{assignment}': expected section.key=value, e.g. --set train.steps=200")
    path, raw = assignment.split("=", 1)
    keys = path.strip().split(".")
    node: Any = data
    for k in keys[:-1]:
        if isinstance(node, list):
            named = [item for item in node if isinstance(item, dict) and item.get("name") == k]
            if not named:
                raise UserError(f"--set '{assignment}': no item named '{k}' (names: "
                                f"{', '.join(str(i.get('name')) for i in node if isinstance(i, dict))})")
            node = named[0]
            continue
        if k == "arms" and node is data.get("study") and k not in node:
            node[k] = [to_dict(a) for a in StudyConfig().arms]
        node = node.setdefault(k, {})
        if not isinstance(node, (dict, list)):
            raise UserError(f"--set '{assignment}': '{k}' is not a section")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise UserError(f"--set '{assignment}': the value is not valid YAML") from None
    if isinstance(node, list):
        raise UserError(f"--set '{assignment}': name an item of the list, e.g. study.arms.greedy.tau0=500")
    node[keys[-1]] = value


def load_config(path: str | Path | None, overrides: tuple[str, ...] | list[str] = ()) -> ExperimentConfig:
    """Load an experiment config from YAML (``None``: all defaults) and apply ``--set`` overrides."""
    data: dict = {}
    where = "<defaults>"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.is_file():
            raise UserError(f"config file '{p}' does not exist; pass a YAML file such as configs/digits.yaml")
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark else ""
            raise UserError(f"{p}: not valid YAML{line}; fix the syntax") from None
        if data is None:
            raise UserError(f"{p}: the config file is empty; give at least one section (e.g. 'seed: 0'), "
                            f"or leave out --config for the built-in defaults")
        if not isinstance(data, dict):
            raise UserError(f"{p}: expected a mapping of sections (data, model, train, ...) at the top level")
    for assignment in overrides:
        _apply_override(data, assignment)
        if assignment.split("=", 1)[0].strip().split(".")[:2] != ["study", "arms"] or assignment.count(".") < 2:
            alone: dict = {}
            _apply_override(alone, assignment)  # a wrong key or type names the override, not the file
            from_dict(ExperimentConfig, alone, f"--set '{assignment}'")
    cfg = from_dict(ExperimentConfig, data, where)
    validate(cfg, where)
    return cfg


def validate(cfg: ExperimentConfig, where: str = "<config>") -> None:
    """Checks across fields that types alone cannot express; all run before any training starts."""
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise UserError(f"{where}: {msg}")
    need(cfg.data.n >= 2, "data.n must be at least 2")
    need(cfg.data.fit == "none" or cfg.data.resolution is not None, "data.fit needs data.resolution")
    need(cfg.train.steps >= 1 and cfg.train.batch_size >= 1, "train.steps and train.batch_size must be >= 1")
    need(cfg.train.checkpoint_every >= 1, "train.checkpoint_every must be >= 1")
    need(0 < cfg.eval.memorization_threshold < 1, "eval.memorization_threshold must be in (0, 1)")
    need(cfg.eval.entropy_k >= 1, "eval.entropy_k must be >= 1")
    need(cfg.eval.n_generated >= 2, "eval.n_generated must be at least 2")
    need(cfg.eval.bootstrap >= 0 and cfg.eval.fid_real >= 0, "eval.bootstrap and eval.fid_real must be >= 0")
    need(cfg.eval.fid_real != 1, "eval.fid_real must be 0 (all) or at least 2 images")
    need(cfg.train.threads >= 0, "train.threads must be >= 0 (0 = torch's default)")
    need(math.isfinite(cfg.train.lr) and cfg.train.lr > 0, f"train.lr must be a positive number, got {cfg.train.lr}")
    need(cfg.sample.steps >= 0 and cfg.sample.batch_size >= 1, "sample.steps >= 0 and sample.batch_size >= 1")
    need(cfg.sample.sampler == "ddpm" or cfg.sample.steps >= 1, "sample.steps must be >= 1 for ddim")
    s = cfg.study
    need(s.cycles >= 1, "study.cycles must be >= 1")
    need(s.workers >= 0, "study.workers must be >= 0 (0 = up to two per CPU core)")
    need(len(set(s.seeds)) == len(s.seeds) and all(x >= 0 for x in s.seeds), "study.seeds: non-negative, each once")
    need(math.isfinite(s.oversample), f"study.oversample must be a finite number, got {s.oversample}")
    need(len(s.paradigms) >= 1 and len(set(s.paradigms)) == len(s.paradigms), "study.paradigms: list each once")
    names = [a.name for a in s.arms]
    need(len(names) >= 1 and len(set(names)) == len(names), "study.arms: give each arm a unique name")
    need(all(n.replace("-", "").replace("_", "").isalnum() for n in names),
         "study.arms: names may hold only letters, digits, '-' and '_'")
    need(s.oversample >= 1.0 or all(a.selector == "random" for a in s.arms),
         f"study.oversample is {s.oversample}: a selector needs r >= 1 candidates per training image")
    need(0.0 < s.fresh_fraction < 1.0 or "fresh" not in s.paradigms, "study.fresh_fraction must be in (0, 1)")
    ph = cfg.phase
    need(len(ph.n) >= 1 and all(x >= 2 for x in ph.n), "phase.n: list training-set sizes of at least 2")
    need(len(ph.steps) >= 1 and all(x >= 1 for x in ph.steps), "phase.steps: list step budgets of at least 1")
    need(ph.cycles >= 1, "phase.cycles must be >= 1")
    for a in s.arms:
        need(a.tau0 > 0 and 0 < a.alpha < 1, f"arm '{a.name}': tdf needs tau0 > 0 and 0 < alpha < 1")
        need(0 <= a.real_anchor < cfg.data.n, f"arm '{a.name}': real_anchor must be between 0 and data.n - 1")
        need(0 < a.reject_fraction < 1 and a.verify_timesteps >= 1 and a.verify_noise >= 1,
             f"arm '{a.name}': selfverify needs 0 < reject_fraction < 1, verify_timesteps and verify_noise >= 1")
        if a.provenance is not None:
            need(0 <= a.provenance.recall <= 1 and 0 <= a.provenance.false_positive < 1,
                 f"arm '{a.name}': provenance needs recall in [0, 1] and false_positive in [0, 1)")


def differing_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted(set(a) | set(b))
                for k in differing_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]


# Keys that cannot change a result (checkpoints are bitwise-resumable; results do not depend on the
# number of worker processes): a run may be resumed with other values.
BOOKKEEPING = ("train.checkpoint_every", "train.keep_checkpoint", "study.workers")


def check_same_config(saved: Path, cfg: ExperimentConfig, what: str, ignore: tuple[str, ...] = ()) -> None:
    """Refuse to reuse ``what`` (a run or model folder) started with another config; name the keys.

    The saved config is read through the current defaults, so keys added since it was written do not
    count as differences; BOOKKEEPING keys and ``ignore`` (dotted keys or sections) never do."""
    if saved.exists():
        skip = BOOKKEEPING + tuple(ignore)
        diff = [k for k in differing_keys(to_dict(load_config(saved)), to_dict(cfg))
                if not any(k == i or k.startswith(i + ".") for i in skip)]
        if diff:
            raise UserError(f"'{what}' was started with a different config ({saved}; differs in "
                            f"{', '.join(diff[:6])}{' ...' if len(diff) > 6 else ''}); pass the same config or "
                            f"choose a new folder")


def claim_folder(folder: Path, cfg: ExperimentConfig, ignore: tuple[str, ...] = (), save: bool = True) -> None:
    """The guard of every output folder (a model, a run, a phase diagram): refuse one started with
    another config (:func:`check_same_config`), else record ``cfg`` there (rank 0) when ``save``."""
    from .layout import RunLayout
    saved = RunLayout(folder).config
    check_same_config(saved, cfg, str(folder), ignore)
    if save and not saved.exists():
        from .distributed import is_main
        if is_main():
            save_config(cfg, saved)


def save_config(cfg: ExperimentConfig, path: Path) -> None:
    """Write the resolved config next to an output (atomically)."""
    from .io import atomic_write_text
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
