"""Experiment configuration: YAML files validated into dataclasses, with dotted ``key=value`` overrides.

A config file is a YAML mapping with the fields of :class:`ExperimentConfig` (nested mappings for the nested
dataclasses). ``_base_: other.yaml`` (or a list of files, relative to the including file) is merged first,
recursively; the including file's keys win, mappings are merged key by key. Every key is checked: an unknown
key is an error naming the key and the valid ones, a value of the wrong type is an error naming the key and
the expected type. Free dicts (``method.kwargs``, ``data.*.kwargs``) accept any keys; they are validated by
the method / dataset they are passed to.

Overrides (command line, after the YAML): ``optim.lr=1e-4 data.train.kwargs.count=64 schedule.milestones=[30,90]``.
The value is parsed as YAML and then converted to the type of the dataclass field (``1e-4`` becomes a float for
a float field, ``64`` stays a string for a str field); ``null`` / ``none`` sets an optional field to None.
Inside a free dict the parsed YAML value is used as is.

Schema (defaults in brackets)::

    experiment: str                         name of the run (required)
    imports: [str]                          modules / .py files registering out-of-tree methods [[]]
    method: {name: str, kwargs: {}}         registered method and its keyword arguments
    hand_model: str                         "open" | "mano" | path to a hand model ["open"]
    backbone: {name: str|null, pretrained: str|null}   backbone name for the method; weights path [null]
    data:
      train: {name: str, kwargs: {}}        dataset spec (see hand_recon_core.data.build)
      val: {name: str, kwargs: {}} | null   validation dataset [null]
      batch_size: int [32]   val_batch_size: int|null [= batch_size]   num_workers: int [2]
      drop_last: bool [true]
    optim: {name: adam|adamw|sgd [adam], lr [1e-4], weight_decay [0.0], betas [[0.9, 0.999]], eps [1e-8],
            momentum [0.9], nesterov [false]}
    schedule:
      name: none | plateau | cosine | step  [none]
      # plateau: lr *= factor when `monitor` has not improved by more than `threshold` for `patience`
      #          consecutive validations; never below min_lr
      factor [0.5]  patience [4]  threshold [1e-4]  monitor ["val/loss"]  mode: min|max [min]  min_lr [0.0]
      # cosine: linear warm-up over warmup_steps from warmup_start_factor * lr, then cosine to min_lr at the end
      warmup_steps [0]  warmup_start_factor [0.0]
      # step: lr *= gamma at each milestone (or every `every` units); unit: epoch|step
      milestones [[]]  every [null]  gamma [0.1]  unit [epoch]
    train:
      epochs: int|null [null]   max_steps: int|null [null]   (at least one; training stops at the first reached)
      precision: fp32 | bf16 | fp16 [fp32]    grad_clip_norm: float|null [null]
      device: auto | cpu | cuda [auto]        deterministic: bool [false]
      val_every_epochs: int|null [1]          val_every_steps: int|null [null]
    checkpoint: {every_steps: int|null [null], every_epochs: int|null [1], keep_last: int|null [3]}
    log: {every_steps [20], tensorboard [true], progress [true], curves [true]}
    seed: int [0]
    output_dir: str ["runs/{experiment}"]   ({experiment} is replaced by the experiment name)
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BackboneConfig",
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "DatasetSpec",
    "ExperimentConfig",
    "LogConfig",
    "MethodConfig",
    "OptimConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "parse_override",
]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "plateau", "cosine", "step")
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """An invalid configuration: unknown key, wrong type or invalid value (the message names the key)."""


@dataclass
class MethodConfig:
    """The method: a name in :mod:`hand_recon_core.models.registry` and its constructor's keyword arguments."""

    name: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class BackboneConfig:
    """Backbone of the method (``name`` as in ``build_backbone``) and optional pretrained weights (a path)."""

    name: str | None = None
    pretrained: str | None = None


