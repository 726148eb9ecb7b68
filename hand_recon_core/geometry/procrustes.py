"""Point-set alignment: similarity Procrustes (Umeyama), root alignment, least-squares scale.

All functions are batched over leading dims ``...``, differentiable, and keep the input dtype (half precision
is computed in float32). Point sets are ``(..., N, 3)`` with row-vector points; a transform maps a point ``x``
to ``scale * R @ x + t``, i.e. ``points @ R^T * scale + t`` for row vectors.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["SimilarityTransform", "procrustes_align", "apply_similarity", "align_root", "align_scale_lstsq"]


class SimilarityTransform(NamedTuple):
    """``x -> scale * rotation @ x + translation``.

    Attributes:
        scale: ``(...)`` positive scale (1 when scale estimation is disabled).
        rotation: ``(..., 3, 3)`` proper rotation (``det = +1``).
        translation: ``(..., 3)`` translation, in the target's units (metres for the project's data).
    """

    scale: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor


def _working_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def apply_similarity(points: torch.Tensor, transform: SimilarityTransform) -> torch.Tensor:
    """Apply ``scale * R @ x + t`` to row-vector points ``(..., N, 3)``."""
    s, r, t = transform
    return s[..., None, None] * (points @ r.transpose(-1, -2)) + t[..., None, :]


def procrustes_align(
    source: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    with_scale: bool = True,
    eps: float = 1e-12,
) -> tuple[torch.Tensor, SimilarityTransform]:
    """Least-squares similarity alignment of ``source`` onto ``target`` (Umeyama 1991).

    Minimises ``sum_i m_i |scale R x_i + t - y_i|^2`` over scale > 0, proper rotations ``R`` (reflections are
    excluded by the sign correction ``diag(1, 1, det(U V^T))``) and translations ``t``. This is the
    "PA" (Procrustes-aligned) alignment of PA-MPJPE / PA-MPVPE on FreiHAND and HO3D.

    Gradients flow through the SVD; they are ill-conditioned when two singular values of the cross-covariance
    coincide (e.g. planar or collinear point sets), as for any SVD-based alignment.

    Args:
        source: ``(..., N, 3)`` points to move (e.g. a prediction), metres.
        target: ``(..., N, 3)`` corresponding points (e.g. ground truth), metres.
        mask: optional ``(..., N)`` bool/float weights; only points with non-zero weight influence the fit
            (at least 3 non-collinear ones are needed for a unique rotation). All points are transformed.
        with_scale: estimate the scale; ``False`` gives the rigid (rotation + translation) alignment.
        eps: floor on the source variance to avoid division by zero for degenerate inputs.

    Returns:
        ``aligned (..., N, 3)`` = transform applied to ``source``, and the :class:`SimilarityTransform`.
    """
    if source.shape != target.shape or source.shape[-1] != 3:
        raise ValueError(f"source and target must both be (..., N, 3), got {source.shape} and {target.shape}")
    in_dtype = source.dtype
    work = _working_dtype(in_dtype)
    x = source.to(work)
    y = target.to(work)
    if mask is None:
        w = torch.ones(x.shape[:-1], dtype=work, device=x.device)
    else:
        if mask.shape != x.shape[:-1]:
            raise ValueError(f"mask must have shape {tuple(x.shape[:-1])}, got {tuple(mask.shape)}")
        w = mask.to(work)
    w_sum = w.sum(-1, keepdim=True).clamp(min=eps)  # (..., 1)
    wn = (w / w_sum)[..., None]  # (..., N, 1) normalised weights
    mu_x = (wn * x).sum(-2)  # (..., 3)
    mu_y = (wn * y).sum(-2)
    xc = x - mu_x[..., None, :]
    yc = y - mu_y[..., None, :]
    var_x = (wn * xc * xc).sum((-2, -1))  # (...)
    cov = (wn * yc).transpose(-1, -2) @ xc  # (..., 3, 3) = sum_i w_i y_i x_i^T
    u, d, vh = torch.linalg.svd(cov)
    sign = torch.sign(torch.linalg.det(u) * torch.linalg.det(vh))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    e = torch.ones_like(d)
    e = torch.cat([e[..., :2], sign[..., None]], dim=-1)  # diag(1, 1, sign)
    rot = u @ (e[..., :, None] * vh)
    if with_scale:
        scale = (d * e).sum(-1) / var_x.clamp(min=eps)
    else:
        scale = torch.ones_like(var_x)
    trans = mu_y - scale[..., None] * (mu_x[..., None, :] @ rot.transpose(-1, -2)).squeeze(-2)
    transform = SimilarityTransform(scale, rot, trans)
    aligned = apply_similarity(x, transform)
    return aligned.to(in_dtype), SimilarityTransform(*(v.to(in_dtype) for v in transform))


def align_root(points: torch.Tensor, points_root: torch.Tensor, target_root: torch.Tensor) -> torch.Tensor:
    """Translate ``points`` so that their root ``points_root`` lands on ``target_root``.

    Typical use: ``align_root(pred, pred_joints[..., root, :], gt_joints[..., root, :])`` for joints or
    vertices (the root is a joint, also for vertex errors).

    Args:
        points: ``(..., N, 3)`` points, metres.
        points_root: ``(..., 3)`` root position of ``points``' hand.
        target_root: ``(..., 3)`` root position of the target hand.

    Returns:
        ``(..., N, 3)`` translated points.
    """
    return points - points_root[..., None, :] + target_root[..., None, :]


def align_scale_lstsq(
    source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-12
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares scale about the origin: ``s = <x, y> / <x, x>`` minimises ``|s x - y|^2``.

    Call it on root-relative point sets (the scale is applied about the coordinate origin).

    Args:
        source: ``(..., N, 3)`` points to scale.
        target: ``(..., N, 3)`` target points.
        mask: optional ``(..., N)`` weights of the points used in the fit.
        eps: floor on ``<x, x>``.

    Returns:
        ``scaled (..., N, 3)`` and ``scale (...)``.
    """
    if source.shape != target.shape:
        raise ValueError(f"shape mismatch: {source.shape} vs {target.shape}")
    w = torch.ones(source.shape[:-1], dtype=source.dtype, device=source.device) if mask is None else mask
    w = w.to(source.dtype)[..., None]
    num = (w * source * target).sum((-2, -1))
    den = (w * source * source).sum((-2, -1)).clamp(min=eps)
    scale = num / den
    return scale[..., None, None] * source, scale
