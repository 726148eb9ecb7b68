"""Parameters of ``hand_recon_node``: one table of specifications, validation and the typed configuration.

Pure Python (no rclpy): the node turns every :class:`ParamSpec` into a declared ROS parameter with a
``ParameterDescriptor`` (description, range, allowed values) and validates values with the functions here, at
configure time and in its set-parameters callback. ``config/hand_recon.yaml`` and the README's parameter table
list the same names and defaults (a test checks both against :data:`RECON_PARAMS`).

When a parameter takes effect (:attr:`ParamSpec.applies`):

* ``live``: at once, on the next frame (thresholds, frames, tracking, smoothing, warnings);
* ``activate``: on the next ``activate`` transition (input QoS, synchronisation);
* ``configure``: on the next ``configure`` transition (the model);
* ``start``: read once, when the node starts.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields
from typing import Any

from hand_recon_core.inference.config import BACKENDS

#: Allowed values of the choice parameters (the backends are the pipeline's own list).
DEVICES_PATTERN = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")
REFINERS = ("auto", "none", "dir", "dgcl")
RELIABILITIES = ("best_effort", "reliable")
#: TF frame prefixes: what REP-105 / tf2 accept in a frame id (no leading slash, no spaces).
FRAME_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter.

    Attributes:
        name: ROS parameter name (dots group parameters in YAML).
        default: default value; its Python type (bool, int, float, str) is the parameter's type.
        description: one line for the descriptor and the README.
        min_value: inclusive lower bound of a numeric parameter (None: unbounded).
        max_value: inclusive upper bound of a numeric parameter (None: unbounded).
        choices: allowed values of a string parameter (None: free text, see :func:`validate_value`).
        applies: ``"live"``, ``"activate"``, ``"configure"`` or ``"start"`` (see the module docstring).
        unit: unit shown in the README (``"s"``, ``"px"`` ...), empty when none.
    """

    name: str
    default: Any
    description: str
    min_value: float | int | None = None
    max_value: float | int | None = None
    choices: tuple[str, ...] | None = None
    applies: str = "live"
    unit: str = ""

    @property
    def type(self) -> type:
        """The parameter's Python type."""
        return type(self.default)

    @property
    def attr(self) -> str:
        """The :class:`ReconConfig` attribute holding the value (dots become underscores)."""
        return self.name.replace(".", "_")


