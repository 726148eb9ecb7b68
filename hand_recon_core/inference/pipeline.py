"""The inference pipeline every consumer uses (the ROS node, ``hand-recon infer``, the benchmarks).

::

    image (H, W, 3) uint8 RGB, K (3, 3) or None
      -> preprocess   validate; default K when None; the detector's own encode_targets + collate (letterbox)
      -> detector     the detector's network on its backend (eager torch: model(batch), incl. decoding)
      -> lifting      the detector's predict: hand-model parameters -> vertices / joints in the image's camera
                      frame (metres) with K, 2D in image pixels; score threshold, max hands -> HandResults
      -> pairing      which right / left hands interact (pairing.find_pairs)
      -> refiner      two-hand refiner (DIR | DGCL) on each pair, mapped back to the image / camera
      -> HandFrame    with timings_ms {preprocess, detector, lifting, pairing, refiner, total}

The stages run under ``torch.inference_mode`` (no autograd). Detectors are methods whose ``predict`` returns the
hands of a full image (``single_stage``, ``acr``); refiners are two-hand methods (``dir``, ``dgcl``; see
:mod:`.pairing`). A detector and its refiner must use the same hand model.

Constructors: :meth:`Pipeline.from_checkpoint` (training checkpoints), :meth:`Pipeline.from_config`
(randomly initialised weights, with a loud WARNING; for demos and tests until trained checkpoints exist),
:meth:`Pipeline.default` (the packaged checkpoints under ``hand_recon_core/assets/`` when present, else
:meth:`from_config` with :data:`~.config.FALLBACK_DETECTOR`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hand_recon_core
from hand_recon_core.inference.backends import ModelRunner
from hand_recon_core.inference.config import (
    DEFAULT_ASSET_NAMES,
    DEFAULT_FOCAL_RATIO,
    DETECTOR_ASSETS,
    FALLBACK_DETECTOR,
    BackendOptions,
    PairingConfig,
)
from hand_recon_core.inference.frame import HandFrame, HandResult
from hand_recon_core.inference.inputs import default_intrinsics, validate_image, validate_intrinsics
from hand_recon_core.inference.loading import LoadedModel, build_random_model, load_model
from hand_recon_core.inference.pairing import PairRefiner, find_pairs

__all__ = ["DETECTOR_KEYS", "STAGES", "Pipeline", "assets_dir", "packaged_default_exists", "predictions_to_hands",
           "select_predictions"]

logger = logging.getLogger(__name__)

#: Keys a detector's ``predict`` must return per image.
DETECTOR_KEYS = ("handedness", "score", "bbox", "keypoints_2d", "joints_3d", "vertices_3d")
#: Stage names of :attr:`HandFrame.timings_ms`, in execution order.
STAGES = ("preprocess", "detector", "lifting", "pairing", "refiner", "total")

_RANDOM_BANNER = ("RANDOM WEIGHTS: the %s model %r (%s) is randomly initialised, NOT trained: its hands, meshes and "
                  "scores are meaningless. Train a checkpoint (hand-recon train) and pass it, or place packaged "
                  "checkpoints in %s")


def packaged_default_exists(detector: str) -> bool:
    """Whether the package ships a trained default for the detector method ``detector``."""
    return detector in DETECTOR_ASSETS and (assets_dir() / DETECTOR_ASSETS[detector]).is_file()


def assets_dir() -> Path:
    """The package's asset folder (``hand_recon_core/assets``), where :meth:`Pipeline.default` looks."""
    return Path(hand_recon_core.__file__).resolve().parent / "assets"


def _as_float(x: Any) -> float:
    return float(np.asarray(x).reshape(()))


def select_predictions(pred: Mapping[str, Any], score_threshold: float | None = None,
                       max_hands: int | None = None) -> np.ndarray:
    """Indices of the hands kept from one image's ``predict`` dict, by descending score.

    Args:
        pred: with ``score (N,)``.
        score_threshold: keep ``score >= score_threshold`` (None: all).
        max_hands: keep at most this many, highest scores first (None: all).

    Returns:
        (M,) int64 indices into the prediction's hands.
    """
    score = np.asarray(pred["score"], np.float64).reshape(-1)
    order = np.argsort(-score, kind="stable")
    if score_threshold is not None:
        order = order[score[order] >= score_threshold]
    if max_hands is not None:
        order = order[: max(0, int(max_hands))]
    return order.astype(np.int64)


