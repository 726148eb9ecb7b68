"""Camera models: pinhole perspective with intrinsics, weak perspective on a square crop, and conversions.

Frames and units (project conventions):

* **Camera frame**: OpenCV/ROS optical frame, x right, y down, z forward (out of the lens), metres.
* **Pixels**: ``(u, v)`` with ``u`` to the right and ``v`` down, in the convention of the intrinsics ``K``
  (OpenCV/ROS ``CameraInfo``: integer coordinates at pixel centres). No function here adds or removes a
  half-pixel offset; crop coordinates use the same convention as the full image.
* **Intrinsics** ``K (..., 3, 3) = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` in pixels (skew ``s`` usually 0).
* **Normalised crop coordinates**: a square crop of ``size`` pixels is mapped to ``[-1, 1]^2``:
  ``x_n = 2 * u_crop / size - 1`` (``u_crop`` in crop pixels, same y-down orientation).
* **Weak perspective** ``cam = (s, tx, ty)`` (HMR/SPIN convention): ``x_n = s * (X + tx)``,
  ``y_n = s * (Y + ty)`` for camera-frame-oriented points ``(X, Y, Z)`` in metres; depth is ignored. Some
  papers (e.g. ACR) write ``x_n = s * X + t'``; convert with ``t = t' / s``.
* **Weak perspective <-> perspective translation**: a crop camera with focal length ``f`` (pixels, at crop
  resolution ``size``) and principal point at the crop centre sees ``X + T`` at
  ``u_crop - size/2 = f (X + Tx) / (Z + Tz)``; for ``|Z| << Tz`` this equals the weak perspective above with
  ``T = (tx, ty, 2 f / (s * size))``.
"""

from __future__ import annotations

import torch

__all__ = [
    "project_points",
    "backproject_pixels",
    "weak_perspective_project",
    "normalized_to_pixels",
    "pixels_to_normalized",
    "weak_perspective_to_translation",
    "translation_to_weak_perspective",
    "crop_intrinsics",
    "crop_weak_perspective_to_full_translation",
]


