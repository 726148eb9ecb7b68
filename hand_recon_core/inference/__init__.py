"""Inference: the :class:`Pipeline` every consumer uses (ROS node, ``hand-recon infer``, benchmarks).

Modules: :mod:`.pipeline` (the pipeline), :mod:`.frame` (its output, :class:`HandFrame` / :class:`HandResult`),
:mod:`.config` (options and named constants), :mod:`.inputs` (input validation, default camera),
:mod:`.loading` (models from checkpoints or random weights), :mod:`.adapters` / :mod:`.backends` (eager torch,
``torch.compile``, ONNX Runtime, TensorRT), :mod:`.pairing` (interacting pairs and the two-hand refiner),
:mod:`.tracking` and :mod:`.smoothing` (track ids, One-Euro filtering; pure numpy), :mod:`.two_stage` (the
detect-crop-regress baseline of the scaling benchmark).

Names are imported lazily, so ``from hand_recon_core.inference.frame import HandFrame`` does not load torch models.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module under hand_recon_core.inference
_EXPORTS = {
    "HandFrame": "frame",
    "HandResult": "frame",
    "Pipeline": "pipeline",
    "PairingConfig": "config",
    "BackendOptions": "config",
    "DEFAULT_FOCAL_RATIO": "config",
    "InputError": "inputs",
    "default_intrinsics": "inputs",
    "BackendUnavailableError": "backends",
    "find_pairs": "pairing",
    "HandTracker": "tracking",
    "OneEuroFilter": "smoothing",
    "HandSmoother": "smoothing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