def predictions_to_hands(pred: Mapping[str, Any], score_threshold: float | None = None,
                         max_hands: int | None = None, indices: np.ndarray | None = None) -> list[HandResult]:
    """One image's ``predict`` dict -> :class:`HandResult` s, filtered and sorted by descending score.

    Args:
        pred: ``handedness (N,)``, ``score (N,)``, ``bbox (N, 4)``, ``keypoints_2d (N, 21, 2)``, ``joints_3d
            (N, 21, 3)``, ``vertices_3d (N, V, 3)`` and optionally ``hand_pose``, ``betas``, ``transl``,
            ``handedness_score``, ``keypoints_2d_score`` (registry protocol units and frames).
        score_threshold: keep hands with ``score >= score_threshold`` (None: all).
        max_hands: keep at most this many (highest scores first; None: all).
        indices: the hands to keep, in order (overrides the two filters; see :func:`select_predictions`).

    Returns:
        Hands with ``slot`` = position in the returned list.

    Raises:
        ValueError: a required key is missing.
    """
    missing = [k for k in DETECTOR_KEYS if k not in pred]
    if missing:
        raise ValueError(f"the detector's predict lacks {missing}: it cannot serve as the pipeline's detector")
    if indices is None:
        indices = select_predictions(pred, score_threshold, max_hands)
    score = np.asarray(pred["score"], np.float64).reshape(-1)

    def opt(key: str, i: int) -> np.ndarray | None:
        return np.asarray(pred[key][i], np.float32) if key in pred else None

    hands = []
    hs = pred.get("handedness_score")
    for slot, i in enumerate(np.asarray(indices, np.int64).tolist()):
        hands.append(HandResult(
            slot=slot, handedness=int(pred["handedness"][i]), score=float(score[i]),
            bbox=np.asarray(pred["bbox"][i], np.float32), keypoints_2d=np.asarray(pred["keypoints_2d"][i], np.float32),
            joints_3d=np.asarray(pred["joints_3d"][i], np.float32),
            vertices_3d=np.asarray(pred["vertices_3d"][i], np.float32), hand_pose=opt("hand_pose", i),
            betas=opt("betas", i), transl=opt("transl", i),
            handedness_score=1.0 if hs is None else _as_float(hs[i]),
            keypoints_2d_score=opt("keypoints_2d_score", i)))
    return hands


def _prepare(loaded: LoadedModel, role: str) -> None:
    """Say loudly when a loaded model has random weights."""
    if loaded.random_weights:
        logger.warning(_RANDOM_BANNER, role, loaded.method_name, loaded.source, assets_dir())


def _apply_decoding(loaded: LoadedModel, score_threshold: float | None, max_hands: int | None) -> None:
    """Pass the pipeline's decoding options to the method (and to the single-stage network's decoder, which runs in
    torch after every backend; ACR's network-side threshold is part of its exported graph and left alone)."""
    targets = [loaded.method] + ([loaded.model] if loaded.method_name == "single_stage" else [])
    for obj in targets:
        if score_threshold is not None and hasattr(obj, "score_threshold"):
            obj.score_threshold = float(score_threshold)
        if max_hands is not None and hasattr(obj, "max_hands"):
            obj.max_hands = int(max_hands)


