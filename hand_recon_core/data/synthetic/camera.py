"""Cameras of the synthetic scenes: intrinsics, projection, random rotations, placement in the view.

Conventions (those of :mod:`hand_recon_core.data.sample`): the camera frame is the OpenCV/ROS optical frame
(x right, y down, z forward, metres); pixel coordinates have the centre of the top-left pixel at (0, 0) and
``uv = (K X)[:2] / (K X)[2]``. Every synthetic camera is an ideal pinhole with square pixels, no skew and the
principal point at the image centre ``((W - 1) / 2, (H - 1) / 2)``; the focal length is set per family (see
:mod:`hand_recon_core.data.synthetic.families`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "intrinsics",
    "project",
    "backproject",
    "random_rotation",
    "rotation_about",
    "upright_rotation",
    "hand_view_rotation",
]


def intrinsics(focal: float, size: tuple[int, int]) -> np.ndarray:
    """Pinhole intrinsics with the principal point at the image centre (project pixel convention).

    Args:
        focal: focal length in pixels (``fx = fy``).
        size: (H, W) image size in pixels.

    Returns:
        (3, 3) float32 ``K`` with ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``.
    """
    h, w = size
    return np.array([[focal, 0.0, (w - 1) / 2.0], [0.0, focal, (h - 1) / 2.0], [0.0, 0.0, 1.0]], dtype=np.float32)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Perspective projection ``uv = (K X)[:2] / (K X)[2]``.

    Args:
        points: (..., 3) camera-frame points, metres (z > 0).
        K: (3, 3) intrinsics, pixels.

    Returns:
        (..., 2) float64 pixel coordinates.
    """
    p = np.asarray(points, dtype=np.float64) @ np.asarray(K, dtype=np.float64).T
    return p[..., :2] / p[..., 2:3]


def backproject(uv: np.ndarray, depth: np.ndarray | float, K: np.ndarray) -> np.ndarray:
    """Camera-frame point at pixel ``uv`` and depth ``z`` (inverse of :func:`project`).

    Args:
        uv: (..., 2) pixel coordinates.
        depth: (...) or scalar camera-frame z, metres.
        K: (3, 3) intrinsics.

    Returns:
        (..., 3) float64 points, metres.
    """
    uv = np.asarray(uv, dtype=np.float64)
    ones = np.ones(uv.shape[:-1] + (1,))
    rays = np.concatenate([uv, ones], axis=-1) @ np.linalg.inv(np.asarray(K, dtype=np.float64)).T
    return rays * np.asarray(depth, dtype=np.float64)[..., None]


def rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix (Rodrigues) about ``axis`` by ``angle`` radians (right-hand rule).

    Args:
        axis: (3,) rotation axis (need not be unit).
        angle: radians.

    Returns:
        (3, 3) float64 rotation matrix.
    """
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed random rotation (normalised Gaussian quaternion).

    Args:
        rng: random generator.

    Returns:
        (3, 3) float64 rotation matrix.
    """
    w, x, y, z = rng.normal(size=4)
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


#: Hand-model frame -> camera frame for an upright right hand showing its palm: fingers (model -x) point up in
#: the image (camera -y), the palm normal (model -y) points at the camera (camera -z), so model z -> camera x.
UPRIGHT_PALM = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def upright_rotation(roll: float = 0.0, back: bool = False, side: str = "right") -> np.ndarray:
    """Model-to-camera rotation of an upright hand (fingers up in the image) seen from the palm or the back.

    A right hand's fingers point along model -x, a left hand's (the mirror image) along +x; both palms face
    model -y. Seen from the palm side, a right thumb appears on the image's right (+x), a left thumb on its left.

    Args:
        roll: in-plane rotation about the optical axis (radians); positive tilts the fingers towards +x, i.e.
            clockwise as seen in the image (whose y axis points down).
        back: show the back of the hand (rotated by pi about the image's vertical axis).
        side: ``"right"`` or ``"left"``.

    Returns:
        (3, 3) float64 rotation mapping hand-model coordinates to camera coordinates.
    """
    r = UPRIGHT_PALM if side == "right" else np.diag([-1.0, -1.0, 1.0]) @ UPRIGHT_PALM
    if back:
        r = rotation_about((0.0, 1.0, 0.0), np.pi) @ r
    return rotation_about((0.0, 0.0, 1.0), roll) @ r


def hand_view_rotation(rng: np.random.Generator, uniform_probability: float = 0.35,
                       max_tilt: float = np.radians(60.0), side: str = "right") -> np.ndarray:
    """Random model-to-camera rotation of a hand.

    With probability ``uniform_probability`` the rotation is uniform over SO(3); otherwise the hand shows its
    palm or its back (50 / 50) to the camera, with any in-plane roll and a tilt of up to ``max_tilt`` about a
    random axis in the image plane (the common "hand facing the camera" views of FreiHAND / InterHand2.6M).

    Args:
        rng: random generator.
        uniform_probability: probability of a uniformly random orientation.
        max_tilt: largest out-of-plane tilt in radians for the facing views.
        side: ``"right"`` or ``"left"`` (see :func:`upright_rotation`).

    Returns:
        (3, 3) float64 rotation (hand-model frame -> camera frame).
    """
    if rng.random() < uniform_probability:
        return random_rotation(rng)
    back = bool(rng.random() < 0.5)
    roll = rng.uniform(-np.pi, np.pi)
    phi = rng.uniform(0.0, 2.0 * np.pi)
    tilt = rng.uniform(0.0, max_tilt)
    return rotation_about((np.cos(phi), np.sin(phi), 0.0), tilt) @ upright_rotation(roll, back, side)
