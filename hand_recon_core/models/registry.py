"""The method registry: configs name a method, the engine looks it up here.

One registry for the project's five methods (single-stage, ACR, DIR, DGCL, hand-object), in the spirit of
detectron2's meta-architecture registry but deliberately small: a dict from name to class, a decorator, and a
factory. A method is a class registered with ``@register_method("name")`` that implements
:class:`MethodProtocol`::

    @register_method("my-method")
    class MyMethod:
        def __init__(self, num_layers: int = 2, w_joints: float = 1.0): ...   # = method.kwargs of the config
        def build(self, cfg, hand_model_id): ...          # -> nn.Module, forward(batch) -> model_out
        def loss(self, model_out, batch): ...             # -> (total, {"name": scalar tensor, ...})
        def encode_targets(self, sample, train=False): ...  # -> sample (targets; train: augment)
        def collate(self, samples): ...                   # -> batch
        def predict(self, model_out, batch): ...          # -> [per-image prediction dict, ...]

The engine creates the method with ``create_method(name, kwargs)`` (the config's ``method.kwargs`` become the
constructor's keyword arguments, so the constructor *is* the validation of the free dict: an unknown or
missing keyword is a clear error naming the method and its signature), then calls ``build`` once per process.

Methods that live outside :mod:`hand_recon_core` (a user project, the engine's tests) are made visible by
importing their module first: the experiment config's ``imports`` list (module names or ``.py`` files) is
imported with :func:`import_plugins` before the lookup.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from torch import nn

__all__ = [
    "METHODS",
    "BUILTIN_METHOD_MODULES",
    "MethodKwargsError",
    "MethodProtocol",
    "UnknownMethodError",
    "create_method",
    "get_method",
    "import_plugins",
    "register_method",
]

#: Registry: method name -> class implementing :class:`MethodProtocol`.
METHODS: dict[str, type] = {}

#: Modules of the project's own methods, imported on the first lookup of an unregistered name so that the
#: registry is complete without importing every method eagerly.
BUILTIN_METHOD_MODULES: tuple[str, ...] = (
    "hand_recon_core.models.single_stage",
    "hand_recon_core.models.acr",
    "hand_recon_core.models.dir",
    "hand_recon_core.models.dgcl",
)


class UnknownMethodError(KeyError):
    """A config or checkpoint names a method that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class MethodKwargsError(TypeError):
    """The config's ``method.kwargs`` do not fit the method's constructor."""


@runtime_checkable
class MethodProtocol(Protocol):
    """What the training/evaluation engine needs from a method.

    Shapes: ``B`` images per batch, ``N`` hands per image (varies per image), ``V`` hand-model vertices.
    Units and frames follow :mod:`hand_recon_core.data.sample`: metres in the camera (optical) frame for 3D,
    pixels for 2D.

    * ``__init__(**kwargs)``: the config's ``method.kwargs`` (loss weights, head sizes ...). Raise
      ``TypeError``/``ValueError`` for invalid values.
    * ``build(cfg, hand_model_id) -> nn.Module``: the network. ``cfg`` is the whole
      :class:`~hand_recon_core.training.config.ExperimentConfig` (``cfg.backbone.name`` /
      ``cfg.backbone.pretrained`` name the backbone and its weights, ``cfg.method.kwargs`` the method's
      options); ``hand_model_id`` is the configured hand model (``"open"``, ``"mano"`` or a path, as accepted
      by :func:`hand_recon_core.hand_model.loader.load_hand_model`). The module's ``forward(batch)`` takes the
      batch of :meth:`collate` (already moved to the device) and returns ``model_out`` (any structure of
      tensors). It must be deterministic given the RNG state (the engine seeds it).
    * ``loss(model_out, batch) -> (total, parts)``: ``total`` a scalar tensor to minimise; ``parts`` a dict of
      named scalar tensors (or floats) to log, e.g. ``{"joints_3d": ..., "heatmap": ...}``. Called inside the
      autocast region; compute reductions in float32 if they are precision-sensitive.
    * ``encode_targets(sample, train=False) -> sample``: per-sample target encoding (centre heatmaps, part
      segmentation, normalised crops ...) applied by the dataset wrapper in the data-loader workers, on one sample
      of the project's format; may add keys. ``train=True`` only for the training split: random augmentation
      (and any other training-only randomness) happens then and never for validation or ``hand-recon eval``.
      Randomness must come from ``numpy.random`` / ``random`` / ``torch`` global generators, which the wrapper
      seeds per (seed, epoch, index).
    * ``collate(samples) -> batch``: a list of encoded samples to one batch (tensors, lists of tensors, str);
      usually :func:`hand_recon_core.data.sample.collate_samples` plus the method's own keys.
    * ``predict(model_out, batch) -> list[dict]``: one dict per image of the batch, numpy arrays keyed like the
      sample format: ``handedness (N,) int64``, ``score (N,) float``, ``bbox (N, 4) float pixels xyxy``,
      ``keypoints_2d (N, 21, 2) pixels``, ``joints_3d (N, 21, 3) metres camera frame``,
      ``vertices_3d (N, V, 3) metres camera frame`` (in ``hand_model_id``'s vertex order); any key a method
      cannot predict is omitted. Joints are in the canonical ``mano21`` order.
    """

    def build(self, cfg: Any, hand_model_id: str) -> nn.Module: ...

    def loss(self, model_out: Any, batch: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]: ...

    def encode_targets(self, sample: dict[str, Any], train: bool = False) -> dict[str, Any]: ...

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]: ...

    def predict(self, model_out: Any, batch: Mapping[str, Any]) -> list[dict[str, Any]]: ...


