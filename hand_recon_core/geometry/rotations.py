"""Batched rotation conversions (pure torch, differentiable).

Every function accepts any number of leading batch dimensions ``...`` and returns a tensor of the same dtype
and device as its input. Half-precision inputs (float16/bfloat16) are computed internally in float32 and cast
back, so the small-angle branches stay accurate; float32 and float64 are computed in their own precision.

Conventions (shared by the whole project):

* **Rotation matrices** act on column vectors: ``y = R @ x``. Right-handed, ``det(R) = +1``.
* **Axis-angle** ``aa (..., 3)``: the unit rotation axis times the angle in radians (right-hand rule), as in
  MANO's pose vector. ``matrix_to_axis_angle`` / ``quaternion_to_axis_angle`` return angles in ``[0, pi]``.
* **Quaternions** are ``(w, x, y, z)`` (scalar first), Hamilton convention, so that ``q = (cos(t/2),
  sin(t/2) * axis)`` rotates by ``t`` about ``axis``. ``q`` and ``-q`` are the same rotation; the functions
  returning quaternions pick the one with ``w >= 0``.
* **6D rotations** (Zhou et al., "On the Continuity of Rotation Representations in Neural Networks", CVPR
  2019): ``x[..., 0:3]`` is the first **column** ``R[..., :, 0]`` and ``x[..., 3:6]`` the second column
  ``R[..., :, 1]``; the third column is their cross product after Gram-Schmidt. Some public code stores the
  same two columns interleaved (a ``(3, 2)`` reshape: ``[R00, R01, R10, R11, R20, R21]``) or as rows;
  convert such tensors before calling, e.g. interleaved -> ours:
  ``x.reshape(*x.shape[:-1], 3, 2).transpose(-1, -2).reshape(*x.shape[:-1], 6)``.
"""

from __future__ import annotations

import torch

__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "rot6d_to_matrix",
    "matrix_to_rot6d",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "axis_angle_to_quaternion",
    "quaternion_to_axis_angle",
]

# Below this squared angle (rad^2) the trigonometric ratios are evaluated by their Taylor series in the
# squared angle, which is smooth at zero (finite, correct gradients) and exact to far below float32 epsilon:
# the first omitted term is O(theta^6) ~ 1e-18.
_SMALL_ANGLE_SQ = 1e-6


def _working_dtype(dtype: torch.dtype) -> torch.dtype:
    """Float32 for half-precision inputs, the input dtype otherwise."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _check_last_dims(x: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if x.dim() < len(shape) or tuple(x.shape[-len(shape) :]) != shape:
        raise ValueError(f"{name} must have trailing shape {shape}, got {tuple(x.shape)}")


def _sinc_terms(theta_sq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``sin(t)/t`` and ``(1 - cos(t))/t^2`` as smooth functions of ``t^2``."""
    small = theta_sq < _SMALL_ANGLE_SQ
    # Safe argument: the exact branch never sees zero, so no NaN gradients leak through torch.where.
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta_sq), theta_sq))
    half = 0.5 * theta
    sinc_exact = torch.sin(theta) / theta
    # (1 - cos t) / t^2 = 2 sin^2(t/2) / t^2 = 0.5 * (sin(t/2) / (t/2))^2: no cancellation.
    cosc_exact = 0.5 * (torch.sin(half) / half) ** 2
    sinc_taylor = 1.0 - theta_sq / 6.0 + theta_sq * theta_sq / 120.0
    cosc_taylor = 0.5 - theta_sq / 24.0 + theta_sq * theta_sq / 720.0
    return torch.where(small, sinc_taylor, sinc_exact), torch.where(small, cosc_taylor, cosc_exact)