@dataclass
class DatasetSpec:
    """A dataset by name plus its keyword arguments, for :func:`hand_recon_core.data.build.build_dataset`."""

    name: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Training and validation data and loading."""

    train: DatasetSpec = field(default_factory=DatasetSpec)
    val: DatasetSpec | None = None
    batch_size: int = 32
    val_batch_size: int | None = None
    num_workers: int = 2
    drop_last: bool = True


@dataclass
class OptimConfig:
    """Optimiser; ``betas``/``eps`` for Adam(W), ``momentum``/``nesterov`` for SGD."""

    name: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    momentum: float = 0.9
    nesterov: bool = False


@dataclass
class ScheduleConfig:
    """Learning-rate schedule (see :mod:`hand_recon_core.training.schedules`)."""

    name: str = "none"
    # plateau
    factor: float = 0.5
    patience: int = 4
    threshold: float = 1e-4
    monitor: str = "val/loss"
    mode: str = "min"
    min_lr: float = 0.0
    # cosine
    warmup_steps: int = 0
    warmup_start_factor: float = 0.0
    # step
    milestones: list[int] = field(default_factory=list)
    every: int | None = None
    gamma: float = 0.1
    unit: str = "epoch"


@dataclass
class TrainConfig:
    """Length of training, precision, clipping, device and validation cadence."""

    epochs: int | None = None
    max_steps: int | None = None
    precision: str = "fp32"
    grad_clip_norm: float | None = None
    device: str = "auto"
    deterministic: bool = False
    val_every_epochs: int | None = 1
    val_every_steps: int | None = None


@dataclass
class CheckpointConfig:
    """When to write checkpoints (rank 0) and how many step checkpoints to keep (None: all)."""

    every_steps: int | None = None
    every_epochs: int | None = 1
    keep_last: int | None = 3


@dataclass
class LogConfig:
    """Logging: CSV always; TensorBoard when installed; tqdm bars and the curves PNG on rank 0."""

    every_steps: int = 20
    tensorboard: bool = True
    progress: bool = True
    curves: bool = True


@dataclass
class ExperimentConfig:
    """One experiment (see the module docstring for the YAML schema)."""

    experiment: str = ""
    method: MethodConfig = field(default_factory=MethodConfig)
    data: DataConfig = field(default_factory=DataConfig)
    imports: list[str] = field(default_factory=list)
    hand_model: str = "open"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    seed: int = 0
    output_dir: str = "runs/{experiment}"

    def resolved_output_dir(self) -> Path:
        """``output_dir`` with ``{experiment}`` substituted."""
        return Path(self.output_dir.replace("{experiment}", self.experiment))

    def validate(self) -> None:
        """Check values beyond types (choices, ranges, required fields).

        Raises:
            ConfigError: naming the offending key.
        """
        _require(bool(self.experiment), "experiment", "must be a non-empty name")
        _require(bool(self.method.name), "method.name", "must name a registered method")
        _require(bool(self.data.train.name), "data.train.name", "must name a dataset")
        _require(self.data.batch_size > 0, "data.batch_size", "must be > 0")
        _require(self.data.val_batch_size is None or self.data.val_batch_size > 0, "data.val_batch_size",
                 "must be > 0")
        _require(self.data.num_workers >= 0, "data.num_workers", "must be >= 0")
        _choice(self.optim.name, OPTIMIZERS, "optim.name")
        _require(self.optim.lr > 0, "optim.lr", "must be > 0")
        _require(self.optim.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
        _require(len(self.optim.betas) == 2 and all(0 <= b < 1 for b in self.optim.betas), "optim.betas",
                 "must be two numbers in [0, 1)")
        s = self.schedule
        _choice(s.name, SCHEDULES, "schedule.name")
        _require(0 < s.factor < 1, "schedule.factor", "must be in (0, 1)")
        _require(s.patience >= 0, "schedule.patience", "must be >= 0")
        _require(s.threshold >= 0, "schedule.threshold", "must be >= 0")
        _choice(s.mode, ("min", "max"), "schedule.mode")
        _require(s.min_lr >= 0, "schedule.min_lr", "must be >= 0")
        _require(s.warmup_steps >= 0, "schedule.warmup_steps", "must be >= 0")
        _require(0 <= s.warmup_start_factor <= 1, "schedule.warmup_start_factor", "must be in [0, 1]")
        _require(list(s.milestones) == sorted(s.milestones), "schedule.milestones", "must be increasing")
        _require(s.every is None or s.every > 0, "schedule.every", "must be > 0")
        _require(s.gamma > 0, "schedule.gamma", "must be > 0")
        _choice(s.unit, ("epoch", "step"), "schedule.unit")
        _require(s.name != "step" or bool(s.milestones) or s.every is not None, "schedule.milestones",
                 "the step schedule needs milestones or every")
        t = self.train
        _require(t.epochs is not None or t.max_steps is not None, "train.epochs",
                 "set train.epochs or train.max_steps")
        _require(t.epochs is None or t.epochs > 0, "train.epochs", "must be > 0")
        _require(t.max_steps is None or t.max_steps > 0, "train.max_steps", "must be > 0")
        _choice(t.precision, PRECISIONS, "train.precision")
        _choice(t.device, DEVICES, "train.device")
        _require(t.grad_clip_norm is None or t.grad_clip_norm > 0, "train.grad_clip_norm", "must be > 0")
        for key in ("val_every_epochs", "val_every_steps"):
            value = getattr(t, key)
            _require(value is None or value > 0, f"train.{key}", "must be > 0 or null")
        c = self.checkpoint
        for key in ("every_steps", "every_epochs", "keep_last"):
            value = getattr(c, key)
            _require(value is None or value > 0, f"checkpoint.{key}", "must be > 0 or null")
        _require(self.log.every_steps > 0, "log.every_steps", "must be > 0")


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config key {key!r}: {message}")


def _choice(value: str, choices: Sequence[str], key: str) -> None:
    _require(value in choices, key, f"{value!r} is not one of {list(choices)}")


# ------------------------------------------------------------------------------------------------------------
# dict <-> dataclass
# ------------------------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML value (or override string) to the field type ``tp``; raise ConfigError otherwise."""
    optional, inner = _is_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("null", "none", "~")):
        if optional:
            return None
        raise ConfigError(f"config key {key!r}: may not be null (expected {_type_name(inner)})")
    if dataclasses.is_dataclass(inner):
        if isinstance(value, inner):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {value!r}")
        return _from_dict(inner, value, key)
    origin = typing.get_origin(inner)
    if origin is list:
        (elem,) = typing.get_args(inner)
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"config key {key!r}: expected a list, got {value!r}")
        return [_convert(v, elem, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip() else {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {value!r}")
        return copy.deepcopy(dict(value))
    if inner is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.strip().lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"config key {key!r}: expected a bool, got {value!r}")
    if inner is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r}: expected an int, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r}: expected an int, got {value!r}")
    if inner is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r}: expected a number, got {value!r}")
    if inner is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key {key!r}: expected a string, got {value!r}")
    raise ConfigError(f"config key {key!r}: unsupported field type {_type_name(tp)}")  # pragma: no cover


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _from_dict(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    fields = _fields(cls)
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            raise ConfigError(f"unknown config key {full!r}; valid keys{' of ' + repr(prefix) if prefix else ''}: "
                              f"{sorted(fields)}")
        kwargs[key] = _convert(value, fields[key], full)
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any], validate: bool = True) -> ExperimentConfig:
    """Build and (optionally) validate an :class:`ExperimentConfig` from a plain mapping.

    Raises:
        ConfigError: unknown key, wrong type or (with ``validate``) invalid value.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a mapping, got {type(data).__name__}")
    cfg = _from_dict(ExperimentConfig, data)
    if validate:
        cfg.validate()
    return cfg


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config as plain dicts/lists/scalars (YAML- and ``torch.load(weights_only=True)``-safe)."""
    return dataclasses.asdict(cfg)