_PROTOCOL_METHODS = ("build", "loss", "encode_targets", "collate", "predict")


def register_method(name: str) -> Callable[[type], type]:
    """Class decorator: register a method under ``name``.

    Re-registering the same class (a module imported twice, e.g. by path and by name) is allowed; another
    class under a taken name is an error.

    Args:
        name: the name configs use (``method.name``).

    Raises:
        TypeError: the class lacks a protocol method.
        ValueError: ``name`` is taken by another class.
    """

    def decorator(cls: type) -> type:
        missing = [m for m in _PROTOCOL_METHODS if not callable(getattr(cls, m, None))]
        if missing:
            raise TypeError(f"method {name!r} ({cls.__qualname__}) lacks {missing}; see MethodProtocol")
        old = METHODS.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"method name {name!r} is already registered by {old.__module__}.{old.__qualname__}")
        METHODS[name] = cls
        cls.method_name = name
        return cls

    return decorator


def _import_builtin_methods() -> None:
    for module in BUILTIN_METHOD_MODULES:
        importlib.import_module(module)


def get_method(name: str) -> type:
    """The class registered as ``name`` (importing the project's method modules on a miss).

    Raises:
        UnknownMethodError: naming the registered methods.
    """
    if name not in METHODS:
        _import_builtin_methods()
    if name not in METHODS:
        raise UnknownMethodError(
            f"unknown method {name!r}; registered methods: {sorted(METHODS) or 'none'} (methods defined outside "
            "hand_recon_core must be listed in the config's `imports`)"
        )
    return METHODS[name]


def create_method(name: str, kwargs: Mapping[str, Any] | None = None) -> Any:
    """Instantiate the method ``name`` with the config's ``method.kwargs``.

    Raises:
        UnknownMethodError: unknown name.
        MethodKwargsError: invalid keyword arguments, naming the method and its accepted arguments.
    """
    cls = get_method(name)
    kwargs = dict(kwargs or {})
    signature = inspect.signature(cls)
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        raise MethodKwargsError(f"method {name!r}: invalid method.kwargs {sorted(kwargs)}: {exc}; "
                        f"accepted: {cls.__name__}{signature}") from None
    return cls(**kwargs)


def _module_name_for_file(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    return f"hand_recon_plugin_{path.stem}_{digest}"


def import_plugins(modules: Sequence[str]) -> None:
    """Import modules that register methods (or datasets) defined outside :mod:`hand_recon_core`.

    Args:
        modules: dotted module names, or paths to ``.py`` files (loaded once per process under a name derived
            from the absolute path).

    Raises:
        ModuleNotFoundError / FileNotFoundError: a module or file that does not exist.
    """
    for entry in modules:
        if entry.endswith(".py"):
            path = Path(entry).expanduser().resolve()
            if not path.is_file():
                raise FileNotFoundError(f"imports: no such file {entry!r}")
            name = _module_name_for_file(path)
            if name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
        else:
            importlib.import_module(entry)
