"""The strict YAML loader and the typed, frozen configs of the stages below selection.

One frozen dataclass per stage (data, model, diffusion, training, sampling, evaluation) and the
``runtime`` section that every stage reads (device, fast kernels, compile, threads, workers).
Defaults live at the field, once, with units in a trailing comment. An unknown key, a duplicate
key or a value of the wrong type is a :class:`~collapse_diffusion.core.errors.UserError` that
names the key and where it came from. A YAML file may say ``base: other.yaml`` to start from
another file and override it. The arms (``selection.registry``) and the experiment config that
composes everything (``loop.experiment``) are built with the same loader.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from .errors import UserError

Source = Literal["digits", "mnist5k", "mnist", "fashion-mnist", "cifar10", "folder", "npz"]
Fit = Literal["none", "pad", "resize"]
Preset = Literal["digits-tiny", "mnist-tiny", "mnist-small", "unet48"]
Sampler = Literal["ddpm", "ddim"]
Extractor = Literal["auto", "classifier", "inception"]


@dataclass(frozen=True)
class DataConfig:
    source: Source = "digits"
    root: str = "data"               # folder of the mnist/fashion-mnist/cifar10 files, or the folder/npz path
    download: bool = False           # mnist, fashion-mnist, cifar10: torchvision downloads; never implicit
    n: int = 256                     # |R| = |D_1|, images
    fit: Fit = "none"                # how images reach data.resolution
    resolution: Optional[int] = None # pixels; None keeps the native size
    train_split: bool = True         # mnist, fashion-mnist, cifar10: the train (True) or the test split


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


@dataclass(frozen=True)
class SampleConfig:
    sampler: Sampler = "ddim"
    steps: int = 50                  # denoising steps (ddpm uses all num_train_timesteps when 0)
    batch_size: int = 512


@dataclass(frozen=True)
class EvalConfig:
    memorization_threshold: float = 1 / 3   # NN1/NN2 ratio below which an image is a copy
    n_generated: int = 512                   # images generated per cycle for every metric (>= r*N candidates)
    bootstrap: int = 200                     # resamples of generated images for the FD interval
    entropy_k: int = 1                       # k of the Kozachenko-Leonenko estimator
    extractor: Extractor = "auto"            # auto: inception when weights exist and images >= 32px
    inception_weights: Optional[str] = None  # path to the TF-FID Inception weights (.pth)
    classifier_steps: int = 600              # training steps of the project's feature classifier
    classifier_lr: float = 2e-3              # its AdamW learning rate
    classifier_weight_decay: float = 1e-4    # its AdamW weight decay
    classifier_batch: int = 128              # its batch size, images
    fid_real: int = 0                        # real images for FD; 0 = every image of the data set (up to 20k)
    probe: bool = True                       # the model probe: memorizer share of D_n (docs/method.md §7)
    membership: bool = True                  # the membership test of memorization (docs/method.md §7b)
    calibration: bool = True                 # the copy rule's recall on the model's own near copies of D_n
    membership_holdout: int = 64             # h: non-members per cycle (real at cycle 1; later the arm selects
                                             # N + h of r*(N + h) candidates and a seeded h are held out)
    membership_draws: int = 8                # noise draws per level, shared by every image
    probe_draws: int = 0                     # the frozen probe's noise draws per image; 0 = ceil(256 / N)
    planted: int = 512                       # copies planted in D_n per cycle: half the model's, half of fixed size


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how fast every stage runs (training, sampling, self-verification, the driver)."""
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    fast: Optional[bool] = None      # bf16 autocast, channels_last, fused AdamW, TF32; None = on for CUDA
    compile: Optional[bool] = None   # torch.compile of the UNet (training and sampling); None = on for CUDA
    threads: int = 0                 # CPU threads of one training/sampling process; 0 = torch's default.
                                     # On CPU the result depends on it (summation order), not on workers
    workers: int = 0                 # parallel CPU processes for a cycle's arms; 0 = up to 2 per core (1 on CUDA)


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (the last one would win silently)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise UserError(f"line {key_node.start_mark.line + 1}: key '{key}' is given twice; keep one")
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``: sections merge key by key, any other value (a list too) replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: str | Path, _chain: tuple = ()) -> dict:
    """The mapping of a YAML config file, its ``base:`` file (relative to it) merged underneath."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file '{p}' does not exist; pass a YAML file such as configs/digits.yaml")
    try:
        data = yaml.load(p.read_bytes().decode("utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError:
        raise UserError(f"{p}: not a text file; pass a YAML config such as configs/digits.yaml") from None
    except UserError as exc:
        raise UserError(f"{p}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{p}: not valid YAML{line}; fix the syntax") from None
    if data is None:
        raise UserError(f"{p}: the config file is empty; give at least one section (e.g. 'seed: 0'), "
                        f"or leave out --config for the built-in defaults")
    if not isinstance(data, dict):
        raise UserError(f"{p}: expected a mapping of sections (data, model, train, ...) at the top level")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise UserError(f"{p}: 'base' must be the path of another config file, got {base!r}")
    parent = (p.parent / base).resolve()
    if parent in _chain or parent == p.resolve():
        raise UserError(f"{p}: 'base: {base}' leads back to itself; break the chain")
    return merge(read_yaml(parent, _chain + (p.resolve(),)), data)


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
        build = getattr(tp, "from_config", None)  # a config that checks its keys by meaning (an arm)
        return build(value, where, f"{key}.") if build else from_dict(tp, value, where, prefix=f"{key}.")
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


def to_dict(cfg: Any) -> Any:
    """Plain YAML-safe dict of a config (tuples become lists); a config with ``to_config`` (an arm)
    writes only the keys it reads, so that the dict loads back strictly."""
    if dataclasses.is_dataclass(cfg):
        keys = cfg.to_config() if hasattr(cfg, "to_config") else [f.name for f in dataclasses.fields(cfg)]
        return {k: to_dict(getattr(cfg, k)) for k in keys}
    if isinstance(cfg, (tuple, list)):
        return [to_dict(x) for x in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(x) for k, x in cfg.items()}
    return cfg


def apply_override(data: dict, assignment: str, defaults_for_lists: Optional[dict] = None) -> None:
    """Set one dotted key; inside a list of named items (study.arms) a key selects the item by name.
    ``defaults_for_lists``: {list key: (section, factory of its default items)} for a list the data lacks."""
    defaults_for_lists = defaults_for_lists or {}
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
        if k in defaults_for_lists and k not in node and node is data.get(defaults_for_lists[k][0]):
            node[k] = defaults_for_lists[k][1]()
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


