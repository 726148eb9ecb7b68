"""Evaluate a training checkpoint on a dataset: load safely, predict, match, write metrics and pictures.

Single process (evaluation sets are small next to training; run several evaluations in parallel for more).
Outputs in ``out_dir``: ``metrics.json`` and ``per_sample.csv`` (:class:`~.evaluator.Evaluator`), and with
``vis > 0`` the first ``vis`` images as ``vis/NNNNN.png`` (:mod:`~.visualize`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from hand_recon_core.data.build import build_dataset
from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.models.registry import create_method, import_plugins
from hand_recon_core.training import checkpoint as ckpt_io
from hand_recon_core.training.config import ExperimentConfig, config_from_dict, load_config
from hand_recon_core.training.data import MethodDataset, make_loader
from hand_recon_core.training.engine import autocast_context, move_to_device, resolve_device
from hand_recon_core.training.evaluator import Evaluator
from hand_recon_core.training.visualize import render_prediction_panel, write_panel

__all__ = ["build_method_and_model", "evaluate_checkpoint", "forward_batch", "hand_faces", "load_trained",
           "predict_batch"]

logger = logging.getLogger(__name__)


def load_trained(checkpoint: str | Path, device: str | torch.device = "cpu", method: str | None = None,
                 hand_model: str | None = None, overrides: Sequence[str] = ()
                 ) -> tuple[ExperimentConfig, Any, nn.Module, dict[str, Any]]:
    """Rebuild the method and model of a checkpoint and load its weights (strictly, weights-only).

    Args:
        checkpoint: path of a training checkpoint.
        device: where to put the model.
        method: expected method name (None: whatever the checkpoint holds, if registered).
        hand_model: expected hand model (None: the checkpoint's).
        overrides: ``key=value`` changes to the stored config before the method is built (evaluation-time
            options such as ``method.kwargs.predict_stage=0``; the weights must still fit).

    Returns:
        ``(cfg, method, model, ckpt)`` with the model in eval mode.

    Raises:
        CheckpointError / MethodMismatchError / HandModelMismatchError / CheckpointMismatchError: see
        :mod:`hand_recon_core.training.checkpoint`.
    """
    ckpt = ckpt_io.load_checkpoint(checkpoint, map_location="cpu")
    cfg = load_config(None, list(overrides), base=ckpt["config"]) if overrides else config_from_dict(ckpt["config"])
    cfg.backbone.pretrained = None  # the checkpoint holds all weights; the original file may not exist here
    for key in ckpt_io.TRAINING_INIT_KWARGS:  # likewise the training-time initialisation from other files
        if cfg.method.kwargs.get(key):
            cfg.method.kwargs[key] = None
    import_plugins(cfg.imports)
    ckpt_io.check_method(ckpt, method, source=str(checkpoint))
    if hand_model is not None:
        ckpt_io.check_hand_model(ckpt, hand_model, source=str(checkpoint))
    meth, model = build_method_and_model(cfg)
    ckpt_io.load_model_state(model, ckpt["model"], source=str(checkpoint))
    return cfg, meth, model.to(device).eval(), ckpt


def build_method_and_model(cfg: ExperimentConfig) -> tuple[Any, nn.Module]:
    """The method of ``cfg`` and its freshly built (initialised, not loaded) model.

    Shared by :func:`load_trained` and the inference pipeline's randomly initialised models
    (:meth:`hand_recon_core.inference.Pipeline.from_config`).

    Args:
        cfg: experiment config (``method``, ``backbone``, ``hand_model``, ``imports``).

    Returns:
        ``(method, model)``; the model is on the CPU in training mode.
    """
    import_plugins(cfg.imports)
    meth = create_method(cfg.method.name, cfg.method.kwargs)
    return meth, meth.build(cfg, cfg.hand_model)


def forward_batch(model: nn.Module, batch: Mapping[str, Any], device: torch.device,
                  precision: str = "fp32") -> tuple[Any, Mapping[str, Any]]:
    """Move a collated batch to ``device`` and run the model's ``forward`` under the precision's autocast.

    Args:
        model: a built method's model (eval mode).
        batch: the method's ``collate`` output.
        device: where the model lives.
        precision: ``fp32`` / ``bf16`` / ``fp16`` (:func:`~hand_recon_core.training.engine.autocast_context`).

    Returns:
        ``(model_out, batch_on_device)``.
    """
    batch = move_to_device(batch, device, non_blocking=True)
    with autocast_context(precision, device):
        model_out = model(batch)
    return model_out, batch


def predict_batch(method: Any, model: nn.Module, batch: Mapping[str, Any], device: torch.device,
                  precision: str = "fp32", num_images: int | None = None) -> list[dict[str, Any]]:
    """``forward`` (:func:`forward_batch`) then ``method.predict``: one prediction dict per image of the batch.

    Raises:
        ValueError: ``predict`` returned another number of predictions than ``num_images`` (when given).
    """
    model_out, batch = forward_batch(model, batch, device, precision)
    preds = method.predict(model_out, batch)
    if num_images is not None and len(preds) != num_images:
        raise ValueError(f"method {getattr(method, 'method_name', type(method).__name__)!r}: predict returned "
                         f"{len(preds)} predictions for {num_images} images")
    return preds


def hand_faces(hand_model: str) -> dict[int, np.ndarray]:
    """Faces of the right and left hand of ``hand_model`` (``RIGHT``/``LEFT`` -> ``(F, 3)`` int).

    Raises:
        FileNotFoundError / ValueError: the hand model cannot be loaded here.
    """
    from hand_recon_core.hand_model.loader import load_hand_model_data

    return {RIGHT: np.asarray(load_hand_model_data(hand_model, "right").faces),
            LEFT: np.asarray(load_hand_model_data(hand_model, "left").faces)}


@torch.no_grad()
def evaluate_checkpoint(checkpoint: str | Path, data: Any, out_dir: str | Path, *, vis: int = 0,
                        max_samples: int | None = None, device: str = "auto", batch_size: int | None = None,
                        num_workers: int = 0, hand_model: str | None = None,
                        faces: Mapping[int, np.ndarray] | None = None, min_affinity: float = 0.1,
                        progress: bool = False, baseline: str | None = None,
                        overrides: Sequence[str] = (), penetration_images: int | None = None) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on the dataset ``data`` and write the results into ``out_dir``.

    Args:
        checkpoint: training checkpoint path.
        data: dataset spec (string, mapping or ``DatasetSpec``; see :func:`hand_recon_core.data.build.build_dataset`).
        out_dir: output folder.
        vis: number of images to render (input | mesh overlay | side view).
        max_samples: evaluate only the first N samples of the dataset.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: images per batch (default: the training config's ``val_batch_size`` or ``batch_size``).
        num_workers: data-loader workers.
        hand_model: expected hand model (checked against the checkpoint); the pictures use the checkpoint's.
        faces: faces per handedness for the pictures (default: from the hand model).
        min_affinity: matching threshold of :func:`~.evaluator.match_hands`.
        progress: show a tqdm bar.
        baseline: also score a trivial baseline (:data:`~.baselines.BASELINES`: ``"mean-pose"``) on the same
            detections; written to ``out_dir/baseline_<name>/`` and returned under ``"baseline"``.
        overrides: config ``key=value`` changes applied before building the method (see :func:`load_trained`).
        penetration_images: compute the interpenetration volume of two-hand images (voxelised, up to seconds per
            image on a CPU) on the first this many eligible ones only (None: all; 0: leave it out).

    Returns:
        The ``metrics.json`` content (plus ``"baseline"`` when asked).
    """
    from hand_recon_core.training.baselines import BaselineRecorder

    recorder = BaselineRecorder(baseline)
    dev = resolve_device(device)
    cfg, method, model, ckpt = load_trained(checkpoint, dev, hand_model=hand_model, overrides=overrides)
    if faces is None:
        try:
            faces = hand_faces(cfg.hand_model)
        except (FileNotFoundError, ValueError) as exc:
            if vis > 0:
                raise FileNotFoundError(f"--vis needs the faces of hand model {cfg.hand_model!r}: {exc}") from exc
            logger.warning("no faces for hand model %r (%s): no interpenetration volume", cfg.hand_model, exc)
    dataset = build_dataset(data)
    if max_samples is not None:
        dataset = Subset(dataset, range(min(int(max_samples), len(dataset))))
    wrapped = MethodDataset(dataset, method.encode_targets, cfg.seed, keep_raw=True)
    loader = make_loader(wrapped, method.collate, batch_size or cfg.data.val_batch_size or cfg.data.batch_size,
                         shuffle=False, drop_last=False, epoch=0, seed=cfg.seed, rank=0, world_size=1,
                         num_workers=num_workers, pin_memory=dev.type == "cuda")
    precision = cfg.train.precision
    if precision == "fp16" and dev.type != "cuda":
        logger.warning("the checkpoint was trained with fp16 autocast; evaluating in fp32 on %s", dev)
        precision = "fp32"
    out = Path(out_dir)
    evaluator = Evaluator(min_affinity=min_affinity, faces=faces, penetration_images=penetration_images)
    written = 0
    iterator = loader
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(loader, desc="eval", unit="batch")
    for batch, raws in iterator:
        preds = predict_batch(method, model, batch, dev, precision, num_images=len(raws))
        for pred, raw in zip(preds, raws):
            evaluator.add(pred, raw)
            recorder.add(pred, raw)
            if written < vis:
                panel = render_prediction_panel(raw["image"], raw["K"], pred, faces)
                write_panel(out / "vis" / f"{written:05d}.png", panel)
                written += 1
    extra = {"checkpoint": str(checkpoint), "method": cfg.method.name, "hand_model": ckpt.get("hand_model"),
             "step": int(ckpt["step"]), "data": _spec_repr(data), "code_version": ckpt.get("code_version"),
             "overrides": list(overrides)}
    return recorder.write(evaluator.write(out, extra), out, extra, min_affinity=min_affinity, faces=faces,
                          penetration_images=penetration_images,
                          gt_volume_cache=evaluator.gt_volume_cache)


def frame_to_prediction(frame: Any) -> dict[str, Any]:
    """A :class:`~hand_recon_core.inference.frame.HandFrame` as an evaluator prediction dict (P hands)."""
    hands = list(frame.hands)

    def stack(key: str, shape: tuple[int, ...]) -> np.ndarray:
        return (np.stack([np.asarray(getattr(h, key), np.float32) for h in hands]) if hands
                else np.zeros((0, *shape), np.float32))

    n_verts = hands[0].vertices_3d.shape[0] if hands else 0
    return {"handedness": np.array([h.handedness for h in hands], np.int64),
            "score": np.array([h.score for h in hands], np.float32), "bbox": stack("bbox", (4,)),
            "keypoints_2d": stack("keypoints_2d", (21, 2)), "joints_3d": stack("joints_3d", (21, 3)),
            "vertices_3d": stack("vertices_3d", (n_verts, 3))}


def evaluate_pipeline(detector: str | Path, data: Any, out_dir: str | Path, *, refiner: str | Path | None = None,
                      max_samples: int | None = None, device: str = "cpu", min_affinity: float = 0.1,
                      progress: bool = False, baseline: str | None = None, penetration_images: int | None = None,
                      **pipeline_kwargs: Any) -> dict[str, Any]:
    """Evaluate the inference :class:`~hand_recon_core.inference.pipeline.Pipeline` (detector, optionally the
    two-hand refiner) image by image, as a deployed node runs it: full image + its intrinsics in, hands out.

    Args:
        detector: detector checkpoint (``single_stage`` / ``acr``).
        data: dataset spec.
        out_dir: output folder (``metrics.json``, ``per_sample.csv``, ``baseline_<name>/``).
        refiner: refiner checkpoint (``dir`` / ``dgcl``), or None for the detector alone.
        max_samples, device, min_affinity, progress, baseline, penetration_images: as :func:`evaluate_checkpoint`.
        **pipeline_kwargs: ``Pipeline`` options (``score_threshold``, ``max_hands``, ``pairing`` ...).

    Returns:
        The ``metrics.json`` content (plus ``"baseline"`` when asked).
    """
    from hand_recon_core.inference.pipeline import Pipeline
    from hand_recon_core.training.baselines import BaselineRecorder

    recorder = BaselineRecorder(baseline)
    pipeline = Pipeline.from_checkpoint(detector, device=resolve_device(device), refiner=refiner, **pipeline_kwargs)
    dataset = build_dataset(data)
    n = len(dataset) if max_samples is None else min(int(max_samples), len(dataset))
    indices: Any = range(n)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="eval", unit="image")
    try:
        faces = hand_faces(pipeline.detector_model.hand_model)
    except (FileNotFoundError, ValueError) as exc:
        logger.warning("no faces for the detector's hand model (%s): no interpenetration volume", exc)
        faces = None
    evaluator = Evaluator(min_affinity=min_affinity, faces=faces, penetration_images=penetration_images)
    refined = 0
    for i in indices:
        raw = dataset[i]
        frame = pipeline(raw["image"], raw["K"])
        refined += sum(bool(h.refined) for h in frame.hands)
        pred = frame_to_prediction(frame)
        evaluator.add(pred, raw)
        recorder.add(pred, raw)
    extra = {"detector": str(detector), "refiner": None if refiner is None else str(refiner),
             "hands_refined": refined, "data": _spec_repr(data), "through": "Pipeline"}
    result = evaluator.write(out_dir, extra)
    return recorder.write(result, out_dir, extra, min_affinity=min_affinity, faces=faces,
                          penetration_images=penetration_images,
                          gt_volume_cache=evaluator.gt_volume_cache)


def _spec_repr(data: Any) -> Any:
    if isinstance(data, (str, Mapping)):
        return data if isinstance(data, str) else dict(data)
    return {"name": getattr(data, "name", str(data)), "kwargs": dict(getattr(data, "kwargs", {}) or {})}
