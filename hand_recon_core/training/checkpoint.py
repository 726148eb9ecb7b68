"""Checkpoints: what they carry, how they are written (atomically) and read (safely), and the resume checks.

A checkpoint is a ``torch.save`` dict of tensors and plain Python values only, so that it loads with
``torch.load(..., weights_only=True)`` (no arbitrary unpickling):

==================  =====================================================================================
key                 content
==================  =====================================================================================
``format``          :data:`CHECKPOINT_FORMAT`
``method``          registered method name
``hand_model``      configured hand model (``"open"``, ``"mano"`` or a path)
``hand_model_id``   resolved id of that model (e.g. ``"open-v1-right"``), None when it could not be loaded
``config``          the full experiment config as plain dicts (:func:`~.config.config_to_dict`)
``model``           ``state_dict`` of the bare model (no DDP ``module.`` prefix)
``optimizer``       optimiser ``state_dict``
``scheduler``       :meth:`~.schedules.LRSchedule.state_dict`
``scaler``          ``torch.amp.GradScaler`` ``state_dict`` (empty unless fp16)
``step``            optimiser steps taken so far
``epoch``           epoch in progress (0-based) ...
``batch_in_epoch``  ... and batches of it already consumed (0 when the epoch is complete: ``epoch`` is then
                    the next epoch)
``rng``             per-rank RNG states (python, numpy, torch CPU, CUDA), a list indexed by rank
``world_size``      processes of the run that wrote it
``code_version``    ``{"package": version, "git_commit": sha or None, "git_dirty": bool or None}``
``metrics``         last logged metrics (plain floats)
==================  =====================================================================================

Files are ``<output_dir>/checkpoints/step_XXXXXXXX.pt``, written to a temporary name and renamed, so a run
killed while writing never leaves a truncated checkpoint; ``--resume auto`` picks the highest step.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hand_recon_core
from hand_recon_core.models.backbones.resnet import CheckpointMismatchError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "CheckpointMismatchError",
    "HandModelMismatchError",
    "MethodMismatchError",
    "TRAINING_INIT_KWARGS",
    "capture_rng_state",
    "check_hand_model",
    "check_method",
    "checkpoint_path",
    "code_version",
    "extract_backbone",
    "find_latest_checkpoint",
    "hand_model_identity",
    "list_checkpoints",
    "load_checkpoint",
    "load_model_state",
    "pack_checkpoint",
    "prune_checkpoints",
    "restore_rng_state",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

#: Version of the checkpoint layout in the module docstring.
CHECKPOINT_FORMAT = 1
_REQUIRED = ("format", "method", "hand_model", "config", "model", "step", "epoch", "code_version")
_NAME = re.compile(r"^step_(\d{8,})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used (unreadable, wrong format, incompatible run)."""


class MethodMismatchError(CheckpointError):
    """The checkpoint was written by another method than the one requested (or an unregistered one)."""


class HandModelMismatchError(CheckpointError):
    """The checkpoint was trained with another hand model than the one requested."""


# ------------------------------------------------------------------------------------------------------------
# provenance
# ------------------------------------------------------------------------------------------------------------


#: Method keyword arguments that only initialise a network for training from other files (an earlier run, a
#: detector's keypoint branch): a trained checkpoint holds every weight, so loading or packing one drops them.
TRAINING_INIT_KWARGS = ("init_weights", "keypoint_init")


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """Package version and, when the package sits in a git work tree, the commit and whether it is dirty."""
    root = Path(hand_recon_core.__file__).resolve().parent.parent
    commit: str | None = None
    dirty: bool | None = None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        if out.returncode == 0:
            commit = out.stdout.strip()
            status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10)
            dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"package": hand_recon_core.__version__, "git_commit": commit, "git_dirty": dirty}


