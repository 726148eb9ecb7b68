"""``load_hand_model``: one factory for every hand model the project can use.

Sources (``name_or_path``):

* ``"open"`` (default): the project's licence-clean open hand model, ``hand_recon_core/assets/open_hand_v1.npz``
  (stored as a right hand; the left hand is its mirror image, see :meth:`HandModelData.mirrored`).
* ``"mano"``: the official MANO files in the folder named by the environment variable ``HAND_RECON_MANO_DIR``
  (``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``). MANO's data is licence-restricted and never shipped.
* a path to ``MANO_RIGHT.pkl``/``MANO_LEFT.pkl``, to a folder holding them, or to a hand-model ``.npz``
  written by :meth:`HandModelData.save_npz` (e.g. ``hand-recon hand-model generate``).

MANO pickles are read with a restricted unpickler (:mod:`hand_recon_core.hand_model.mano_pickle`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import numpy as np
import torch

from hand_recon_core.hand_model.constants import check_side
from hand_recon_core.hand_model.layer import HandLayer
from hand_recon_core.hand_model.mano_pickle import load_mano_pickle
from hand_recon_core.hand_model.model_data import HandModelData

#: Environment variable naming the folder of the official MANO pickles.
MANO_DIR_ENV = "HAND_RECON_MANO_DIR"
#: The open model asset (right hand).
OPEN_MODEL_PATH = Path(__file__).resolve().parent.parent / "assets" / "open_hand_v1.npz"


@functools.lru_cache(maxsize=8)
def _load_npz_cached(path: str, mtime_ns: int) -> HandModelData:
    return HandModelData.load_npz(path)


def _load_npz(path: Path) -> HandModelData:
    """Parsed once per file version; every caller gets its own copy of the arrays."""
    data = _load_npz_cached(str(path), path.stat().st_mtime_ns)
    copies = {f.name: np.array(getattr(data, f.name)) for f in dataclasses.fields(data)
              if isinstance(getattr(data, f.name), np.ndarray)}
    return dataclasses.replace(data, **copies, extras=dict(data.extras))


def _mano_file(folder: Path, side: str) -> Path:
    name = f"MANO_{side.upper()}.pkl"
    f = folder / name
    if not f.is_file():
        # Some distributions nest the pickles in models/.
        nested = folder / "models" / name
        if nested.is_file():
            return nested
        raise FileNotFoundError(f"{name} not found in {folder} (nor in {folder / 'models'})")
    return f


def load_hand_model_data(name_or_path: str | Path = "open", side: str = "right") -> HandModelData:
    """Load the arrays of a hand model for one side (see the module docstring for the sources).

    Args:
        name_or_path: ``"open"``, ``"mano"``, a MANO ``.pkl``, a folder of MANO pickles, or a hand-model
            ``.npz``.
        side: ``"right"`` or ``"left"``.

    Returns:
        A validated :class:`HandModelData` of that side.

    Raises:
        FileNotFoundError: missing asset/file, or ``"mano"`` with ``HAND_RECON_MANO_DIR`` unset or wrong.
    """
    check_side(side)
    if isinstance(name_or_path, str) and name_or_path == "open":
        if not OPEN_MODEL_PATH.is_file():
            raise FileNotFoundError(
                f"open hand-model asset missing: {OPEN_MODEL_PATH}; regenerate it with "
                f"`hand-recon hand-model generate --out {OPEN_MODEL_PATH}`"
            )
        data = _load_npz(OPEN_MODEL_PATH)
        return data if data.side == side else data.mirrored()
    if isinstance(name_or_path, str) and name_or_path == "mano":
        folder = os.environ.get(MANO_DIR_ENV)
        if not folder:
            raise FileNotFoundError(
                f"hand model 'mano' needs the environment variable {MANO_DIR_ENV} set to the folder holding "
                "MANO_RIGHT.pkl and MANO_LEFT.pkl (download them from https://mano.is.tue.mpg.de; they are "
                "licence-restricted and not shipped)"
            )
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"{MANO_DIR_ENV}={folder!r} is not a folder")
        return load_mano_pickle(_mano_file(Path(folder), side), side=side)
    path = Path(name_or_path)
    if path.is_dir():
        return load_mano_pickle(_mano_file(path, side), side=side)
    if not path.is_file():
        raise FileNotFoundError(f"hand model {str(name_or_path)!r}: no such file or folder "
                                "(known names: 'open', 'mano')")
    if path.suffix == ".npz":
        data = _load_npz(path)
        return data if data.side == side else data.mirrored()
    if path.suffix == ".pkl":
        stem = path.name.upper()
        other = "LEFT" if side == "right" else "RIGHT"
        if other in stem:
            raise ValueError(f"{path.name} is a {other.lower()}-hand file but side={side!r} was requested")
        return load_mano_pickle(path, side=side)
    raise ValueError(f"unsupported hand-model file {path} (expected .pkl or .npz)")


def load_hand_model(name_or_path: str | Path = "open", side: str = "right", pose_repr: str = "axis_angle",
                    num_pca_comps: int = 45, flat_hand_mean: bool = False,
                    device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> HandLayer:
    """Build a :class:`HandLayer` for one hand.

    Args:
        name_or_path: ``"open"`` (default), ``"mano"`` (folder from ``HAND_RECON_MANO_DIR``), a MANO
            ``.pkl``, a folder with ``MANO_RIGHT.pkl``/``MANO_LEFT.pkl``, or a hand-model ``.npz``.
        side: ``"right"`` or ``"left"``.
        pose_repr: ``"axis_angle"`` (B, 45), ``"pca"`` (B, K) or ``"6d"`` (B, 15, 6); see :class:`HandLayer`.
        num_pca_comps: K for ``pose_repr="pca"``.
        flat_hand_mean: False (default, like smplx/manopth) adds the model's mean pose to axis-angle/PCA
            inputs; True makes zero input the flat template pose.
        device: where to put the buffers (default CPU).
        dtype: floating dtype of the buffers.

    Returns:
        The layer (in eval mode; it has no trainable parameters).
    """
    data = load_hand_model_data(name_or_path, side)
    layer = HandLayer(data, pose_repr=pose_repr, num_pca_comps=num_pca_comps, flat_hand_mean=flat_hand_mean,
                      dtype=dtype)
    if device is not None:
        layer = layer.to(device)
    return layer.eval()