def _check_last_dims(x: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if x.dim() < len(shape) or tuple(x.shape[-len(shape) :]) != shape:
        raise ValueError(f"{name} must have trailing shape {shape}, got {tuple(x.shape)}")


def project_points(
    points: torch.Tensor, K: torch.Tensor, min_depth: float | None = None
) -> torch.Tensor:
    """Pinhole projection of camera-frame points to pixels: ``(u, v) = (K p)[:2] / z``.

    Args:
        points: ``(..., N, 3)`` points in the camera (optical) frame, metres; ``z > 0`` in front of it.
        K: ``(3, 3)`` or ``(..., 3, 3)`` intrinsics in pixels, broadcast against the leading dims of
            ``points``.
        min_depth: if given, depths are clamped to at least this value (metres) before the division, which
            keeps training losses finite for points at or behind the camera (their projection is then
            meaningless). ``None`` divides by the raw depth (``inf``/sign flips for ``z <= 0``).

    Returns:
        ``(..., N, 2)`` pixel coordinates ``(u, v)``; same dtype as ``points``.
    """
    _check_last_dims(points, (3,), "points")
    _check_last_dims(K, (3, 3), "K")
    z = points[..., 2:3]
    if min_depth is not None:
        z = z.clamp(min=min_depth)
    xy1 = torch.cat([points[..., :2] / z, torch.ones_like(z)], dim=-1)  # (..., N, 3)
    uvw = xy1 @ K.to(points.dtype).transpose(-1, -2)
    return uvw[..., :2]


def backproject_pixels(uv: torch.Tensor, depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Back-project pixels with known depth into the camera frame: ``p = depth * K^-1 [u, v, 1]^T``.

    ``depth`` is the z coordinate (distance along the optical axis), not the ray length, as in depth images.
    Inverse of :func:`project_points` for points with ``z > 0``.

    Args:
        uv: ``(..., N, 2)`` pixel coordinates.
        depth: ``(..., N)`` depths (z), metres.
        K: ``(3, 3)`` or ``(..., 3, 3)`` intrinsics, pixels.

    Returns:
        ``(..., N, 3)`` camera-frame points, metres; same dtype as ``uv``.
    """
    _check_last_dims(uv, (2,), "uv")
    _check_last_dims(K, (3, 3), "K")
    if depth.shape != uv.shape[:-1]:
        raise ValueError(f"depth must have shape {tuple(uv.shape[:-1])}, got {tuple(depth.shape)}")
    work = torch.float32 if uv.dtype in (torch.float16, torch.bfloat16) else uv.dtype
    k_inv = torch.linalg.inv(K.to(work))
    uv1 = torch.cat([uv.to(work), torch.ones_like(uv[..., :1], dtype=work)], dim=-1)
    rays = uv1 @ k_inv.transpose(-1, -2)  # z component is exactly 1 for a standard K
    return (rays * depth.to(work)[..., None]).to(uv.dtype)


def weak_perspective_project(points: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Weak-perspective projection to normalised crop coordinates: ``x_n = s (X + tx)``, ``y_n = s (Y + ty)``.

    Args:
        points: ``(..., N, 3)`` points (camera-frame orientation, usually root-relative), metres.
        cam: ``(..., 3)`` weak-perspective camera ``(s, tx, ty)``: ``s`` in 1/metres (normalised units per
            metre), ``tx, ty`` in metres.

    Returns:
        ``(..., N, 2)`` normalised crop coordinates in the ``[-1, 1]`` convention of the module docstring.
    """
    _check_last_dims(points, (3,), "points")
    _check_last_dims(cam, (3,), "cam")
    s = cam[..., None, 0:1]
    t = cam[..., None, 1:3]
    return s * (points[..., :2] + t)


def normalized_to_pixels(xy_n: torch.Tensor, size: float | torch.Tensor) -> torch.Tensor:
    """Normalised crop coordinates ``[-1, 1]`` to crop pixels: ``u = (x_n + 1) * size / 2``.

    Args:
        xy_n: ``(..., 2)`` normalised coordinates.
        size: crop side in pixels (scalar or broadcastable to ``xy_n[..., :1]``).

    Returns:
        ``(..., 2)`` crop pixel coordinates.
    """
    return (xy_n + 1.0) * (0.5 * size)


def pixels_to_normalized(uv: torch.Tensor, size: float | torch.Tensor) -> torch.Tensor:
    """Crop pixels to normalised coordinates ``x_n = 2 u / size - 1`` (inverse of normalized_to_pixels)."""
    return uv * (2.0 / size) - 1.0


def weak_perspective_to_translation(
    cam: torch.Tensor, focal: float | torch.Tensor, size: float | torch.Tensor, min_scale: float = 1e-9
) -> torch.Tensor:
    """Weak perspective ``(s, tx, ty)`` to perspective translation ``(tx, ty, tz)``, ``tz = 2 f / (s size)``.

    The crop camera has focal length ``focal`` (pixels at crop resolution ``size``) and its principal point at
    the crop centre; see the module docstring for the derivation.

    Args:
        cam: ``(..., 3)`` weak-perspective camera ``(s, tx, ty)``.
        focal: focal length of the crop camera, pixels (scalar or ``(...)`` tensor).
        size: crop side, pixels (scalar or ``(...)`` tensor).
        min_scale: floor on ``s`` to keep ``tz`` finite.

    Returns:
        ``(..., 3)`` translation of the points' origin in the crop camera frame, metres.
    """
    _check_last_dims(cam, (3,), "cam")
    s = cam[..., 0].clamp(min=min_scale)
    tz = 2.0 * focal / (s * size)
    return torch.stack([cam[..., 1], cam[..., 2], tz], dim=-1)


def translation_to_weak_perspective(
    translation: torch.Tensor, focal: float | torch.Tensor, size: float | torch.Tensor
) -> torch.Tensor:
    """Perspective translation ``(tx, ty, tz)`` to weak perspective ``(s, tx, ty)``, ``s = 2 f / (size tz)``.

    Inverse of :func:`weak_perspective_to_translation` (same crop camera).

    Args:
        translation: ``(..., 3)`` translation in the crop camera frame, metres, ``tz > 0``.
        focal: focal length of the crop camera, pixels.
        size: crop side, pixels.

    Returns:
        ``(..., 3)`` weak-perspective camera ``(s, tx, ty)``.
    """
    _check_last_dims(translation, (3,), "translation")
    s = 2.0 * focal / (size * translation[..., 2])
    return torch.stack([s, translation[..., 0], translation[..., 1]], dim=-1)


def crop_intrinsics(
    K: torch.Tensor, crop_center: torch.Tensor, crop_size: torch.Tensor | float, out_size: float
) -> torch.Tensor:
    """Intrinsics of a square crop resized to ``out_size`` pixels.

    The crop spans ``crop_center +- crop_size / 2`` in the full image; it is resized (no rotation) to
    ``out_size x out_size``. Then ``K_crop = A K`` with ``A`` the pixel map full -> crop:
    ``u_crop = (u - (cx_box - crop_size / 2)) * out_size / crop_size``.

    Args:
        K: ``(..., 3, 3)`` full-image intrinsics, pixels.
        crop_center: ``(..., 2)`` crop centre in full-image pixels.
        crop_size: crop side in full-image pixels, scalar or ``(...)``.
        out_size: side of the resized crop, pixels.

    Returns:
        ``(..., 3, 3)`` intrinsics of the crop image.
    """
    _check_last_dims(K, (3, 3), "K")
    crop_size = torch.as_tensor(crop_size, dtype=K.dtype, device=K.device)
    scale = out_size / crop_size
    offset = crop_center.to(K.dtype) - 0.5 * crop_size[..., None]  # (..., 2) top-left corner
    batch = torch.broadcast_shapes(K.shape[:-2], scale.shape, offset.shape[:-1])
    a = torch.zeros(*batch, 3, 3, dtype=K.dtype, device=K.device)
    a[..., 0, 0] = scale
    a[..., 1, 1] = scale
    a[..., 0, 2] = -offset[..., 0] * scale
    a[..., 1, 2] = -offset[..., 1] * scale
    a[..., 2, 2] = 1.0
    return a @ K


def crop_weak_perspective_to_full_translation(
    cam: torch.Tensor,
    crop_center: torch.Tensor,
    crop_size: torch.Tensor | float,
    K: torch.Tensor,
    min_scale: float = 1e-9,
) -> torch.Tensor:
    """Map a crop's weak-perspective camera to a translation in the full image's camera frame.

    A network sees a square crop of side ``crop_size`` (full-image pixels) centred at ``crop_center`` and
    predicts ``(s, tx, ty)`` in that crop's normalised coordinates. Matching the full-image perspective
    projection ``u = fx (X + Tx) / Tz + cx`` (exact for points at depth ``Tz``, i.e. ``Z = 0`` in the model
    frame) with the crop mapping ``u = cx_box + (crop_size / 2) s (X + tx)`` gives::

        Tz = 2 f / (s * crop_size),   f = (fx + fy) / 2
        Tx = tx + (cx_box - cx) * Tz / fx
        Ty = ty + (cy_box - cy) * Tz / fy

    (the "crop to full camera" mapping of CLIFF/HaMeR-style pipelines; with ``fx != fy`` the square crop is
    anisotropic in metres and the mean focal length is used for depth). Skew in ``K`` is ignored.

    Args:
        cam: ``(..., 3)`` weak-perspective camera ``(s, tx, ty)`` of the crop (module docstring convention).
        crop_center: ``(..., 2)`` crop centre in full-image pixels.
        crop_size: crop side in full-image pixels, scalar or ``(...)``.
        K: ``(3, 3)`` or ``(..., 3, 3)`` full-image intrinsics, pixels.
        min_scale: floor on ``s`` to keep ``Tz`` finite.

    Returns:
        ``(..., 3)`` translation of the model origin in the full image's camera frame, metres.
    """
    _check_last_dims(cam, (3,), "cam")
    _check_last_dims(K, (3, 3), "K")
    K = K.to(cam.dtype)
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    cx, cy = K[..., 0, 2], K[..., 1, 2]
    s = cam[..., 0].clamp(min=min_scale)
    tz = (fx + fy) / (s * crop_size)
    tx = cam[..., 1] + (crop_center[..., 0] - cx) * tz / fx
    ty = cam[..., 2] + (crop_center[..., 1] - cy) * tz / fy
    return torch.stack([tx, ty, tz], dim=-1)