RECON_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("autostart", True, "configure and activate at start-up (false: wait for a lifecycle manager)",
              applies="start"),
    ParamSpec("model.checkpoint", "", "checkpoint file of the detector (empty: model.method, or the packaged "
              "default model)", applies="configure"),
    ParamSpec("model.method", "", "detector method without model.checkpoint: its packaged default when there "
              "is one (single_stage, acr), else random weights (testing only); empty: the packaged default model",
              applies="configure"),
    ParamSpec("model.hand_model", "", "hand model: 'open' (shipped), 'mano' (official files in model.mano_dir) "
              "or a hand-model file (empty: the checkpoint's, 'open' without one)", applies="configure"),
    ParamSpec("model.mano_dir", "", "folder of MANO_RIGHT.pkl / MANO_LEFT.pkl when model.hand_model is 'mano' "
              "(empty: $HAND_RECON_MANO_DIR)", applies="configure"),
    ParamSpec("model.refiner", "auto", "two-hand refiner of interacting pairs (auto: the packaged one with the "
              "default model, none otherwise)", choices=REFINERS, applies="configure"),
    ParamSpec("model.refiner_checkpoint", "", "checkpoint of model.refiner (empty: random weights, testing "
              "only)", applies="configure"),
    ParamSpec("model.device", "cpu", "inference device: cpu, cuda, cuda:N or auto (CUDA when available; "
              "cuda without CUDA falls back to cpu, said once)", applies="configure"),
    ParamSpec("model.backend", "torch", "inference backend", choices=BACKENDS, applies="configure"),
    ParamSpec("model.free_gpu_on_deactivate", False, "release the model and the CUDA cache on deactivate "
              "(reloaded on activate)", applies="live"),
    ParamSpec("score_threshold", 0.5, "hands below this detection score are not published (the model decodes "
              "with the value of configure time: lowering it below that needs a new configure)", 0.0, 1.0),
    ParamSpec("max_hands", 10, "most hands published per image, highest scores first (raising it above the "
              "value of configure time needs a new configure)", 1, 64),
    ParamSpec("frame_prefix", "hand_", "prefix of the TF frames <prefix><id>_<left|right>_wrist "
              "(letters, digits, underscores)"),
    ParamSpec("publish_joint_frames", False, "also broadcast one TF frame per joint "
              "(<prefix><id>_<side>_<joint name>)"),
    ParamSpec("tracking.enabled", True, "assign stable track ids across frames (off: ids are detection "
              "slots)"),
    ParamSpec("smoothing.enabled", True, "One-Euro filter of joints, vertices and keypoints per track "
              "(needs tracking)"),
    ParamSpec("smoothing.min_cutoff", 1.0, "One-Euro minimum cutoff frequency (lower: smoother at rest)",
              1e-3, 100.0, unit="Hz"),
    ParamSpec("smoothing.beta", 10.0, "One-Euro speed coefficient: cutoff increase per m/s of mean joint speed "
              "(higher: less lag when moving)", 0.0, 1000.0, unit="s/m"),
    ParamSpec("smoothing.d_cutoff", 1.0, "One-Euro cutoff frequency of the derivative", 1e-3, 100.0, unit="Hz"),
    ParamSpec("max_image_side", 4096, "images wider or taller than this are rejected", 16, 16384, unit="px"),
    ParamSpec("qos.reliability", "best_effort", "reliability of the image and camera_info subscriptions "
              "(best_effort = sensor data QoS)", choices=RELIABILITIES, applies="activate"),
    ParamSpec("qos.depth", 5, "history depth of the input subscriptions", 1, 100, applies="activate"),
    ParamSpec("sync.queue_size", 10, "images / camera infos kept while looking for a stamp match", 1, 100,
              applies="activate"),
    ParamSpec("sync.slop", 0.01, "largest stamp difference of a matched image / camera info pair",
              0.0, 1.0, unit="s", applies="activate"),
    ParamSpec("sync.wait", 0.03, "how long an image waits for its camera info before the latest camera info "
              "is used", 0.0, 1.0, unit="s"),
    ParamSpec("no_image_warning_period", 5.0, "warn when no image arrived for this long (0: never)",
              0.0, 3600.0, unit="s"),
    ParamSpec("diagnostics_period", 1.0, "period of the /diagnostics status", 0.1, 60.0, unit="s",
              applies="configure"),
    ParamSpec("overlay.alpha", 0.6, "mesh opacity in the ~/overlay image", 0.0, 1.0),
)

#: Specs by name.
PARAMS_BY_NAME: dict[str, ParamSpec] = {p.name: p for p in RECON_PARAMS}


@dataclass(frozen=True)
class ReconConfig:
    """The node's parameters as typed attributes (see :data:`RECON_PARAMS` for meanings and units)."""

    autostart: bool
    model_checkpoint: str
    model_method: str
    model_hand_model: str
    model_mano_dir: str
    model_refiner: str
    model_refiner_checkpoint: str
    model_device: str
    model_backend: str
    model_free_gpu_on_deactivate: bool
    score_threshold: float
    max_hands: int
    frame_prefix: str
    publish_joint_frames: bool
    tracking_enabled: bool
    smoothing_enabled: bool
    smoothing_min_cutoff: float
    smoothing_beta: float
    smoothing_d_cutoff: float
    max_image_side: int
    qos_reliability: str
    qos_depth: int
    sync_queue_size: int
    sync_slop: float
    sync_wait: float
    no_image_warning_period: float
    diagnostics_period: float
    overlay_alpha: float

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> ReconConfig:
        """Build from ``{parameter name: value}``; missing names take their defaults.

        Raises:
            ValueError: a value fails :func:`validate_value` or the combination fails :func:`validate_config`
                (all reasons, one per line).
        """
        merged = defaults()
        merged.update(values)
        errors = [e for n, v in merged.items() if n in PARAMS_BY_NAME for e in [validate_value(n, v)] if e]
        errors += validate_config(merged) if not errors else []
        if errors:
            raise ValueError("\n".join(errors))
        spec_types = {p.attr: p.type for p in RECON_PARAMS}
        return cls(**{f.name: spec_types[f.name](merged[_name_of(f.name)]) for f in fields(cls)})

    def replace(self, values: dict[str, Any]) -> ReconConfig:
        """A copy with ``{parameter name: value}`` changed (validated like :meth:`from_values`)."""
        current = {p.name: getattr(self, p.attr) for p in RECON_PARAMS}
        current.update(values)
        return ReconConfig.from_values(current)

    def as_values(self) -> dict[str, Any]:
        """``{parameter name: value}``."""
        return {p.name: getattr(self, p.attr) for p in RECON_PARAMS}