@functools.lru_cache(maxsize=16)
def hand_model_identity(name: str) -> str | None:
    """The ``model_id`` of hand model ``name`` (right side), or None when it cannot be loaded here.

    ``"open"`` resolves to e.g. ``"open-v1-right"``; ``"mano"`` needs ``HAND_RECON_MANO_DIR``.
    """
    from hand_recon_core.hand_model.loader import load_hand_model_data

    try:
        return str(load_hand_model_data(name, "right").model_id)
    except Exception as exc:  # a missing or broken asset must not stop training: say so once (lru_cache)
        logger.warning("hand model %r cannot be loaded here (%s: %s); checkpoints record only its name", name,
                       type(exc).__name__, exc)
        return None


def check_hand_model(ckpt: Mapping[str, Any], hand_model: str, source: str = "checkpoint") -> None:
    """Raise :class:`HandModelMismatchError` when ``ckpt`` was trained with another hand model.

    Two hand models are the same when their resolved ids agree (so a path to the open model's file matches
    ``"open"``); when either id is unknown, their configured names must agree.
    """
    theirs_name = ckpt.get("hand_model")
    theirs_id = ckpt.get("hand_model_id")
    ours_id = hand_model_identity(hand_model)
    same = theirs_id == ours_id if (theirs_id and ours_id) else theirs_name == hand_model
    if not same:
        raise HandModelMismatchError(
            f"{source} was trained with hand model {theirs_name!r} (id {theirs_id!r}) but hand model "
            f"{hand_model!r} (id {ours_id!r}) was requested; vertices, faces and parameters would not correspond"
        )


def check_method(ckpt: Mapping[str, Any], method: str | None = None, source: str = "checkpoint") -> None:
    """Raise :class:`MethodMismatchError` when ``ckpt``'s method is not ``method`` or is not registered."""
    from hand_recon_core.models.registry import UnknownMethodError, get_method

    name = ckpt.get("method")
    if method is not None and name != method:
        raise MethodMismatchError(f"{source} holds method {name!r}, not the requested {method!r}")
    try:
        get_method(str(name))
    except UnknownMethodError as exc:
        raise MethodMismatchError(f"{source}: {exc}") from None


# ------------------------------------------------------------------------------------------------------------
# RNG states (plain values / tensors only)
# ------------------------------------------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """This process's python, numpy, torch-CPU and CUDA RNG states, as weights-only-safe values."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002 (the global generator is the state we manage)
    state = {
        "python": {"version": int(version), "internal": [int(x) for x in internal], "gauss": gauss},
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore :func:`capture_rng_state` (CUDA states only when as many devices are visible)."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"],  # noqa: NPY002
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# ------------------------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------------------------


def checkpoint_path(folder: str | Path, step: int) -> Path:
    """``folder/step_XXXXXXXX.pt``."""
    return Path(folder) / f"step_{int(step):08d}.pt"


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Step checkpoints in ``folder``, by increasing step."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def find_latest_checkpoint(folder: str | Path) -> Path | None:
    """The highest-step checkpoint in ``folder`` (None if there is none)."""
    found = list_checkpoints(folder)
    return found[-1] if found else None