def _skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrix ``[v]_x`` of ``v (..., 3)`` -> ``(..., 3, 3)``."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack(
        [
            torch.stack([zero, -z, y], dim=-1),
            torch.stack([z, zero, -x], dim=-1),
            torch.stack([-y, x, zero], dim=-1),
        ],
        dim=-2,
    )


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle to rotation matrix.

    ``R = I + (sin t / t) [aa]_x + ((1 - cos t) / t^2) [aa]_x^2`` with ``t = |aa|``; both ratios are taken
    from their Taylor series near ``t = 0``, so the result and its gradient are exact at the zero rotation
    (``dR/daa`` at zero is the skew generator, finite).

    Args:
        aa: ``(..., 3)`` axis-angle vectors, radians (axis times angle), any float dtype.

    Returns:
        ``(..., 3, 3)`` rotation matrices, same dtype/device as ``aa``.
    """
    _check_last_dims(aa, (3,), "aa")
    in_dtype = aa.dtype
    v = aa.to(_working_dtype(in_dtype))
    theta_sq = (v * v).sum(-1)
    a, b = _sinc_terms(theta_sq)
    k = _skew(v)
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand(k.shape)
    r = eye + a[..., None, None] * k + b[..., None, None] * (k @ k)
    return r.to(in_dtype)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternion ``(w, x, y, z)`` to rotation matrix.

    The quaternion need not be unit length: it is normalised implicitly (the formula divides by ``|q|^2``),
    so ``q`` and ``c * q`` (``c != 0``) give the same matrix.

    Args:
        q: ``(..., 4)`` quaternions, scalar first ``(w, x, y, z)``.

    Returns:
        ``(..., 3, 3)`` rotation matrices, same dtype/device as ``q``.
    """
    _check_last_dims(q, (4,), "q")
    in_dtype = q.dtype
    q = q.to(_working_dtype(in_dtype))
    w, x, y, z = q.unbind(-1)
    two_s = 2.0 / (q * q).sum(-1)
    r = torch.stack(
        [
            1 - two_s * (y * y + z * z),
            two_s * (x * y - z * w),
            two_s * (x * z + y * w),
            two_s * (x * y + z * w),
            1 - two_s * (x * x + z * z),
            two_s * (y * z - x * w),
            two_s * (x * z - y * w),
            two_s * (y * z + x * w),
            1 - two_s * (x * x + y * y),
        ],
        dim=-1,
    )
    return r.reshape(*q.shape[:-1], 3, 3).to(in_dtype)


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(max(x, 0))`` with a finite gradient everywhere (zero below a tiny floor)."""
    return torch.sqrt(torch.clamp(x, min=torch.finfo(x.dtype).tiny))


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrix to unit quaternion ``(w, x, y, z)`` with ``w >= 0``.

    Uses Shepperd's method: of the four algebraically equivalent formulas, the one dividing by the largest of
    ``|w|, |x|, |y|, |z|`` is selected per element, so the conversion is stable for all rotations, including
    half turns (``w = 0``).

    Args:
        matrix: ``(..., 3, 3)`` rotation matrices.

    Returns:
        ``(..., 4)`` unit quaternions, scalar first, ``w >= 0``; same dtype/device as ``matrix``.
    """
    _check_last_dims(matrix, (3, 3), "matrix")
    in_dtype = matrix.dtype
    m = matrix.to(_working_dtype(in_dtype))
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4 * component^2 for w, x, y, z.
    four_sq = torch.stack(
        [
            1.0 + m00 + m11 + m22,
            1.0 + m00 - m11 - m22,
            1.0 - m00 + m11 - m22,
            1.0 - m00 - m11 + m22,
        ],
        dim=-1,
    )
    two_abs = _safe_sqrt(four_sq)  # 2 * |component|
    # Row i holds 4 * component_i * (w, x, y, z) for the candidate where component_i is the largest.
    candidates = torch.stack(
        [
            torch.stack([four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, four_sq[..., 2], m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, four_sq[..., 3]], dim=-1),
        ],
        dim=-2,
    )
    candidates = candidates / (2.0 * two_abs[..., :, None])
    best = four_sq.argmax(dim=-1)
    index = best[..., None, None].expand(*best.shape, 1, 4)
    q = torch.gather(candidates, -2, index).squeeze(-2)
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    return q.to(in_dtype)