def _name_of(attr: str) -> str:
    for p in RECON_PARAMS:
        if p.attr == attr:
            return p.name
    raise KeyError(attr)


def defaults() -> dict[str, Any]:
    """``{parameter name: default}`` of every node parameter."""
    return {p.name: p.default for p in RECON_PARAMS}


def validate_value(name: str, value: Any) -> str | None:
    """Check one value against its spec.

    Args:
        name: parameter name.
        value: candidate value (ints are accepted for float parameters).

    Returns:
        None when valid, else the reason (naming the parameter and the allowed values).
    """
    spec = PARAMS_BY_NAME.get(name)
    if spec is None:
        return f"{name}: unknown parameter"
    expected = spec.type
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not expected:
        return f"{name}: expected {expected.__name__}, got {type(value).__name__} {value!r}"
    if expected is float and not math.isfinite(value):
        return f"{name}: must be finite, got {value!r}"
    if spec.min_value is not None and value < spec.min_value:
        return f"{name}: {value!r} is below the minimum {spec.min_value}"
    if spec.max_value is not None and value > spec.max_value:
        return f"{name}: {value!r} is above the maximum {spec.max_value}"
    if spec.choices is not None and value not in spec.choices:
        return f"{name}: {value!r} is not one of {', '.join(spec.choices)}"
    if name == "model.device" and not DEVICES_PATTERN.match(value):
        return f"{name}: {value!r} is not cpu, cuda, cuda:N or auto"
    if name == "frame_prefix" and not FRAME_PREFIX_PATTERN.match(value):
        return f"{name}: {value!r} may hold letters, digits and underscores only"
    return None


def validate_config(values: dict[str, Any], check_files: bool = False) -> list[str]:
    """Check a complete set of values for combinations that cannot work.

    Args:
        values: ``{parameter name: value}`` with every parameter (each already valid on its own).
        check_files: also require the named checkpoint / MANO files to exist (done at configure time, not on
            every parameter change).

    Returns:
        The reasons, empty when the combination is valid.
    """
    errors = []
    if values["model.backend"] == "tensorrt" and values["model.device"] == "cpu":
        errors.append("model.backend: tensorrt needs model.device cuda (or auto)")
    if values["model.refiner_checkpoint"] and values["model.refiner"] in ("none", "auto"):
        errors.append(f"model.refiner_checkpoint is set but model.refiner is {values['model.refiner']!r} "
                      "(name the refiner: dir or dgcl)")
    if values["smoothing.enabled"] and not values["tracking.enabled"]:
        errors.append("smoothing.enabled needs tracking.enabled (filters are kept per track)")
    if check_files:
        for name in ("model.checkpoint", "model.refiner_checkpoint"):
            if values[name] and not os.path.isfile(values[name]):
                errors.append(f"{name}: no such file {values[name]!r}")
        if values["model.hand_model"] == "mano":
            from hand_recon_core.hand_model.loader import MANO_DIR_ENV

            folder = values["model.mano_dir"] or os.environ.get(MANO_DIR_ENV, "")
            if not folder or not os.path.isdir(folder):
                errors.append(f"model.hand_model 'mano' needs model.mano_dir (or ${MANO_DIR_ENV}) naming the "
                              f"folder of MANO_RIGHT.pkl / MANO_LEFT.pkl (got {folder!r})")
    return errors


def hand_model_spec(config: ReconConfig) -> str | None:
    """The ``hand_model`` argument of the pipeline: ``"open"``, ``"mano"``, a MANO folder or a file path.

    None when ``model.hand_model`` is empty (the checkpoint's model).
    """
    if config.model_hand_model == "mano":
        return config.model_mano_dir or "mano"
    return config.model_hand_model or None