class Pipeline:
    """Detector -> pairing -> refiner on one RGB image (module docstring); ``pipeline(image, K) -> HandFrame``.

    Args:
        detector: the detector (``single_stage`` or ``acr``), loaded.
        refiner: optional two-hand refiner (``dir`` or ``dgcl``), loaded; same hand model as the detector.
        backend: ``torch`` | ``torch_compile`` | ``onnxruntime`` | ``tensorrt`` (:mod:`.backends`), for both.
        precision: ``fp32`` | ``fp16`` (fp16: TensorRT, or torch autocast on CUDA).
        allow_fallback: fall back to eager torch (WARNING once) when the backend is unavailable; otherwise raise
            :class:`~.backends.BackendUnavailableError`.
        cache_dir: ONNX / TensorRT cache (None: :func:`~.backends.default_cache_dir`).
        max_hands: keep at most this many hands per image (None: the detector's setting).
        score_threshold: keep hands with a detection score >= this (None: the detector's setting).
        pairing: pairing thresholds (None: :class:`~.config.PairingConfig` defaults).
        default_focal_ratio: focal / max(H, W) when ``K`` is None (:data:`~.config.DEFAULT_FOCAL_RATIO`).
        opset: ONNX opset of the exports.
        backend_options: extra backend options (``ort_threads``, ``trt_workspace_gb``, ``compile_mode``).

    A pipeline is not thread-safe: call it from one thread at a time (the ROS node's worker, the CLI loop).

    Attributes:
        hand_model_id: id of the hand model of every vertex array (e.g. ``"open-v1-right"``).
        faces: ``{RIGHT: (F, 3), LEFT: (F, 3)}`` int32, counter-clockwise from outside.
        backend: the backend actually running the detector (after a possible fallback).
        random_weights: True when any model is randomly initialised.
    """

    def __init__(self, detector: LoadedModel, refiner: LoadedModel | None = None, *, backend: str = "torch",
                 precision: str = "fp32", allow_fallback: bool = False, cache_dir: str | Path | None = None,
                 max_hands: int | None = None, score_threshold: float | None = None,
                 pairing: PairingConfig | None = None, default_focal_ratio: float = DEFAULT_FOCAL_RATIO,
                 opset: int = 17, backend_options: Mapping[str, Any] | None = None) -> None:
        from hand_recon_core.training.checkpoint import HandModelMismatchError
        from hand_recon_core.training.evaluation import hand_faces

        if max_hands is not None and int(max_hands) < 1:
            raise ValueError(f"max_hands must be >= 1, got {max_hands}")
        if score_threshold is not None and not 0.0 <= float(score_threshold) <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if default_focal_ratio <= 0:
            raise ValueError(f"default_focal_ratio must be > 0, got {default_focal_ratio}")
        self.options = BackendOptions(name=backend, precision=precision,
                                      cache_dir=None if cache_dir is None else str(cache_dir),
                                      allow_fallback=allow_fallback, opset=opset, extra=dict(backend_options or {}))
        self.detector_model = detector
        self.refiner_model = refiner
        self.max_hands = None if max_hands is None else int(max_hands)
        self.score_threshold = None if score_threshold is None else float(score_threshold)
        self.pairing = pairing or PairingConfig()
        self.default_focal_ratio = float(default_focal_ratio)
        if refiner is not None and refiner.hand_model_id != detector.hand_model_id:
            raise HandModelMismatchError(
                f"the refiner {refiner.method_name!r} ({refiner.source}) uses hand model {refiner.hand_model_id!r}, "
                f"the detector {detector.method_name!r} ({detector.source}) {detector.hand_model_id!r}: their "
                "vertices would not correspond")
        _prepare(detector, "detector")
        _apply_decoding(detector, self.score_threshold, self.max_hands)
        self._detector = ModelRunner(detector, self.options, batch=1)
        self._refiner = None
        if refiner is not None:
            _prepare(refiner, "refiner")
            self._refiner = PairRefiner(ModelRunner(refiner, self.options, batch=self.options.max_refiner_batch))
        self.hand_model_id = detector.hand_model_id
        self.faces = {side: np.ascontiguousarray(f, dtype=np.int32)
                      for side, f in hand_faces(detector.hand_model).items()}
        self.random_weights = detector.random_weights or bool(refiner is not None and refiner.random_weights)
        self._default_k_logged: set[tuple[int, int]] = set()
        self._sync = torch.cuda.synchronize if detector.device.type == "cuda" else None
        logger.info("pipeline: detector %s (%s), refiner %s, backend %s, device %s", detector.method_name,
                    detector.source, "none" if refiner is None else f"{refiner.method_name} ({refiner.source})",
                    self.backend, detector.device)

    # ------------------------------------------------------------------------------------------ constructors
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", backend: str = "torch",
                        refiner: str | Path | LoadedModel | None = None, *, hand_model: str | None = None,
                        **kwargs: Any) -> Pipeline:
        """A pipeline from a detector training checkpoint.

        Args:
            path: detector checkpoint (``single_stage`` or ``acr``).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
            backend: see the class.
            refiner: None, a refiner checkpoint path, or a refiner method name (``"dir"``/``"dgcl"``: random
                weights, with the loud warning).
            hand_model: expected hand model (error if the checkpoint differs); None: the checkpoint's.
            **kwargs: the class's keyword arguments (``max_hands``, ``score_threshold``, ``pairing``,
                ``allow_fallback``, ``cache_dir``, ``precision`` ...).
        """
        det = load_model(path, device, hand_model=hand_model)
        ref = _resolve_refiner(refiner, det)
        return cls(det, ref, backend=backend, **kwargs)

    @classmethod
    def from_config(cls, method_name: str, hand_model: str = "open", *, device: str | torch.device = "cpu",
                    backend: str = "torch", refiner: str | Path | LoadedModel | None = None,
                    method_kwargs: Mapping[str, Any] | None = None, backbone: str | None = None, seed: int = 0,
                    **kwargs: Any) -> Pipeline:
        """A pipeline whose detector has RANDOMLY INITIALISED weights (logs a loud WARNING).

        Used until trained checkpoints exist (demos, tests, timing).

        Args:
            method_name: detector method (``"single_stage"``, ``"acr"``) or an experiment YAML naming one.
            hand_model: ``"open"``, ``"mano"`` or a path.
            device: see :meth:`from_checkpoint`.
            backend: see the class.
            refiner: None, a refiner method name (random weights) or a refiner checkpoint path.
            method_kwargs: the method's keyword arguments (its defaults otherwise, e.g. ``input_size``).
            backbone: backbone name (None: the method's default).
            seed: seed of the random initialisation.
            **kwargs: the class's keyword arguments.
        """
        det = build_random_model(method_name, hand_model, device, method_kwargs=dict(method_kwargs or {}),
                                 backbone=backbone, seed=seed)
        ref = _resolve_refiner(refiner, det, seed=seed + 1)
        return cls(det, ref, backend=backend, **kwargs)

    @classmethod
    def default(cls, device: str | torch.device = "cpu", backend: str = "torch", hand_model: str = "open",
                detector: str = "single_stage", **kwargs: Any) -> Pipeline:
        """The embedded default: the packaged checkpoints when present, else a random-weights detector.

        Looks for the detector's packaged file (:data:`~.config.DETECTOR_ASSETS`:
        ``hand_recon_core/assets/detector_default.pt`` for ``"single_stage"``, ``acr_default.pt`` for ``"acr"``)
        and ``refiner_default.pt``. Without the detector file it falls back to :meth:`from_config` with random
        weights (:data:`~.config.FALLBACK_DETECTOR` for the single-stage method) and says so (plus the
        random-weights warning).

        Raises:
            ValueError: a ``detector`` without a packaged default (:data:`~.config.DETECTOR_ASSETS`).
        """
        if detector not in DETECTOR_ASSETS:
            raise ValueError(f"no packaged default for detector {detector!r}; known: {sorted(DETECTOR_ASSETS)}")
        root = assets_dir()
        det_path = root / DETECTOR_ASSETS[detector]
        ref_path = root / DEFAULT_ASSET_NAMES["refiner"]
        refiner = kwargs.pop("refiner", str(ref_path) if ref_path.is_file() else None)
        if det_path.is_file():
            return cls.from_checkpoint(det_path, device, backend, refiner=refiner, **kwargs)
        if detector != FALLBACK_DETECTOR["method"]:
            logger.warning("no packaged %s checkpoint at %s: falling back to RANDOMLY INITIALISED weights", detector,
                           det_path)
            return cls.from_config(detector, hand_model, device=device, backend=backend, refiner=refiner, **kwargs)
        logger.warning("no packaged detector checkpoint at %s: falling back to a RANDOMLY INITIALISED %s detector "
                       "(%s)", det_path, FALLBACK_DETECTOR["method"], FALLBACK_DETECTOR)
        return cls.from_config(FALLBACK_DETECTOR["method"], hand_model, device=device, backend=backend,
                               refiner=refiner, method_kwargs=dict(FALLBACK_DETECTOR["method_kwargs"]),
                               backbone=FALLBACK_DETECTOR["backbone"], **kwargs)

    # ------------------------------------------------------------------------------------------ properties
    @property
    def backend(self) -> str:
        """Backend running the detector (``"torch"`` after a fallback)."""
        return self._detector.backend_name

    @property
    def device(self) -> torch.device:
        return self.detector_model.device

    @property
    def detector_name(self) -> str:
        return self.detector_model.method_name

    @property
    def refiner_name(self) -> str | None:
        return None if self.refiner_model is None else self.refiner_model.method_name

    def describe(self) -> dict[str, Any]:
        """Plain-value summary (for logs, diagnostics and ``hand-recon infer``'s run file)."""
        ref = self.refiner_model
        return {"detector": self.detector_name, "detector_source": self.detector_model.source,
                "refiner": self.refiner_name, "refiner_source": None if ref is None else ref.source,
                "backend": self.backend, "requested_backend": self.options.name,
                "refiner_backend": None if self._refiner is None else self._refiner.runner.backend_name,
                "device": str(self.device),
                "hand_model_id": self.hand_model_id, "random_weights": self.random_weights,
                "max_hands": self.max_hands, "score_threshold": self.score_threshold,
                "default_focal_ratio": self.default_focal_ratio}

    # ------------------------------------------------------------------------------------------ running
    def intrinsics_for(self, image_size: tuple[int, int], K: Any = None) -> np.ndarray:
        """The (3, 3) float64 ``K`` used for an image of ``(width, height)``: ``K`` validated, or the default."""
        width, height = image_size
        if K is not None:
            return validate_intrinsics(K, image_size)
        if (width, height) not in self._default_k_logged:
            self._default_k_logged.add((width, height))
            k = default_intrinsics(width, height, self.default_focal_ratio)
            logger.warning("no camera intrinsics given: using the default K (focal = %.3g x max(W, H) = %.1f px, "
                           "principal point at the image centre (%.1f, %.1f)) for %dx%d images; metric depth is only "
                           "as right as this guess, pass K (CameraInfo) when you have it", self.default_focal_ratio,
                           k[0, 0], k[0, 2], k[1, 2], width, height)
        return default_intrinsics(width, height, self.default_focal_ratio)

    def _tick(self) -> float:
        if self._sync is not None:
            self._sync()
        return time.perf_counter()

    def __call__(self, image_rgb: np.ndarray, K: np.ndarray | None = None) -> HandFrame:
        """Reconstruct every hand of one image.

        Args:
            image_rgb: (H, W, 3) uint8 RGB.
            K: (3, 3) intrinsics in pixels of this image (e.g. ``CameraInfo.k``), or None for the documented
                default (:data:`~.config.DEFAULT_FOCAL_RATIO`, logged once per image size).

        Returns:
            :class:`HandFrame`: hands sorted by descending detection score (``slot`` = index), 3D in the camera
            frame (metres), 2D in pixels of ``image_rgb``, ``K`` used, faces, ``timings_ms``.

        Raises:
            InputError: invalid image or intrinsics (dtype, shape, channels, NaN / non-positive focal).
        """
        times = {}
        t0 = self._tick()
        image = validate_image(image_rgb)
        height, width = image.shape[:2]
        k = self.intrinsics_for((width, height), K)
        det = self.detector_model
        with torch.inference_mode():
            sample = _image_sample(image, k, det.hand_model)
            batch = det.method.collate([det.method.encode_targets(sample)])
            t1 = self._tick()
            times["preprocess"] = t1 - t0
            model_out, batch = self._detector.forward(batch)
            t2 = self._tick()
            times["detector"] = t2 - t1
            pred = self._detector.predict(model_out, batch, 1)[0]
            keep = select_predictions(pred, self.score_threshold, self.max_hands)
            hands = predictions_to_hands(pred, indices=keep)
            t3 = self._tick()
            times["lifting"] = t3 - t2
            # the detector's interaction field (ACR's lambda), per kept hand
            interaction = np.asarray(pred["interaction"], np.float64)[keep] if "interaction" in pred else None
            pairs = find_pairs(hands, self.pairing, interaction) if self._refiner is not None else []
            t4 = self._tick()
            times["pairing"] = t4 - t3
            if pairs:
                hands = self._refiner.refine(image, k, hands, pairs)
            t5 = self._tick()
            times["refiner"] = t5 - t4
        times["total"] = t5 - t0
        return HandFrame(hands=hands, image_size=(width, height), K=k, hand_model_id=self.hand_model_id,
                         faces=self.faces, timings_ms={s: 1e3 * times[s] for s in STAGES})


