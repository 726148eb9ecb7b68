"""Validation of the pipeline's inputs and the default camera (pure numpy).

Errors name what was given and what is expected, so a caller feeding e.g. a BGRA frame or a ``CameraInfo`` with
an all-zero ``K`` (an uncalibrated driver) learns why immediately rather than from a wrong 3D result.
"""

from __future__ import annotations

import numpy as np

from hand_recon_core.inference.config import DEFAULT_FOCAL_RATIO

__all__ = ["InputError", "default_intrinsics", "validate_image", "validate_intrinsics"]


class InputError(ValueError):
    """An image or intrinsics matrix the pipeline cannot use."""


def validate_image(image: object) -> np.ndarray:
    """Check an RGB image and return it C-contiguous.

    Args:
        image: (H, W, 3) uint8 RGB, pixels.

    Returns:
        The same image as a C-contiguous (H, W, 3) uint8 array (a copy only when the input was not contiguous).

    Raises:
        InputError: not a numpy array, wrong dtype, wrong number of dimensions or channels, or empty.
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array (H, W, 3) uint8 RGB, got {type(image).__name__}")
    if image.dtype != np.uint8:
        hint = " (scale floats in [0, 1] by 255 and convert with .astype(np.uint8))" if image.dtype.kind == "f" else ""
        raise InputError(f"image must have dtype uint8, got {image.dtype}{hint}")
    if image.ndim == 2:
        raise InputError(f"image must be (H, W, 3) RGB, got a single-channel (H, W) = {image.shape} image "
                         "(convert grayscale with np.repeat(img[..., None], 3, axis=2))")
    if image.ndim != 3:
        raise InputError(f"image must be (H, W, 3) RGB, got {image.ndim} dimensions {image.shape}")
    if image.shape[2] != 3:
        hint = " (drop the alpha channel: img[..., :3])" if image.shape[2] == 4 else ""
        raise InputError(f"image must have 3 channels (RGB), got {image.shape[2]} channels {image.shape}{hint}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"image is empty: {image.shape}")
    return np.ascontiguousarray(image)


def validate_intrinsics(K: object, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Check a pinhole intrinsics matrix.

    Args:
        K: (3, 3) ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``, pixels (any real dtype; a flat 9-vector as in
            ``sensor_msgs/CameraInfo.k`` is accepted).
        image_size: optional ``(width, height)``, only used in messages.

    Returns:
        (3, 3) float64 copy.

    Raises:
        InputError: wrong shape, NaN / infinite entries, non-positive focal lengths (an all-zero ``K`` is what an
            uncalibrated camera driver publishes), or a last row other than ``[0, 0, 1]``.
    """
    try:
        arr = np.array(K, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"K must be a (3, 3) array of numbers, got {type(K).__name__}: {exc}") from None
    if arr.shape == (9,):
        arr = arr.reshape(3, 3)
    if arr.shape != (3, 3):
        raise InputError(f"K must have shape (3, 3), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"K holds NaN or infinite values: {arr.tolist()}")
    fx, fy = arr[0, 0], arr[1, 1]
    if fx <= 0 or fy <= 0:
        where = f" for a {image_size[0]}x{image_size[1]} image" if image_size else ""
        raise InputError(f"K has non-positive focal lengths fx={fx}, fy={fy}{where}: the camera looks uncalibrated "
                         "(an all-zero CameraInfo.k); pass K=None to use the documented default focal length")
    if not np.allclose(arr[2], [0.0, 0.0, 1.0], atol=1e-6) or abs(arr[1, 0]) > 1e-9:
        raise InputError(f"K must be upper triangular with last row [0, 0, 1], got {arr.tolist()}")
    return arr


def default_intrinsics(width: int, height: int, focal_ratio: float = DEFAULT_FOCAL_RATIO) -> np.ndarray:
    """The camera assumed when none is given (see :data:`~.config.DEFAULT_FOCAL_RATIO`).

    Args:
        width: image width W, pixels.
        height: image height H, pixels.
        focal_ratio: focal length / ``max(W, H)``.

    Returns:
        (3, 3) float64 ``K`` with ``fx = fy = focal_ratio * max(W, H)`` and the principal point at the image
        centre ``((W - 1) / 2, (H - 1) / 2)`` (pixel centres at integer coordinates).
    """
    if focal_ratio <= 0:
        raise ValueError(f"focal_ratio must be > 0, got {focal_ratio}")
    f = float(focal_ratio) * max(int(width), int(height))
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