# ------------------------------------------------------------------------------------------------------------
# YAML files and overrides
# ------------------------------------------------------------------------------------------------------------


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"_base_ cycle: {' -> '.join(str(p) for p in (*seen, path))}")
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping, got {type(data).__name__}")
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    merged: dict[str, Any] = {}
    for base in bases:
        merged = _deep_merge(merged, _read_yaml(path.parent / base, (*seen, path)))
    return _deep_merge(merged, data)


def parse_override(text: str) -> tuple[list[str], str]:
    """Split ``"a.b.c=value"`` into ``(["a", "b", "c"], "value")``.

    Raises:
        ConfigError: no ``=`` or an empty key.
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (dotted keys, e.g. optim.lr=1e-4)")
    key, value = text.split("=", 1)
    parts = key.strip().split(".")
    if not key.strip() or any(not p for p in parts):
        raise ConfigError(f"override {text!r}: empty key")
    return parts, value


def _set_override(node: Any, cls: Any, parts: list[str], raw: str, done: list[str]) -> Any:
    """Return ``node`` (a dict-form config subtree of type ``cls``) with the override applied."""
    full = ".".join(done + parts[:1])
    optional, inner = _is_optional(cls)
    if dataclasses.is_dataclass(inner):
        fields = _fields(inner)
        key = parts[0]
        if key not in fields:
            where = f" of {'.'.join(done)!r}" if done else ""
            raise ConfigError(f"unknown config key {full!r}; valid keys{where}: {sorted(fields)}")
        node = {} if node is None else node
        if not isinstance(node, dict):
            raise ConfigError(f"config key {'.'.join(done)!r}: expected a mapping, got {node!r}")
        if len(parts) == 1:
            node[key] = _convert(raw, fields[key], full)
        else:
            node[key] = _set_override(node.get(key), fields[key], parts[1:], raw, done + [key])
        return node
    if typing.get_origin(inner) is dict:
        node = {} if node is None else node
        if not isinstance(node, dict):
            raise ConfigError(f"config key {'.'.join(done)!r}: expected a mapping, got {node!r}")
        if len(parts) == 1:
            node[parts[0]] = yaml.safe_load(raw) if raw.strip() else ""
        else:
            node[parts[0]] = _set_override(node.get(parts[0]), dict[str, Any], parts[1:], raw, done + parts[:1])
        return node
    raise ConfigError(f"config key {'.'.join(done)!r} is a {_type_name(cls)}, it has no sub-key {parts[0]!r}")


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides to a dict-form config (typed by the :class:`ExperimentConfig` fields).

    Args:
        data: config as a plain mapping (e.g. from YAML).
        overrides: strings ``"dotted.key=value"``.

    Returns:
        A new dict; validate it with :func:`config_from_dict`.

    Raises:
        ConfigError: unknown key (listing the valid ones) or a value of the wrong type.
    """
    out = copy.deepcopy(dict(data))
    for text in overrides:
        parts, raw = parse_override(text)
        out = _set_override(out, ExperimentConfig, parts, raw, [])
    return out


def load_config(path: str | Path | None = None, overrides: Sequence[str] = (),
                base: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Read a YAML config (with ``_base_`` includes), apply overrides, validate.

    Args:
        path: the YAML file; None starts from ``base`` (e.g. a checkpoint's stored config) or the defaults.
        overrides: ``key=value`` strings applied after the file.
        base: a dict-form config merged under the file.

    Returns:
        The validated config.

    Raises:
        FileNotFoundError: missing file. ConfigError: invalid content.
    """
    data: dict[str, Any] = copy.deepcopy(dict(base or {}))
    if path is not None:
        data = _deep_merge(data, _read_yaml(Path(path)))
    data = apply_overrides(data, overrides)
    return config_from_dict(data)
