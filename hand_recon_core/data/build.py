"""``build_dataset(spec)``: the one entry point through which the training/evaluation engine gets data.

A spec is a dataset name plus keyword arguments (a :class:`~hand_recon_core.training.config.DatasetSpec`, a
mapping ``{"name": ..., "kwargs": {...}}``, or the command-line string of :func:`parse_dataset_spec`). Names
dispatch to:

* ``synthetic-<family>`` (e.g. ``synthetic-single``, ``synthetic-two-hand``): the synthetic scene engine,
  ``hand_recon_core.data.synthetic.build_synthetic_dataset(family, **kwargs)``, imported lazily;
* the real-dataset loaders of :mod:`hand_recon_core.data.datasets` (``interhand``, ``freihand``, ``ho3d``,
  ``dexycb``, ``rhd``), whose kwargs must include ``root`` and ``split``;
* datasets registered with :func:`register_dataset` (out-of-tree or test datasets, via the config's
  ``imports``).

Every dataset returns samples in the format of :mod:`hand_recon_core.data.sample`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from torch.utils.data import Dataset

__all__ = [
    "SYNTHETIC_PREFIX",
    "build_dataset",
    "dataset_names",
    "parse_dataset_spec",
    "register_dataset",
]

#: Names starting with this prefix are synthetic families (the rest of the name is the family).
SYNTHETIC_PREFIX = "synthetic-"
_SYNTHETIC_MODULE = "hand_recon_core.data.synthetic"

#: Extra datasets: name -> factory(**kwargs) -> Dataset.
_EXTRA: dict[str, Callable[..., Dataset]] = {}


def register_dataset(name: str, factory: Callable[..., Dataset] | None = None):
    """Register ``factory(**kwargs) -> Dataset`` under ``name`` (usable as a decorator).

    Raises:
        ValueError: the name is reserved (``synthetic-*``, a real dataset) or taken by another factory.
    """

    def decorator(fn: Callable[..., Dataset]) -> Callable[..., Dataset]:
        from hand_recon_core.data.datasets import DATASETS

        if name.startswith(SYNTHETIC_PREFIX) or name in DATASETS:
            raise ValueError(f"dataset name {name!r} is reserved")
        old = _EXTRA.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"dataset name {name!r} is already registered by {old.__module__}.{old.__qualname__}")
        _EXTRA[name] = fn
        return fn

    return decorator if factory is None else decorator(factory)


def dataset_names() -> list[str]:
    """Known names: real datasets, registered extras, and the ``synthetic-<family>`` pattern."""
    from hand_recon_core.data.datasets import DATASETS

    return sorted(DATASETS) + sorted(_EXTRA) + [f"{SYNTHETIC_PREFIX}<family>"]


def _name_kwargs(spec: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        spec = parse_dataset_spec(spec)
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"name", "kwargs"}
        if unknown:
            raise ValueError(f"dataset spec: unknown keys {sorted(unknown)}; valid keys: ['kwargs', 'name']")
        return str(spec["name"]), dict(spec.get("kwargs") or {})
    return str(spec.name), dict(spec.kwargs or {})


def build_dataset(spec: Any) -> Dataset:
    """Build the dataset a spec names.

    Args:
        spec: a ``DatasetSpec``, a mapping ``{"name": str, "kwargs": dict}`` or a spec string
            (``"name:key=value,..."`` or a YAML file; see :func:`parse_dataset_spec`).

    Returns:
        A map-style ``torch.utils.data.Dataset`` of :mod:`hand_recon_core.data.sample` samples.

    Raises:
        KeyError: unknown name (listing the known ones).
        ValueError: a real dataset without ``root``/``split``.
        ModuleNotFoundError: a ``synthetic-*`` name while the synthetic engine is not installed.
    """
    name, kwargs = _name_kwargs(spec)
    if name in _EXTRA:
        return _EXTRA[name](**kwargs)
    if name.startswith(SYNTHETIC_PREFIX):
        family = name[len(SYNTHETIC_PREFIX):]
        try:
            module = importlib.import_module(_SYNTHETIC_MODULE)
        except ModuleNotFoundError as exc:
            if exc.name != _SYNTHETIC_MODULE:
                raise
            raise ModuleNotFoundError(f"dataset {name!r} needs the synthetic data engine ({_SYNTHETIC_MODULE}), "
                                      "which is not available in this installation", name=exc.name) from None
        builder = getattr(module, "build_synthetic_dataset", None)
        if builder is None:
            raise ModuleNotFoundError(f"dataset {name!r}: {_SYNTHETIC_MODULE} has no build_synthetic_dataset",
                                      name=_SYNTHETIC_MODULE)
        return builder(family, **kwargs)
    from hand_recon_core.data.datasets import DATASETS
    from hand_recon_core.data.datasets import build_dataset as build_real

    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {dataset_names()}")
    missing = [k for k in ("root", "split") if k not in kwargs]
    if missing:
        raise ValueError(f"dataset {name!r} needs kwargs {missing} (e.g. {name}:root=/data/{name},split=...)")
    root, split = kwargs.pop("root"), kwargs.pop("split")
    return build_real(name, root, split, **kwargs)


def parse_dataset_spec(text: str) -> dict[str, Any]:
    """Parse a command-line dataset spec.

    Forms:
        * ``name`` or ``name:key=value,key=value`` — values are parsed as YAML scalars (``count=64`` is an
          int, ``root=/data/x`` a string); values cannot contain commas (use a YAML file for those).
        * a path to a ``.yaml``/``.yml`` file holding ``{name: ..., kwargs: {...}}``.

    Returns:
        ``{"name": str, "kwargs": dict}``.

    Raises:
        ValueError: malformed spec.
    """
    text = text.strip()
    if text.endswith((".yaml", ".yml")):
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"dataset spec file not found: {text}")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict) or "name" not in data:
            raise ValueError(f"{text}: a dataset spec file must be a mapping with 'name' (and 'kwargs')")
        unknown = set(data) - {"name", "kwargs"}
        if unknown:
            raise ValueError(f"{text}: unknown keys {sorted(unknown)}; valid keys: ['kwargs', 'name']")
        return {"name": str(data["name"]), "kwargs": dict(data.get("kwargs") or {})}
    name, _, rest = text.partition(":")
    if not name:
        raise ValueError(f"dataset spec {text!r}: empty name")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"dataset spec {text!r}: {item!r} is not key=value")
        kwargs[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return {"name": name, "kwargs": kwargs}