def axis_angle_to_quaternion(aa: torch.Tensor) -> torch.Tensor:
    """Axis-angle to unit quaternion ``(w, x, y, z) = (cos(t/2), sin(t/2) * aa / t)``.

    Smooth at ``t = 0`` (Taylor series of ``sin(t/2)/t``). The result has ``w >= 0`` for ``t <= pi``; larger
    angles give ``w < 0`` (the same rotation as ``-q``).

    Args:
        aa: ``(..., 3)`` axis-angle vectors, radians.

    Returns:
        ``(..., 4)`` unit quaternions, scalar first; same dtype/device as ``aa``.
    """
    _check_last_dims(aa, (3,), "aa")
    in_dtype = aa.dtype
    v = aa.to(_working_dtype(in_dtype))
    theta_sq = (v * v).sum(-1)
    small = theta_sq < _SMALL_ANGLE_SQ
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta_sq), theta_sq))
    half = 0.5 * theta
    # sin(t/2) / t and cos(t/2), both as smooth functions of t^2 near zero.
    ratio = torch.where(
        small, 0.5 - theta_sq / 48.0 + theta_sq * theta_sq / 3840.0, torch.sin(half) / theta
    )
    w = torch.where(small, 1.0 - theta_sq / 8.0 + theta_sq * theta_sq / 384.0, torch.cos(half))
    return torch.cat([w[..., None], ratio[..., None] * v], dim=-1).to(in_dtype)


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """Quaternion ``(w, x, y, z)`` to axis-angle with angle in ``[0, pi]``.

    The quaternion need not be unit length (the result is scale invariant); ``q`` is first replaced by ``-q``
    where ``w < 0``. Near the identity ``angle / |v|`` (``v = (x, y, z)``) is evaluated by its series in
    ``|v|^2 / w^2``, so the conversion is smooth there.

    Args:
        q: ``(..., 4)`` quaternions, scalar first.

    Returns:
        ``(..., 3)`` axis-angle vectors, radians; same dtype/device as ``q``.
    """
    _check_last_dims(q, (4,), "q")
    in_dtype = q.dtype
    q = q.to(_working_dtype(in_dtype))
    q = torch.where(q[..., :1] < 0, -q, q)
    w = q[..., 0]
    v = q[..., 1:]
    norm_sq = (v * v).sum(-1)
    sq_norm = (q * q).sum(-1)
    # Small rotation: |v|^2 << w^2 (scale invariant test); then w > 0 is bounded away from zero.
    small = norm_sq < _SMALL_ANGLE_SQ * sq_norm
    norm = torch.sqrt(torch.where(small, torch.ones_like(norm_sq), norm_sq))
    safe_w = torch.where(small, w, torch.ones_like(w))
    r = norm_sq / (safe_w * safe_w)
    # angle / |v| = 2 atan2(|v|, w) / |v| = (2 / w) * (1 - r/3 + r^2/5 - ...), r = |v|^2 / w^2.
    factor_small = (2.0 / safe_w) * (1.0 - r / 3.0 + r * r / 5.0)
    factor_exact = 2.0 * torch.atan2(norm, w) / norm
    factor = torch.where(small, factor_small, factor_exact)
    return (factor[..., None] * v).to(in_dtype)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrix to axis-angle (angle in ``[0, pi]``), via a Shepperd quaternion.

    Stable near the identity and near half turns. At exactly ``pi`` the sign of the axis is ambiguous; the
    returned vector is one of the two equivalent answers.

    Args:
        matrix: ``(..., 3, 3)`` rotation matrices.

    Returns:
        ``(..., 3)`` axis-angle vectors, radians; same dtype/device as ``matrix``.
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def rot6d_to_matrix(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """6D representation (Zhou et al. 2019) to rotation matrix by Gram-Schmidt.

    Column convention: ``a1 = x[..., 0:3]`` and ``a2 = x[..., 3:6]`` are the (unnormalised) first and second
    **columns** of the matrix. ``b1 = a1 / |a1|``, ``b2 = normalise(a2 - (b1 . a2) b1)``, ``b3 = b1 x b2`` and
    ``R = [b1 | b2 | b3]`` (as columns). See the module docstring for converting other layouts.

    Args:
        x: ``(..., 6)`` 6D rotations (any scale; degenerate inputs with ``a1 || a2`` have no unique answer).
        eps: floor on vector norms before division, to keep degenerate inputs finite.

    Returns:
        ``(..., 3, 3)`` rotation matrices; same dtype/device as ``x``.
    """
    _check_last_dims(x, (6,), "x")
    in_dtype = x.dtype
    x = x.to(_working_dtype(in_dtype))
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = a1 / torch.linalg.vector_norm(a1, dim=-1, keepdim=True).clamp(min=eps)
    a2_perp = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2_perp / torch.linalg.vector_norm(a2_perp, dim=-1, keepdim=True).clamp(min=eps)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1).to(in_dtype)


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrix to the 6D representation: first column then second column.

    Args:
        matrix: ``(..., 3, 3)`` rotation matrices.

    Returns:
        ``(..., 6)``: ``[R[:, 0], R[:, 1]]`` concatenated; ``rot6d_to_matrix`` inverts it exactly.
    """
    _check_last_dims(matrix, (3, 3), "matrix")
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)