def _image_sample(image: np.ndarray, K: np.ndarray, hand_model: str) -> dict[str, Any]:
    """A label-free sample (:mod:`hand_recon_core.data.sample` format) of one image for ``encode_targets``."""
    from hand_recon_core.data.sample import empty_hands

    return {"image": image, "K": np.asarray(K, np.float32), **empty_hands(0), "dataset": "inference",
            "sample_id": "frame", "hand_model_id": str(hand_model)}


def _resolve_refiner(refiner: str | Path | LoadedModel | None, detector: LoadedModel, seed: int = 1
                     ) -> LoadedModel | None:
    """None | LoadedModel | checkpoint path | method name or experiment YAML (random weights) -> LoadedModel."""
    if refiner is None or isinstance(refiner, LoadedModel):
        return refiner
    text = str(refiner)
    if text.endswith((".yaml", ".yml")):
        return build_random_model(text, detector.hand_model, detector.device, seed=seed)
    if Path(text).is_file():
        return load_model(text, detector.device)
    from hand_recon_core.models.registry import UnknownMethodError, get_method

    try:
        get_method(text)
    except UnknownMethodError:
        raise FileNotFoundError(f"refiner {text!r} is neither a checkpoint file nor a registered method name") from None
    return build_random_model(text, detector.hand_model, detector.device, seed=seed)
