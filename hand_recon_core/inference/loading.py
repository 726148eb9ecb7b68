"""A method plus its model, ready for inference: from a training checkpoint or randomly initialised.

Both paths go through the training package's helpers (:func:`hand_recon_core.training.evaluation.load_trained`
for checkpoints, :func:`~hand_recon_core.training.evaluation.build_method_and_model` for random weights), so a
model is rebuilt exactly as ``hand-recon eval`` rebuilds it: strict, weights-only loading.

:func:`model_hash` fingerprints what a network export depends on (method, its keyword arguments, backbone, hand
model, the weights and the source code of the modules the network is built from); the ONNX and TensorRT caches
of :mod:`.backends` are keyed by it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import hand_recon_core

__all__ = ["LoadedModel", "build_random_model", "code_fingerprint", "load_model", "model_hash"]

logger = logging.getLogger(__name__)

#: Sub-packages whose source defines the exported networks (the ONNX graph changes when they do).
_GRAPH_PACKAGES = ("models", "hand_model", "geometry")


@dataclass
class LoadedModel:
    """A method with its model in eval mode.

    Attributes:
        method_name: registered method name.
        method: the method object (``encode_targets`` / ``collate`` / ``predict``).
        model: the ``nn.Module`` (eval mode, on ``device``).
        cfg: the experiment config it was built from.
        hand_model: configured hand model (``"open"``, ``"mano"`` or a path).
        hand_model_id: resolved id (e.g. ``"open-v1-right"``), or the configured name when unresolvable.
        source: checkpoint path, or ``"random"``.
        device: where the model lives.
        random_weights: True when the weights are a random initialisation.
    """

    method_name: str
    method: Any
    model: nn.Module
    cfg: Any
    hand_model: str
    hand_model_id: str
    source: str
    device: torch.device
    random_weights: bool = False
    _hash: str | None = field(default=None, repr=False)

    @property
    def hash(self) -> str:
        """:func:`model_hash` of this model (computed once)."""
        if self._hash is None:
            self._hash = model_hash(self)
        return self._hash


def _identity(hand_model: str) -> str:
    from hand_recon_core.training.checkpoint import hand_model_identity

    return hand_model_identity(hand_model) or str(hand_model)


def load_model(checkpoint: str | Path, device: str | torch.device = "cpu", method: str | None = None,
               hand_model: str | None = None) -> LoadedModel:
    """Load a training checkpoint for inference.

    Args:
        checkpoint: path of a training checkpoint (:mod:`hand_recon_core.training.checkpoint`).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        method: expected method name (None: any registered method).
        hand_model: expected hand model (None: the checkpoint's).

    Raises:
        FileNotFoundError, CheckpointError, MethodMismatchError, HandModelMismatchError, CheckpointMismatchError.
    """
    from hand_recon_core.training.evaluation import load_trained

    dev = resolve_device(device)
    cfg, meth, model, _ = load_trained(checkpoint, dev, method=method, hand_model=hand_model)
    return LoadedModel(cfg.method.name, meth, model.eval(), cfg, cfg.hand_model, _identity(cfg.hand_model),
                       str(checkpoint), dev)


def build_random_model(method_name: str, hand_model: str = "open", device: str | torch.device = "cpu", *,
                       method_kwargs: dict[str, Any] | None = None, backbone: str | None = None,
                       seed: int = 0) -> LoadedModel:
    """Build a method's model with randomly initialised weights (no checkpoint).

    Args:
        method_name: a registered method name, or an experiment YAML file (its ``method``, ``backbone`` and
            ``hand_model`` are used; ``hand_model`` / ``method_kwargs`` / ``backbone`` given here override it).
        hand_model: ``"open"``, ``"mano"`` or a path.
        device: where to put the model.
        method_kwargs: the method's keyword arguments (its defaults otherwise).
        backbone: backbone name (None: the method's default).
        seed: seed of the initialisation (reproducible random weights).

    Returns:
        The model in eval mode with ``random_weights=True``.
    """
    from hand_recon_core.training.config import BackboneConfig, ExperimentConfig, MethodConfig, load_config
    from hand_recon_core.training.evaluation import build_method_and_model

    if str(method_name).endswith((".yaml", ".yml")):
        cfg = load_config(method_name)
        cfg.hand_model = hand_model or cfg.hand_model
        if method_kwargs:
            cfg.method.kwargs = {**cfg.method.kwargs, **method_kwargs}
        if backbone:
            cfg.backbone.name = backbone
    else:
        cfg = ExperimentConfig(experiment="inference", method=MethodConfig(str(method_name), dict(method_kwargs or {})),
                               hand_model=hand_model, backbone=BackboneConfig(name=backbone))
    cfg.backbone.pretrained = None
    if cfg.method.kwargs.get("init_weights"):  # a training-only option (stage-2 initialisation)
        logger.info("%s: ignoring init_weights=%r for randomly initialised inference weights", cfg.method.name,
                    cfg.method.kwargs["init_weights"])
        cfg.method.kwargs["init_weights"] = None
    dev = resolve_device(device)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        meth, model = build_method_and_model(cfg)
    finally:
        torch.random.set_rng_state(state)
    return LoadedModel(cfg.method.name, meth, model.to(dev).eval(), cfg, cfg.hand_model, _identity(cfg.hand_model),
                       "random", dev, random_weights=True)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without CUDA is a clear error."""
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available (torch {torch.__version__}); "
                           "use device='cpu'")
    return dev


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 (hex) of the package version and the ``.py`` sources of :data:`_GRAPH_PACKAGES`."""
    root = Path(hand_recon_core.__file__).resolve().parent
    h = hashlib.sha256(str(hand_recon_core.__version__).encode())
    for package in _GRAPH_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def model_hash(loaded: LoadedModel) -> str:
    """SHA-256 (hex) of everything an exported network depends on.

    Covers the method name and keyword arguments, the backbone, the hand model id, every tensor of the model's
    ``state_dict`` (names, shapes, dtypes, bytes) and :func:`code_fingerprint`. Two checkpoints holding the same
    weights share their exports; retraining, another config or a code change gives a new hash.
    """
    cfg = loaded.cfg
    h = hashlib.sha256()
    spec = {"method": loaded.method_name, "kwargs": dict(cfg.method.kwargs),
            "backbone": getattr(cfg.backbone, "name", None), "hand_model": loaded.hand_model_id}
    h.update(json.dumps(spec, sort_keys=True, default=str).encode())
    for name, tensor in sorted(loaded.model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{tuple(tensor.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    h.update(code_fingerprint().encode())
    return h.hexdigest()