def prune_checkpoints(folder: str | Path, keep_last: int | None) -> None:
    """Delete all but the ``keep_last`` highest-step checkpoints (None keeps all)."""
    if keep_last is None:
        return
    for path in list_checkpoints(folder)[:-keep_last]:
        path.unlink(missing_ok=True)


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` atomically (temporary file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(dict(payload), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and check its layout.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable without arbitrary unpickling, or not a hand_recon checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError variants
        raise CheckpointError(f"{path}: cannot be loaded safely (weights_only=True): {exc}") from exc
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in _REQUIRED):
        missing = [k for k in _REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
        raise CheckpointError(f"{path}: not a hand_recon training checkpoint (missing {missing})")
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {ckpt['format']} is not supported "
                              f"(this version reads {CHECKPOINT_FORMAT})")
    return ckpt


def load_model_state(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint",
                     strict: bool = True) -> list[str]:
    """Load ``state`` into ``model``, listing every missing, unexpected and mismatching key.

    Args:
        strict: any difference is an error. ``False`` (initialising a changed network from an older run) loads
            every key present in both with the same shape and leaves the rest at the model's initialisation.

    Returns:
        The model keys left at their initialisation (empty when strict).

    Raises:
        CheckpointMismatchError: ``strict`` and any key or shape differs (nothing is loaded then).
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in mismatched]
    if strict and (missing or unexpected or shapes):
        lines = [f"{source} does not match the model:"]
        for title, items in (("shape mismatch", shapes), ("missing in checkpoint", missing),
                             ("unexpected in checkpoint", unexpected)):
            if items:
                shown = items[:20] + ([f"... and {len(items) - 20} more"] if len(items) > 20 else [])
                lines.append(f"  {title} ({len(items)}): " + "; ".join(shown))
        raise CheckpointMismatchError("\n".join(lines))
    skipped = sorted(set(missing) | set(mismatched))
    model.load_state_dict({k: v for k, v in state.items() if k in own and k not in mismatched}, strict=False)
    return skipped


def pack_checkpoint(src: str | Path, dst: str | Path, fp16: bool = True,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write an inference-only copy of a training checkpoint (what the package ships as its defaults).

    Keeps the required entries (config, model weights, method, hand model, step, epoch, code version) and the
    last metrics; drops optimizer, scheduler, scaler and RNG state. With ``fp16`` the floating-point weights are
    stored as float16 (half the size); :func:`load_model_state` copies them back into the float32 model.

    Args:
        src: training checkpoint.
        dst: output file (parent folders are created).
        fp16: store floating tensors as float16.
        extra: more top-level entries (e.g. ``{"packed_from": ..., "reproduce": "command"}``).

    Returns:
        ``dst``.
    """
    ckpt = load_checkpoint(src)
    state = {k: (v.half() if fp16 and v.is_floating_point() else v).contiguous() for k, v in ckpt["model"].items()}
    payload = {k: ckpt[k] for k in _REQUIRED if k != "model"}
    config = payload.get("config")
    if isinstance(config, dict) and isinstance(config.get("method"), dict):
        # the package holds every weight: the training-time initialisation from an earlier run (or of the
        # backbone from a weights file) is not needed
        kwargs = dict(config["method"].get("kwargs") or {})
        if any(kwargs.get(k) for k in TRAINING_INIT_KWARGS):
            kwargs.update({k: None for k in TRAINING_INIT_KWARGS if kwargs.get(k)})
            payload["config"] = {**config, "method": {**config["method"], "kwargs": kwargs}}
        if isinstance(config.get("backbone"), dict) and config["backbone"].get("pretrained"):
            payload["config"] = {**payload["config"], "backbone": {**config["backbone"], "pretrained": None}}
    payload.update(model=state, metrics=ckpt.get("metrics") or {}, packed={"fp16": bool(fp16), **dict(extra or {})})
    return save_checkpoint(dst, payload)


def extract_backbone(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Write the backbone of a hand_recon checkpoint as a torchvision-format state dict (float32).

    Every method keeps its ResNet under ``backbone.`` with torchvision's keys, so a trained network's backbone
    can initialise another method's (``backbone.pretrained`` of a config), as ImageNet weights would. The file
    is checked by loading it strictly into a fresh backbone of the checkpoint's ``backbone.name``.

    Args:
        src: training checkpoint or package (:func:`pack_checkpoint`).
        dst: output ``.pth`` file (parent folders are created).

    Returns:
        ``{"backbone": name, "tensors": count, "source": str(src), "out": str(dst)}``.

    Raises:
        FileNotFoundError, CheckpointError: as :func:`load_checkpoint`; also when the checkpoint holds no
            ``backbone.*`` weights or names no backbone.
    """
    from hand_recon_core.models.backbones import build_backbone

    ckpt = load_checkpoint(src)
    state = {k[len("backbone."):]: v.float() if v.is_floating_point() else v
             for k, v in ckpt["model"].items() if k.startswith("backbone.")}
    name = ((ckpt.get("config") or {}).get("backbone") or {}).get("name")
    if not state or not name:
        raise CheckpointError(f"{src}: no backbone weights (backbone.*) or no backbone name in its config")
    model = build_backbone(name)
    load_model_state(model, state, source=f"{src} (backbone.*)")  # strict: the file must load as is
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, dst)
    return {"backbone": name, "tensors": len(state), "source": str(src), "out": str(dst)}
