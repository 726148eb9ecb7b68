"""``hand_recon_node``: camera images in; HandMeshArray, TF, RViz markers, overlay and diagnostics out.

A managed (lifecycle) node over :class:`hand_recon_core.inference.Pipeline`; it holds no model logic.

Lifecycle
    ``configure``: validate the parameters, build / load the model, create the publishers;
    ``activate``: subscribe to ``image`` and ``camera_info`` and start the worker thread;
    ``deactivate``: unsubscribe, stop the worker, clear RViz (optionally release the model and the CUDA cache);
    ``cleanup`` / ``shutdown``: drop the model and the publishers. With ``autostart`` (default) the node
    configures and activates itself at start-up.

Inputs (remap them to the camera): ``image`` (``sensor_msgs/Image``: rgb8, bgr8, rgba8, bgra8 or mono8) and
``camera_info`` (``sensor_msgs/CameraInfo``), sensor-data QoS unless ``qos.*`` say otherwise. Each image is paired
with the camera info of the same stamp (approximate-time, ``sync.*``); an image left without one for ``sync.wait``
seconds uses the latest camera info, and without any camera info the pipeline's default focal length is used
(said once). Only the newest image waits for the model: a slow model drops frames (counted), never queues them.

Outputs, stamped with the input image's header: ``~/hands`` (``hand_recon_ros/HandMeshArray``),
``~/faces/right`` and ``~/faces/left`` (``shape_msgs/Mesh`` triangles, transient-local, once per hand model),
``/tf`` (optical frame -> ``<prefix><id>_<side>_wrist`` [-> joints]), ``~/markers``
(``visualization_msgs/MarkerArray``), ``~/overlay`` (``sensor_msgs/Image``, rendered only while subscribed) and
``/diagnostics``. Parameters: :mod:`hand_recon_ros.params` (and the README).

Bad input never stops the node: it is logged (throttled per reason), counted and skipped.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from shape_msgs.msg import Mesh, MeshTriangle

from hand_recon_core.data.sample import HANDEDNESS_NAMES, LEFT, RIGHT
from hand_recon_core.inference.config import BACKENDS
from hand_recon_ros.conversions import hands_to_array_msg, result_to_hand
from hand_recon_ros.image_conversion import ImageConversionError, image_msg_to_rgb, rgb_to_image_msg
from hand_recon_ros.markers import (
    HAND_COLORS,
    MarkerBook,
    MarkerHand,
    build_marker_array,
    delete_all_markers,
    serialize_marker_array,
)
from hand_recon_ros.msg import HandMeshArray
from hand_recon_ros.params import RECON_PARAMS, ReconConfig, hand_model_spec, validate_config, validate_value
from hand_recon_ros.stats import LatencyStats, RateMeter, Throttle
from hand_recon_ros.sync import LatestFrameSlot, make_synchroniser, stamp_ns
from hand_recon_ros.temporal import Temporal
from hand_recon_ros.tf_frames import hand_transforms

try:  # tf2_ros on a ROS 2 install; here /tf is published directly as tf2_msgs/TFMessage
    from tf2_ros import TransformBroadcaster
except ImportError:
    TransformBroadcaster = None
try:  # diagnostic_updater on a ROS 2 install; here /diagnostics is published directly
    import diagnostic_updater
except ImportError:
    diagnostic_updater = None
try:  # rclpy >= Iron
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

__all__ = ["HandReconNode", "build_pipeline", "main"]

NODE_NAME = "hand_recon_node"
#: Output QoS: reliable, volatile (every default subscriber, RViz included, matches).
OUTPUT_DEPTH = 5
#: Seconds a camera info stays "recent": images wait for a matching one only while camera infos arrive.
CAMERA_INFO_RECENT_S = 2.0
#: Consecutive images without a stamp match (while camera infos arrive) before the node stops waiting.
UNSYNCED_AFTER = 3
#: Identical consecutive camera_infos after which the intrinsics count as constant: an image then takes the
#: latest camera_info at once instead of waiting for the one of its stamp (which could not differ); any change of
#: the intrinsics resumes the pairing.
STATIC_INTRINSICS_AFTER = 10
#: Seconds between two warnings of the same reason.
WARN_PERIOD_S = 5.0
#: Python's GIL switch interval set by the node's executable (:func:`main`) and the demo: 0.5 ms instead of the
#: default 5 ms. The model and the overlay make many short numpy / torch calls that release the GIL; with 5 ms a
#: thread returning from one can wait that long behind the executor's Python work each time (measured: the demo's
#: renders went from 15 ms to 0.2-1.5 s on two cores).
GIL_SWITCH_INTERVAL_S = 0.0005

PipelineFactory = Callable[[ReconConfig], Any]


def build_pipeline(config: ReconConfig):
    """The model of a configuration (:class:`hand_recon_core.inference.pipeline.Pipeline`).

    ``model.checkpoint`` set: ``Pipeline.from_checkpoint``; else ``model.method`` set: that method's packaged
    default (``Pipeline.default(detector=...)``) when the package ships one (the single-stage detector, ACR),
    else ``Pipeline.from_config`` (random weights: for testing only, the pipeline says so loudly); else
    ``Pipeline.default`` (the packaged checkpoints, or a random-weights fallback it warns about). The pipeline
    decodes with the node's ``score_threshold`` / ``max_hands`` of configure time (the node filters again with
    the live values) and falls back to eager torch when the requested backend is unavailable (``allow_fallback``,
    logged).

    Args:
        config: the node's configuration (``model.device`` already resolved to an available device).

    Returns:
        The pipeline: ``pipeline(image_rgb (H, W, 3) uint8, K (3, 3) or None) -> HandFrame``.
    """
    from hand_recon_core.inference.pipeline import Pipeline, packaged_default_exists

    kwargs = {"device": config.model_device, "backend": config.model_backend, "allow_fallback": True,
              "score_threshold": config.score_threshold, "max_hands": config.max_hands}
    hand_model = hand_model_spec(config)
    named = config.model_refiner not in ("auto", "none")
    refiner = (config.model_refiner_checkpoint or config.model_refiner) if named else None
    if config.model_checkpoint:
        return Pipeline.from_checkpoint(config.model_checkpoint, refiner=refiner, hand_model=hand_model, **kwargs)
    if config.model_method and not packaged_default_exists(config.model_method):
        return Pipeline.from_config(config.model_method, hand_model or "open", refiner=refiner, **kwargs)
    if config.model_method:
        kwargs["detector"] = config.model_method
    if config.model_refiner != "auto":
        kwargs["refiner"] = refiner
    return Pipeline.default(hand_model=hand_model or "open", **kwargs)


class _RosLogHandler(logging.Handler):
    """Forwards Python ``logging`` records of ``hand_recon_core`` to the node's ROS logger.

    So the pipeline's messages (e.g. its RANDOM WEIGHTS warning) reach the console and ``/rosout`` like the node's.
    """

    def __init__(self, node: Node) -> None:
        super().__init__(logging.INFO)
        self._logger = node.get_logger()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"[{record.name}] {record.getMessage()}"
        except Exception:  # a malformed record: never raise from logging
            return
        # rclpy caches the severity per call site: one call per severity
        if record.levelno >= logging.ERROR:
            self._logger.error(text)
        elif record.levelno >= logging.WARNING:
            self._logger.warning(text)
        else:
            self._logger.info(text)


def _descriptor(spec) -> ParameterDescriptor:
    when = {"live": "applies at once", "activate": "applies on the next activate",
            "configure": "applies on the next configure", "start": "read at start-up"}[spec.applies]
    unit = f" [{spec.unit}]" if spec.unit else ""
    d = ParameterDescriptor(name=spec.name, description=f"{spec.description}{unit} ({when})")
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.type is float and spec.min_value is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.min_value),
                                                     to_value=float(spec.max_value), step=0.0)]
    elif spec.type is int and spec.min_value is not None:
        d.integer_range = [IntegerRange(from_value=int(spec.min_value), to_value=int(spec.max_value), step=1)]
    return d


def _qos_text(qos: QoSProfile) -> str:
    return (f"reliability={qos.reliability.name.lower()} history={qos.history.name.lower()} depth={qos.depth} "
            f"durability={qos.durability.name.lower()}")


def _valid_intrinsics(info: CameraInfo) -> str | None:
    """None when ``info.k`` is a usable pinhole matrix, else the reason."""
    k = np.asarray(info.k, dtype=np.float64)
    if k.shape != (9,) or not np.all(np.isfinite(k)):
        return "non-finite intrinsics (NaN or inf in K)"
    if k[0] <= 0.0 or k[4] <= 0.0:
        return f"focal lengths must be > 0 (fx={k[0]:g}, fy={k[4]:g}; an uncalibrated camera?)"
    return None


class HandReconNode(LifecycleNode):
    """The reconstruction node (see the module docstring).

    Args:
        node_name: node name.
        pipeline_factory: builds the model from the configuration at ``configure`` (default
            :func:`build_pipeline`); tests and benchmarks pass stand-ins with the Pipeline's call signature.
        trace: keep per-frame timestamps (``time.perf_counter()``) of every stage in :attr:`trace`.
        **kwargs: ``rclpy`` node arguments (``context``, ``namespace``, ``parameter_overrides``, ``cli_args`` ...).
    """

    def __init__(self, node_name: str = NODE_NAME, *, pipeline_factory: PipelineFactory | None = None,
                 trace: bool = False, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._factory = pipeline_factory or build_pipeline
        self._param_errors: dict[str, str] = {}
        for spec in RECON_PARAMS:
            self._declare(spec)
        values = {s.name: self.get_parameter(s.name).value for s in RECON_PARAMS}
        self._cfg = ReconConfig.from_values(values) if not validate_config(values) else None
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.pipeline = None
        self.temporal: Temporal | None = None
        self.slot = LatestFrameSlot()
        self.overlay_slot = LatestFrameSlot()
        self._overlay_worker: threading.Thread | None = None
        self.latency = LatencyStats()
        self.input_rate = RateMeter()
        self.output_rate = RateMeter()
        self.trace: deque | None = deque(maxlen=10_000) if trace else None
        self.counters = {"received": 0, "processed": 0, "rejected": 0, "errors": 0, "camera_info_rejected": 0,
                         "published_hands": 0}
        self.rejections: dict[str, int] = {}
        self.recent_warnings: deque = deque(maxlen=200)
        self._throttle = Throttle(WARN_PERIOD_S)
        self._said: set[str] = set()
        self._markers = MarkerBook()
        self._faces_sent: dict[int, bytes] = {}
        self._latest_info: CameraInfo | None = None
        self._latest_info_time = -1e9
        self._unmatched = 0
        self._unsynced = False
        self._info_publishers = 0
        self._info_count_time = -1e9
        self._same_infos = 0
        self.last_received_stamp: int | None = None
        self._last_image_time: float | None = None
        self._last_no_image_warning = 0.0
        self._active_since = 0.0
        self._subs: list = []
        self._sync = None
        self._sync_name = ""
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._no_image_timer = None
        self._pubs: dict[str, Any] = {}
        self._tf_pub = None
        self._tf_broadcaster = None
        self._diag_timer = None
        self._diag_pub = None
        self._diag_updater = None
        self._input_qos: QoSProfile | None = None
        self._state_label = "unconfigured"
        self._log_handler: _RosLogHandler | None = None

        autostart = self.get_parameter("autostart").value
        if autostart and self._param_errors:
            self.get_logger().error("autostart: not configuring, invalid parameters: "
                                    + "; ".join(self._param_errors.values()))
        elif autostart:
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()

    # ------------------------------------------------------------------ parameters
    def _declare(self, spec) -> None:
        descriptor = _descriptor(spec)
        try:
            self.declare_parameter(spec.name, spec.default, descriptor)
        except Exception as exc:  # an override of the wrong type or out of range: keep the default, refuse to start
            self.declare_parameter(spec.name, spec.default, descriptor, ignore_override=True)
            self._param_errors[spec.name] = f"{spec.name}: invalid value given ({exc}); default {spec.default!r} kept"
            self.get_logger().error(self._param_errors[spec.name])

    def _on_set_parameters(self, params) -> SetParametersResult:
        ours = {p.name: p.value for p in params if p.name in {s.name for s in RECON_PARAMS}}
        if not ours:
            return SetParametersResult(successful=True)
        errors = [e for name, value in ours.items() for e in [validate_value(name, value)] if e]
        if not errors:
            current = {s.name: self.get_parameter(s.name).value for s in RECON_PARAMS}
            merged = {**current, **ours}
            before, after = validate_config(current), validate_config(merged)
            errors = [e for e in after if e not in before]  # refuse what the change breaks, not what it leaves
        if errors:
            reason = "; ".join(errors)
            self._warn("parameter", f"parameter change rejected (old values kept): {reason}")
            return SetParametersResult(successful=False, reason=reason)
        for name in ours:
            self._param_errors.pop(name, None)
        self._cfg = None if after else ReconConfig.from_values(merged)
        pending = [n for n in ours if next(s for s in RECON_PARAMS if s.name == n).applies in ("activate",
                                                                                               "configure")]
        if pending:
            self.get_logger().info(f"parameters {', '.join(pending)} take effect on the next configure / activate")
        if any(n.startswith(("tracking.", "smoothing.")) for n in ours) and self.temporal is not None \
                and self._cfg is not None:
            self.temporal = self._make_temporal(self._cfg)
        return SetParametersResult(successful=True)

    def subscription_count(self, output: str) -> int:
        """Subscribers of an output (``hands``, ``markers``, ``overlay``, ``faces_right``, ``faces_left``).

        0 when the node is not configured.
        """
        pub = self._pubs.get(output)
        return 0 if pub is None else pub.get_subscription_count()

    @property
    def config(self) -> ReconConfig | None:
        """The configuration in effect (None while the parameters are inconsistent)."""
        return self._cfg

    # ------------------------------------------------------------------ logging helpers
    def _warn(self, key: str, message: str) -> None:
        """A warning throttled per ``key`` (also kept in :attr:`recent_warnings`)."""
        self.recent_warnings.append((key, message))
        if self._throttle.ready(key):
            self.get_logger().warning(message)

    def _say_once(self, key: str, message: str, level: str = "warning") -> None:
        if key in self._said:
            return
        self._said.add(key)
        self.recent_warnings.append((key, message))
        # rclpy caches the severity per call site: one call per severity
        if level == "info":
            self.get_logger().info(message)
        else:
            self.get_logger().warning(message)

    def _reject(self, reason_key: str, message: str) -> None:
        self.counters["rejected"] += 1
        self.rejections[reason_key] = self.rejections.get(reason_key, 0) + 1
        self._warn(f"reject:{reason_key}", f"image skipped: {message}")

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate the parameters, load the model, create the publishers (FAILURE with the reason logged)."""
        try:
            return self._configure()
        except Exception as exc:
            self.get_logger().error(f"configure failed: {exc}\n{traceback.format_exc()}")
            self._release_outputs()
            return TransitionCallbackReturn.FAILURE

    def _configure(self) -> TransitionCallbackReturn:
        values = {s.name: self.get_parameter(s.name).value for s in RECON_PARAMS}
        errors = list(self._param_errors.values()) + validate_config(values, check_files=True)
        if errors:
            self.get_logger().error("configure refused, invalid parameters:\n  " + "\n  ".join(errors))
            return TransitionCallbackReturn.FAILURE
        cfg = self._cfg = ReconConfig.from_values(values)
        self._attach_core_logging()
        self._load_model(cfg)
        self.temporal = self._make_temporal(cfg)
        out_qos = QoSProfile(depth=OUTPUT_DEPTH, reliability=ReliabilityPolicy.RELIABLE,
                             history=HistoryPolicy.KEEP_LAST)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        from visualization_msgs.msg import MarkerArray

        self._pubs = {
            "hands": self.create_lifecycle_publisher(HandMeshArray, "~/hands", out_qos),
            "faces_right": self.create_lifecycle_publisher(Mesh, "~/faces/right", latched),
            "faces_left": self.create_lifecycle_publisher(Mesh, "~/faces/left", latched),
            "markers": self.create_lifecycle_publisher(MarkerArray, "~/markers", out_qos),
            "overlay": self.create_lifecycle_publisher(Image, "~/overlay", out_qos),
        }
        self._faces_sent.clear()
        if TransformBroadcaster is not None:
            self._tf_broadcaster = TransformBroadcaster(self)
        else:
            from tf2_msgs.msg import TFMessage

            self._tf_pub = self.create_publisher(TFMessage, "/tf", QoSProfile(depth=100))
            self._say_once("tf2_ros", "tf2_ros is not installed: publishing tf2_msgs/TFMessage on /tf directly",
                           "info")
        self._setup_diagnostics(cfg)
        _warm_up()
        self._state_label = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def _load_model(self, cfg: ReconConfig) -> None:
        """Build the pipeline (falling back to the CPU when CUDA is asked for but absent, said once)."""
        model_cfg = cfg
        if cfg.model_device.startswith("cuda") and not _cuda_available():
            self._say_once("no_cuda", f"model.device {cfg.model_device!r} but CUDA is not available: running the "
                           "model on the CPU")
            model_cfg = cfg.replace({"model.device": "cpu"})
        t0 = time.perf_counter()
        self.pipeline = self._factory(model_cfg)
        p = self.pipeline
        backend = str(getattr(p, "backend", cfg.model_backend))
        if backend in BACKENDS and backend != cfg.model_backend:
            self._say_once("backend", f"model.backend {cfg.model_backend!r} is not available here: the model runs "
                           f"on {backend!r}")
        if getattr(p, "random_weights", False):
            self._say_once("random_weights", "the model has RANDOM WEIGHTS (no trained checkpoint): its hands are "
                           "meaningless; set model.checkpoint")
        describe = p.describe() if hasattr(p, "describe") else {}
        source = cfg.model_checkpoint or (f"method {cfg.model_method}" if cfg.model_method else "default model")
        if describe.get("oracle"):
            source = "stand-in model"
            self._say_once("oracle", f"the model is a stand-in: {describe.get('detector')}")
        self.get_logger().info(
            f"model ready in {time.perf_counter() - t0:.1f} s: {source} ({describe.get('detector', '-')}, refiner "
            f"{describe.get('refiner', cfg.model_refiner)}), backend {backend}, device "
            f"{getattr(p, 'device', model_cfg.model_device)}")

    def _attach_core_logging(self) -> None:
        core = logging.getLogger("hand_recon_core")
        if self._log_handler is None:
            self._log_handler = _RosLogHandler(self)
        if self._log_handler not in core.handlers:
            core.addHandler(self._log_handler)
            if core.level == logging.NOTSET or core.level > logging.INFO:
                core.setLevel(logging.INFO)

    def _detach_core_logging(self) -> None:
        if self._log_handler is not None:
            logging.getLogger("hand_recon_core").removeHandler(self._log_handler)

    def _make_temporal(self, cfg: ReconConfig) -> Temporal:
        t = Temporal(cfg.tracking_enabled, cfg.smoothing_enabled, cfg.smoothing_min_cutoff, cfg.smoothing_beta,
                     cfg.smoothing_d_cutoff)
        if cfg.tracking_enabled and not t.available:
            self._say_once("temporal", f"tracking / smoothing requested but {t.description}")
        return t

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to image + camera_info with the configured QoS, start the worker threads."""
        try:
            cfg = self._cfg
            if self.pipeline is None:  # released on deactivate (model.free_gpu_on_deactivate)
                self._load_model(cfg)
            qos = QoSProfile(depth=cfg.qos_depth, history=HistoryPolicy.KEEP_LAST,
                             reliability=(ReliabilityPolicy.BEST_EFFORT if cfg.qos_reliability == "best_effort"
                                          else ReliabilityPolicy.RELIABLE),
                             durability=DurabilityPolicy.VOLATILE)
            self._input_qos = qos
            self._latest_info, self._latest_info_time = None, -1e9  # the camera may have changed meanwhile
            self._info_count_time = -1e9
            self._same_infos = self._unmatched = 0
            self._unsynced = False
            self._sync, self._sync_name = make_synchroniser(cfg.sync_queue_size, cfg.sync_slop, self._on_pair)
            events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
            self._subs = [
                self.create_subscription(Image, "image", self._on_image, qos, event_callbacks=events),
                self.create_subscription(CameraInfo, "camera_info", self._on_info, qos, event_callbacks=events),
            ]
            self._stop.clear()
            self.slot.clear()
            self.slot.reopen()
            self.overlay_slot.clear()
            self.overlay_slot.reopen()
            self._worker = threading.Thread(target=self._work, name=f"{self.get_name()}_worker", daemon=True)
            self._worker.start()
            self._overlay_worker = threading.Thread(target=self._overlay_work, name=f"{self.get_name()}_overlay",
                                                    daemon=True)
            self._overlay_worker.start()
            self._active_since = time.monotonic()
            self._last_image_time = None
            self._info_publishers = self.count_publishers(self._subs[1].topic_name)
            self._no_image_timer = self.create_timer(1.0, self._check_no_image)
            self.get_logger().info(
                f"active: {self._subs[0].topic_name} + {self._subs[1].topic_name}, input QoS {_qos_text(qos)}; "
                f"pairing by {self._sync_name} (queue {cfg.sync_queue_size}, slop {cfg.sync_slop} s, wait "
                f"{cfg.sync_wait} s); outputs on {self._pubs['hands'].topic_name}, /tf, ~/markers, ~/overlay")
            self._state_label = "active"
            return super().on_activate(state)
        except Exception as exc:
            self.get_logger().error(f"activate failed: {exc}\n{traceback.format_exc()}")
            self._stop_input()
            return TransitionCallbackReturn.FAILURE

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe, stop the workers, clear RViz (and release the model with free_gpu_on_deactivate)."""
        self._stop_input()
        self._clear_markers()
        self._state_label = "inactive"
        cfg = self._cfg
        if cfg is not None and cfg.model_free_gpu_on_deactivate:
            self._release_model()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the model and the publishers (back to unconfigured)."""
        self._stop_input()
        self._release_model()
        self._release_outputs()
        self._state_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything (from any state)."""
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: release everything and return to unconfigured."""
        self.get_logger().error(f"error in transition from {state.label}: releasing everything")
        self._stop_input()
        self._release_model()
        self._release_outputs()
        self._state_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def _stop_input(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self._sync = None
        if self._no_image_timer is not None:
            self.destroy_timer(self._no_image_timer)
            self._no_image_timer = None
        self._stop.set()
        self.slot.close()
        self.overlay_slot.close()
        for worker in (self._worker, self._overlay_worker):
            if worker is not None and worker is not threading.current_thread():
                worker.join(timeout=30.0)
        self._worker = self._overlay_worker = None
        self.slot.clear()
        self.overlay_slot.clear()
        if self.temporal is not None:
            self.temporal.reset()

    def _release_model(self) -> None:
        if self.pipeline is None:
            return
        on_gpu = str(getattr(self.pipeline, "device", "") or (self._cfg.model_device if self._cfg else "")
                     ).startswith("cuda")
        self.pipeline = None
        if on_gpu:
            try:
                import torch

                torch.cuda.empty_cache()
                self.get_logger().info("model released, CUDA cache emptied")
            except Exception as exc:  # torch without CUDA: nothing to free
                self.get_logger().debug(f"CUDA cache not emptied: {exc}")

    def _release_outputs(self) -> None:
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        if self._tf_pub is not None:
            self.destroy_publisher(self._tf_pub)
            self._tf_pub = None
        if self._tf_broadcaster is not None and getattr(self._tf_broadcaster, "pub_tf", None) is not None:
            self.destroy_publisher(self._tf_broadcaster.pub_tf)
        self._tf_broadcaster = None
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None

    def _clear_markers(self) -> None:
        """Remove this node's markers from RViz (skipped once the context is shut down, e.g. after Ctrl-C)."""
        pub = self._pubs.get("markers")
        if pub is not None and self._markers.shown and self.context.ok():
            from std_msgs.msg import Header

            header = Header(frame_id=self._last_frame_id or "")
            header.stamp = self.get_clock().now().to_msg()
            try:
                pub.publish(serialize_marker_array(delete_all_markers(header)))
            except Exception as exc:  # shutting down: nothing left to clear
                self.get_logger().debug(f"markers not cleared: {exc}")
        self._markers.clear()

    _last_frame_id: str | None = None

    def close(self) -> None:
        """Stop the worker and release the model and the outputs (idempotent; before ``destroy_node``)."""
        if self._subs or self._worker is not None:
            self._clear_markers()
        self._stop_input()
        self._release_model()
        self._release_outputs()
        self._detach_core_logging()
        self._state_label = "finalized"

    # ------------------------------------------------------------------ input callbacks (executor thread)
    def _on_incompatible_qos(self, event) -> None:
        self._warn("qos", f"a publisher's QoS is incompatible with the input QoS ({_qos_text(self._input_qos)}; "
                          f"policy {getattr(event, 'last_policy_kind', '?')}): set qos.reliability / qos.depth")

    def _on_image(self, msg: Image) -> None:
        now = time.perf_counter()
        self.counters["received"] += 1
        self.last_received_stamp = stamp_ns(msg)
        self.input_rate.tick()
        self._last_image_time = time.monotonic()
        cfg = self._cfg
        if cfg is None:  # cannot happen while active (inconsistent changes are refused); never crash on it
            return
        if self._latest_info is None and len(self._subs) > 1 and now - self._info_count_time > 0.5:
            # until the first camera_info arrives: is one coming? (the 1 Hz timer is too slow at start-up)
            self._info_count_time = now
            self._info_publishers = self.count_publishers(self._subs[1].topic_name)
        # wait for the matching camera_info only while camera infos arrive (or a publisher exists: the first
        # image may overtake the first camera_info)
        info_expected = (now - self._latest_info_time) < CAMERA_INFO_RECENT_S or self._info_publishers > 0
        static = self._same_infos >= STATIC_INTRINSICS_AFTER
        wait = cfg.sync_wait if (info_expected and not self._unsynced and not static) else 0.0
        self.slot.put_image(msg, wait, now)
        sync = self._sync
        if sync is not None:
            try:
                sync.add_image(msg)
            except Exception as exc:  # a header the synchroniser cannot read
                self._warn("sync", f"image not synchronised: {exc}")

    def _on_info(self, msg: CameraInfo) -> None:
        reason = _valid_intrinsics(msg)
        if reason is not None:
            self.counters["camera_info_rejected"] += 1
            self._warn("camera_info", f"camera_info ignored: {reason}")
            return
        previous = self._latest_info
        same = (previous is not None and (previous.width, previous.height) == (msg.width, msg.height)
                and np.array_equal(np.asarray(previous.k), np.asarray(msg.k)))
        self._same_infos = self._same_infos + 1 if same else 0
        self._latest_info = msg
        self._latest_info_time = time.perf_counter()
        sync = self._sync
        if sync is not None:
            try:
                sync.add_info(msg)
            except Exception as exc:
                self._warn("sync", f"camera_info not synchronised: {exc}")

    def _on_pair(self, image: Image, info: CameraInfo) -> None:
        self._unmatched = 0
        if self._unsynced:
            self._unsynced = False
            self.get_logger().info("image and camera_info stamps match again: pairing them")
        self.slot.attach_info(image, info)

    def _check_no_image(self) -> None:
        """1 Hz: refresh the camera_info publisher count; warn when images stopped coming."""
        if len(self._subs) > 1:
            self._info_publishers = self.count_publishers(self._subs[1].topic_name)
        period = self._cfg.no_image_warning_period if self._cfg else 0.0
        if period <= 0:
            return
        now = time.monotonic()
        since = self._last_image_time if self._last_image_time is not None else self._active_since
        if now - since >= period and now - self._last_no_image_warning >= period:
            self._last_no_image_warning = now
            topic = self._subs[0].topic_name if self._subs else "image"
            n_pub = self.count_publishers(topic)
            hint = ("no publisher" if n_pub == 0 else
                    f"{n_pub} publisher(s): check their QoS against {_qos_text(self._input_qos)}")
            message = f"no image received on {topic} for {now - since:.1f} s ({hint})"
            self.recent_warnings.append(("no_image", message))
            self.get_logger().warning(message)

    # ------------------------------------------------------------------ worker thread
    def _work(self) -> None:
        while not self._stop.is_set():
            pending = self.slot.take(timeout=0.25)
            if pending is None:
                continue
            try:
                self._process(pending)
            except Exception as exc:  # never let one frame stop the node
                if not self.context.ok():
                    break  # shutting down (Ctrl-C): the publishers are gone, nothing to report
                self.counters["errors"] += 1
                key = f"error:{type(exc).__name__}"
                if key not in self._said:
                    self._said.add(key)
                    self.get_logger().error(f"frame failed: {exc!r}\n{traceback.format_exc()}")
                else:
                    self._warn(key, f"frame failed: {exc!r}")

    def _intrinsics(self, pending, width: int, height: int) -> tuple[np.ndarray | None, str]:
        info = pending.info
        if info is not None and self._info_fits(info, width, height):
            self._said.discard("latest_info")
            return np.asarray(info.k, np.float64).reshape(3, 3), "camera_info"
        latest = self._latest_info
        if latest is not None and self._info_fits(latest, width, height):
            if (time.perf_counter() - self._latest_info_time) < CAMERA_INFO_RECENT_S:
                self._unmatched += 1
                if self._unmatched >= UNSYNCED_AFTER and not self._unsynced:
                    self._unsynced = True
            if self._same_infos >= STATIC_INTRINSICS_AFTER:
                self._say_once("static_info", f"camera_info intrinsics constant over {STATIC_INTRINSICS_AFTER} "
                               "messages: images use the latest camera_info without waiting for their own", "info")
            else:
                self._say_once("latest_info", "image without a camera_info of its stamp (within sync.slop): using "
                               "the latest camera_info (said once)", "info")
            return np.asarray(latest.k, np.float64).reshape(3, 3), "latest camera_info"
        return None, "default focal"

    def _info_fits(self, info: CameraInfo, width: int, height: int) -> bool:
        if info.width and info.height and (info.width, info.height) != (width, height):
            self._warn("camera_info_size", f"camera_info is for {info.width}x{info.height}, the image is "
                                           f"{width}x{height}: not used")
            return False
        return True

    def _process(self, pending) -> None:
        cfg = self._cfg
        pipeline = self.pipeline
        if cfg is None or pipeline is None:
            return
        t_take = time.perf_counter()
        image_msg = pending.image
        header = image_msg.header
        try:
            rgb = image_msg_to_rgb(image_msg, max_side=cfg.max_image_side)
        except ImageConversionError as exc:
            text = str(exc)
            self._reject(text.split(" ", 1)[0] if not text.startswith("unsupported") else "encoding", text)
            return
        h, w = rgb.shape[:2]
        K, k_source = self._intrinsics(pending, w, h)
        t_conv = time.perf_counter()
        frame = pipeline(rgb, K)
        t_model = time.perf_counter()
        if K is None:
            f = float(np.asarray(frame.K)[0, 0]) if frame.K is not None else float("nan")
            why = ("no camera_info received yet" if self._info_publishers or self._latest_info is not None
                   else f"no camera_info publisher on {self._subs[1].topic_name if len(self._subs) > 1 else '?'}")
            self._say_once("default_focal", f"{why}: the pipeline's default focal length is used (f = {f:.1f} px); "
                           "metric 3D needs the camera's intrinsics")
        hands = sorted((hd for hd in frame.hands if hd.score >= cfg.score_threshold), key=lambda r: -r.score)
        frame.hands = hands[: cfg.max_hands]
        temporal = self.temporal
        if temporal is not None and temporal.available:
            frame = temporal(frame, stamp_ns(image_msg) * 1e-9)
        ids = {r.slot: (r.track_id if r.track_id >= 0 else r.slot) for r in frame.hands}
        arrays = [result_to_hand(r, frame.hand_model_id, ids[r.slot], ids.get(r.partner_slot, -1))
                  for r in frame.hands]
        msg = hands_to_array_msg(arrays, header, (w, h), inference_time=t_model - t_conv)
        t_fill = time.perf_counter()
        self._pubs["hands"].publish(msg)
        t_pub = time.perf_counter()
        self.counters["processed"] += 1
        self.counters["published_hands"] += len(arrays)
        self.output_rate.tick()
        self._last_frame_id = header.frame_id
        self._publish_faces(frame)
        self._publish_tf(arrays, header, cfg)
        t_tf = time.perf_counter()
        self._publish_markers(arrays, frame, header)
        t_markers = time.perf_counter()
        if self._pubs["overlay"].get_subscription_count() > 0:
            # rendered by the overlay thread, newest frame only: the model never waits for it
            self.overlay_slot.put_image((rgb, frame, arrays, header, image_msg), 0.0)
        t_done = time.perf_counter()

        lat = self.latency
        ready = pending.ready if pending.ready is not None else pending.received
        lat.add("camera_info_wait", (ready - pending.received) * 1e3)
        lat.add("queue", (t_take - ready) * 1e3)
        lat.add("convert", (t_conv - t_take) * 1e3)
        lat.add("model", (t_model - t_conv) * 1e3)
        for stage, ms in frame.timings_ms.items():
            lat.add(f"model.{stage}", float(ms))
        lat.add("fill", (t_fill - t_model) * 1e3)
        lat.add("publish_hands", (t_pub - t_fill) * 1e3)
        lat.add("tf", (t_tf - t_pub) * 1e3)
        lat.add("markers", (t_markers - t_tf) * 1e3)
        lat.add("end_to_end", (t_pub - pending.received) * 1e3)
        lat.add("ros_layer", ((t_pub - pending.received) - (t_model - t_conv)) * 1e3)
        if self.trace is not None:
            self.trace.append({"seq": pending.seq, "stamp_ns": stamp_ns(image_msg), "received": pending.received,
                               "ready": pending.ready if pending.ready is not None else pending.received,
                               "taken": t_take, "converted": t_conv, "model_done": t_model, "filled": t_fill,
                               "published": t_pub, "done": t_done, "hands": len(arrays), "intrinsics": k_source})

    # ------------------------------------------------------------------ outputs
    def _publish_faces(self, frame) -> None:
        for side, key in ((RIGHT, "faces_right"), (LEFT, "faces_left")):
            faces = frame.faces.get(side) if frame.faces else None
            if faces is None:
                continue
            faces = np.asarray(faces)
            digest = f"{frame.hand_model_id}:{faces.shape}:{hash(faces.tobytes())}".encode()
            if self._faces_sent.get(side) == digest:
                continue
            mesh = Mesh(triangles=[MeshTriangle(vertex_indices=[int(a), int(b), int(c)])
                                   for a, b, c in faces.reshape(-1, 3).tolist()])
            self._pubs[key].publish(mesh)
            self._faces_sent[side] = digest
            self.get_logger().info(f"published {len(mesh.triangles)} {HANDEDNESS_NAMES[side]} faces of hand model "
                                   f"{frame.hand_model_id!r} on {self._pubs[key].topic_name}")

    def _publish_tf(self, arrays, header, cfg: ReconConfig) -> None:
        if not arrays:
            return
        transforms = [t for a in arrays for t in hand_transforms(a, header, cfg.frame_prefix,
                                                                  cfg.publish_joint_frames)]
        if self._tf_broadcaster is not None:
            self._tf_broadcaster.sendTransform(transforms)
        elif self._tf_pub is not None:
            from tf2_msgs.msg import TFMessage

            self._tf_pub.publish(TFMessage(transforms=transforms))

    def _publish_markers(self, arrays, frame, header) -> None:
        hands = [MarkerHand(a.id, a.handedness, a.score, a.vertices, frame.faces.get(a.handedness),
                            a.joints) for a in arrays if frame.faces and a.handedness in frame.faces]
        value = build_marker_array(hands, header, self._markers)
        if value["markers"]:
            self._pubs["markers"].publish(serialize_marker_array(value))

    def _overlay_work(self) -> None:
        while not self._stop.is_set():
            item = self.overlay_slot.take(timeout=0.25)
            if item is None:
                continue
            t0 = time.perf_counter()
            try:
                rgb, frame, arrays, header, _image_msg = item.image  # the message keeps rgb's memory alive
                self._publish_overlay(rgb, frame, arrays, header, self._cfg)
            except Exception as exc:  # never let one overlay stop the node
                self.counters["errors"] += 1
                self._warn(f"overlay:{type(exc).__name__}", f"overlay failed: {exc!r}")
                continue
            self.latency.add("overlay", (time.perf_counter() - t0) * 1e3)

    def _publish_overlay(self, rgb, frame, arrays, header, cfg: ReconConfig) -> None:
        pub = self._pubs.get("overlay")
        if pub is None or pub.get_subscription_count() == 0:
            return
        from hand_recon_core.hand_model.joint_orders import bone_pairs
        from hand_recon_core.render.overlay import draw_keypoints, draw_overlay

        with_faces = [a for a in arrays if frame.faces and a.handedness in frame.faces]
        image = draw_overlay(rgb, [a.vertices for a in with_faces], [frame.faces[a.handedness] for a in with_faces],
                             K=np.asarray(frame.K, np.float64),
                             mesh_colors=[HAND_COLORS[a.handedness] for a in with_faces], alpha=cfg.overlay_alpha)
        bones = bone_pairs("mano21")
        for a in arrays:
            draw_keypoints(image, a.keypoints_2d, bones, color=HAND_COLORS.get(a.handedness, (1.0, 1.0, 1.0)))
        pub.publish(rgb_to_image_msg(image, header))

    # ------------------------------------------------------------------ diagnostics
    def _setup_diagnostics(self, cfg: ReconConfig) -> None:
        if diagnostic_updater is not None:
            if self._diag_updater is None:
                try:
                    self._diag_updater = diagnostic_updater.Updater(self, period=cfg.diagnostics_period)
                except TypeError:  # releases whose Updater takes no period (it reads its own parameter)
                    self._diag_updater = diagnostic_updater.Updater(self)
                self._diag_updater.setHardwareID(f"hand_recon:{self.get_fully_qualified_name()}")
                self._diag_updater.add("hand_recon", self._diagnostic_task)
            return
        if self._diag_pub is None:
            self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 1)
        self._diag_timer = self.create_timer(cfg.diagnostics_period, self._publish_diagnostics)

    def _diagnostic_task(self, stat):
        level, message, values = self.diagnostics()
        stat.summary(level, message)
        for k, v in values.items():
            stat.add(k, v)
        return stat

    def _publish_diagnostics(self) -> None:
        level, message, values = self.diagnostics()
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: hand_recon", message=message,
                                  hardware_id=f"hand_recon:{self.get_fully_qualified_name()}",
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(arr)

    def diagnostics(self) -> tuple[bytes, str, dict[str, str]]:
        """The current status: (``DiagnosticStatus`` level, message, ``{key: value}``)."""
        cfg = self._cfg
        values = {"state": self._state_label,
                  "input_rate_hz": f"{self.input_rate.rate():.2f}",
                  "output_rate_hz": f"{self.output_rate.rate():.2f}",
                  "frames_received": str(self.slot.received),
                  "frames_processed": str(self.counters["processed"]),
                  "frames_dropped": str(self.slot.dropped),
                  "overlay_frames_dropped": str(self.overlay_slot.dropped),
                  "frames_rejected": str(self.counters["rejected"]),
                  "frame_errors": str(self.counters["errors"]),
                  "camera_info_rejected": str(self.counters["camera_info_rejected"]),
                  "pairing": self._sync_name or "-",
                  "tracking": self.temporal.description if self.temporal else "-"}
        model_note = ""
        if self.pipeline is not None:
            described = self.pipeline.describe() if hasattr(self.pipeline, "describe") else {}
            values["model"] = str(described.get("detector", "-"))
            if getattr(self.pipeline, "random_weights", False):
                model_note = "model has RANDOM WEIGHTS (no trained checkpoint)"
            elif described.get("oracle"):
                model_note = "model is a ground-truth stand-in"
        if cfg is not None:
            values["backend"] = str(getattr(self.pipeline, "backend", cfg.model_backend))
            values["device"] = str(getattr(self.pipeline, "device", cfg.model_device))
            if values["device"].startswith("cuda"):
                values.update(_gpu_memory(values["device"]))
        for stage, (p50, p95) in sorted(self.latency.percentiles().items()):
            values[f"latency_{stage}_p50_ms"] = f"{p50:.2f}"
            values[f"latency_{stage}_p95_ms"] = f"{p95:.2f}"
        level, message = DiagnosticStatus.OK, "ok"
        if self._state_label != "active":
            level, message = DiagnosticStatus.OK, f"{self._state_label}"
        elif self._last_image_time is None or (cfg and cfg.no_image_warning_period > 0 and time.monotonic()
                                               - self._last_image_time > cfg.no_image_warning_period):
            level, message = DiagnosticStatus.WARN, "no input images"
        elif self.counters["errors"] or self.counters["rejected"]:
            level, message = DiagnosticStatus.WARN, (f"{self.counters['rejected']} images rejected, "
                                                     f"{self.counters['errors']} frame errors")
        elif model_note:
            level, message = DiagnosticStatus.WARN, model_note
        return level, message, values


def _warm_up() -> None:
    """Import / cache what the first frame would otherwise pay for (scipy's rotations, the marker serialiser)."""
    from std_msgs.msg import Header

    from hand_recon_ros.conversions import axis_angle_to_quaternion

    axis_angle_to_quaternion(np.zeros(3))
    hand = MarkerHand(0, RIGHT, 1.0, np.zeros((3, 3)), np.array([[0, 1, 2]]), np.zeros((21, 3)))
    serialize_marker_array(build_marker_array([hand], Header()))


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _gpu_memory(device: str) -> dict[str, str]:
    try:
        import torch

        if not torch.cuda.is_available():
            return {}
        return {"gpu_memory_allocated_mb": f"{torch.cuda.memory_allocated(device) / 2**20:.1f}",
                "gpu_memory_reserved_mb": f"{torch.cuda.memory_reserved(device) / 2**20:.1f}"}
    except Exception:  # no torch or no CUDA
        return {}


def main(argv: list[str] | None = None) -> int:
    """``ros2 run hand_recon_ros hand_recon_node [--ros-args ...]``."""
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = HandReconNode()
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
