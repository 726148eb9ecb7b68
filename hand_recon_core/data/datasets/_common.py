"""Small helpers shared by the dataset loaders: file checks with clear errors, image reading, projection."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hand_recon_core.data.sample import JOINT_ORDER
from hand_recon_core.hand_model.joint_orders import convert_joints

__all__ = [
    "require_dir",
    "require_file",
    "load_json",
    "read_rgb",
    "read_single_channel",
    "intrinsics_matrix",
    "project_points",
    "bbox_from_keypoints",
    "to_canonical_order",
    "flags_to_canonical_order",
]


def require_dir(path: str | os.PathLike[str], what: str) -> Path:
    """Return ``path`` as a ``Path`` if it is a directory.

    Raises:
        FileNotFoundError: naming ``what`` and the expected path.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: expected a directory at {path}")
    return path


def require_file(path: str | os.PathLike[str], what: str) -> Path:
    """Return ``path`` as a ``Path`` if it is a file.

    Raises:
        FileNotFoundError: naming ``what`` and the expected path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: expected a file at {path}")
    return path


def load_json(path: str | os.PathLike[str], what: str) -> Any:
    """Parse the JSON file at ``path`` (checked with :func:`require_file`)."""
    with open(require_file(path, what), encoding="utf-8") as f:
        return json.load(f)


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a colour image as RGB.

    EXIF orientation is ignored so that pixel coordinates match the dataset's intrinsics.

    Returns:
        (H, W, 3) uint8 RGB.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: OpenCV cannot decode it.
    """
    require_file(path, "image")
    bgr = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise ValueError(f"cannot decode image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_single_channel(path: str | os.PathLike[str], what: str) -> np.ndarray:
    """Read a label / mask image unchanged; a 3-channel file gives its first (blue) channel.

    Returns:
        (H, W) array with the file's dtype (uint8 or uint16).
    """
    require_file(path, what)
    img = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise ValueError(f"cannot decode {what} {path}")
    return img if img.ndim == 2 else img[..., 0]


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(3, 3) float32 pinhole intrinsics from focal lengths and principal point (pixels)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float32)


def project_points(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection ``uv = (K @ X)[:2] / (K @ X)[2]``.

    Args:
        points: (..., 3) camera-frame points (OpenCV frame, z forward), any length unit.
        K: (3, 3) intrinsics, pixels.

    Returns:
        (..., 2) float64 pixel coordinates; points with ``z <= 0`` give non-finite or meaningless values, so
        callers must only use projections of points in front of the camera.
    """
    p = np.asarray(points, dtype=np.float64) @ np.asarray(K, dtype=np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return p[..., :2] / p[..., 2:3]


def bbox_from_keypoints(keypoints: np.ndarray, valid: np.ndarray, width: int, height: int) -> np.ndarray:
    """Tight ``x1, y1, x2, y2`` box around the valid keypoints, clipped to the image.

    Args:
        keypoints: (J, 2) pixel coordinates.
        valid: (J,) flags; only joints with ``valid > 0`` count.
        width: image width, pixels.
        height: image height, pixels.

    Returns:
        (4,) float32 box in pixels; all zeros when no keypoint is valid.
    """
    pts = np.asarray(keypoints, dtype=np.float64)[np.asarray(valid) > 0]
    if len(pts) == 0:
        return np.zeros(4, dtype=np.float32)
    lo = np.clip(pts.min(axis=0), 0.0, [width, height])
    hi = np.clip(pts.max(axis=0), 0.0, [width, height])
    return np.concatenate([lo, hi]).astype(np.float32)


def to_canonical_order(joints: np.ndarray, src: str) -> np.ndarray:
    """Reorder (..., 21, C) joint values from order ``src`` to the sample format's ``JOINT_ORDER``.

    Args:
        joints: (..., 21, C) values (coordinates of any frame and unit).
        src: source order understood by :func:`hand_recon_core.hand_model.joint_orders.convert_joints`.

    Returns:
        (..., 21, C) array in the canonical order.
    """
    return convert_joints(np.asarray(joints), src, JOINT_ORDER)


def flags_to_canonical_order(flags: np.ndarray, src: str) -> np.ndarray:
    """Reorder (..., 21) per-joint flags from order ``src`` to ``JOINT_ORDER``."""
    return to_canonical_order(np.asarray(flags)[..., None], src)[..., 0]
