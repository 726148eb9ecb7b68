"""Options of the inference pipeline and its named constants (no magic numbers in the stages).

Every constant the pipeline relies on when the caller does not say otherwise lives here, with its reason:

* :data:`DEFAULT_FOCAL_RATIO`: the focal length used when no intrinsics are given, ``f = ratio * max(H, W)``
  pixels, principal point at the image centre ``((W - 1) / 2, (H - 1) / 2)`` (pixel centres at integers, the
  project's convention). ``ratio = 1`` is the single-stage paper's fixed camera (``f = 512`` for 512 x 512
  inputs, Eq. 6) and the synthetic ``multi`` family's camera (focal = image side), so a model trained on them
  sees the geometry it was trained with; it corresponds to a 53 degree field of view across the longer image
  side, close to common webcams (55-70 degrees). Metric depth is only as right as the focal length: pass the
  real ``K`` (``CameraInfo``) whenever there is one.
* :class:`PairingConfig` thresholds (:mod:`.pairing`).
* :data:`FALLBACK_DETECTOR`: the randomly initialised detector of :meth:`~.pipeline.Pipeline.default` when the
  packaged checkpoints are missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BACKENDS",
    "BackendOptions",
    "DEFAULT_FOCAL_RATIO",
    "DEFAULT_ASSET_NAMES",
    "DETECTOR_ASSETS",
    "FALLBACK_DETECTOR",
    "PRECISIONS",
    "PairingConfig",
]

#: Focal length / longer image side used when ``K`` is None (module docstring).
DEFAULT_FOCAL_RATIO = 1.0

#: Backends of :mod:`.backends`: eager PyTorch, ``torch.compile``, ONNX Runtime, TensorRT.
BACKENDS = ("torch", "torch_compile", "onnxruntime", "tensorrt")

#: Network precisions a backend may be asked for (``fp16`` only on CUDA: TensorRT, or autocast for torch).
PRECISIONS = ("fp32", "fp16")

#: File names of the packaged default checkpoints under ``hand_recon_core/assets/`` (Pipeline.default()).
DEFAULT_ASSET_NAMES = {"detector": "detector_default.pt", "refiner": "refiner_default.pt"}
#: Packaged default checkpoint of each detector method (``Pipeline.default(detector=...)``): the single-stage
#: detector is the default model, ACR the alternative for scenes of at most one left and one right hand.
DETECTOR_ASSETS = {"single_stage": DEFAULT_ASSET_NAMES["detector"], "acr": "acr_default.pt"}

#: The detector :meth:`Pipeline.default` builds (random weights, loud warning) when no packaged checkpoint
#: exists: the single-stage method with a ResNet-18 at 256 x 256 (the "lite" real-time configuration's size),
#: so the demo stays interactive on a CPU.
FALLBACK_DETECTOR: dict[str, Any] = {
    "method": "single_stage",
    "backbone": "resnet18",
    "method_kwargs": {"input_size": 256, "fuse_channels": 128, "head_channels": 128},
}


@dataclass
class PairingConfig:
    """When a detected left and right hand count as interacting (see :func:`.pairing.find_pairs`).

    A right hand ``r`` and a left hand ``l`` are a *candidate* pair when

    * ``rule="either"`` (default): their 3D wrists are at most ``max_wrist_distance_m`` apart **or** their 2D
      boxes overlap by at least ``min_box_overlap``;
    * ``rule="both"``: both conditions hold;
    * ``rule="wrist"`` / ``rule="box"``: only that condition is used;

    and, when the detector provides an interaction intensity per hand (ACR's interaction field ``lambda``,
    Sec. 3.4 of its paper) and ``use_interaction_field`` is set, additionally ``lambda >= min_interaction``
    for both hands. Among candidates every hand joins at most one pair: the assignment minimising the wrist
    distances (Hungarian algorithm).

    Attributes:
        max_wrist_distance_m: largest 3D wrist-to-wrist distance, metres. 0.25 m is about 1.3 hand lengths
            (adult hand length 0.17-0.19 m): two hands that touch or hold one object have their wrists closer
            than that; two people's hands a table apart do not. Monocular depth is the weakest coordinate, which
            is why the 2D overlap is accepted on its own by the default rule.
        min_box_overlap: smallest box overlap, intersection area / area of the smaller box, in [0, 1]
            (0.05: the boxes genuinely intersect; hands side by side with touching fingertips just reach it).
        rule: ``"either"``, ``"both"``, ``"wrist"`` or ``"box"``.
        use_interaction_field: also require the detector's interaction intensity when it provides one.
        min_interaction: threshold on the interaction intensity (ACR's ``lambda`` in [0, 1]; 0.5: the two
            hands' Gaussian kernels overlap by more than half, the regime the paper's field switches on).
    """

    max_wrist_distance_m: float = 0.25
    min_box_overlap: float = 0.05
    rule: str = "either"
    use_interaction_field: bool = True
    min_interaction: float = 0.5

    def __post_init__(self) -> None:
        if self.rule not in ("either", "both", "wrist", "box"):
            raise ValueError(f"PairingConfig.rule must be 'either', 'both', 'wrist' or 'box', got {self.rule!r}")
        if not self.max_wrist_distance_m >= 0:
            raise ValueError(f"max_wrist_distance_m must be >= 0, got {self.max_wrist_distance_m}")
        if not 0.0 <= self.min_box_overlap <= 1.0:
            raise ValueError(f"min_box_overlap must be in [0, 1], got {self.min_box_overlap}")


@dataclass
class BackendOptions:
    """How the networks run (see :mod:`.backends`).

    Attributes:
        name: one of :data:`BACKENDS`.
        precision: ``fp32`` or ``fp16`` (TensorRT engines; torch autocast on CUDA).
        cache_dir: where ONNX exports and TensorRT plans are cached (None: :func:`.backends.default_cache_dir`).
        allow_fallback: fall back to eager PyTorch (saying so once) when the backend is unavailable, instead of
            raising :class:`.backends.BackendUnavailableError`.
        opset: ONNX opset of the exports.
        max_refiner_batch: largest number of interacting pairs per refiner call in TensorRT's shape profile.
        extra: backend-specific options (``ort_threads``, ``trt_workspace_gb``, ``compile_mode``).
    """

    name: str = "torch"
    precision: str = "fp32"
    cache_dir: str | None = None
    allow_fallback: bool = False
    opset: int = 17
    max_refiner_batch: int = 4
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ValueError(f"unknown backend {self.name!r}; choose one of {BACKENDS}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {PRECISIONS}")
