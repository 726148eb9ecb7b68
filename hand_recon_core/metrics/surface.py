"""Surface metrics: F-score between point sets and the interpenetration volume of two meshes.

Units are metres (volumes in cubic metres). Inputs may be numpy arrays or torch tensors; evaluation runs in
numpy float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree

from hand_recon_core.geometry.procrustes import procrustes_align
from hand_recon_core.metrics._arrays import as_float64

__all__ = ["f_score", "interpenetration_volume", "precision_recall", "winding_numbers"]


def _cloud(x: Any, name: str) -> np.ndarray:
    a = as_float64(x, name)
    if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (P, 3) point set, got shape {a.shape}")
    return a


def precision_recall(pred_points: Any, gt_points: Any, threshold: float) -> tuple[float, float]:
    """Precision and recall of one predicted point set at a distance threshold.

    ``precision`` = fraction of predicted points whose nearest ground-truth point is closer than
    ``threshold``; ``recall`` = fraction of ground-truth points whose nearest predicted point is closer than
    ``threshold`` (strict ``<``, nearest neighbours by ``scipy.spatial.cKDTree``). The FreiHAND evaluation
    code (``calculate_fscore``, after the what3d benchmark) swaps the two names; the F-score is the same.

    Args:
        pred_points: ``(P, 3)`` predicted points (e.g. mesh vertices), metres.
        gt_points: ``(G, 3)`` ground-truth points, metres.
        threshold: distance threshold, metres.

    Returns:
        ``(precision, recall)``, each in ``[0, 1]``.
    """
    p = _cloud(pred_points, "pred_points")
    g = _cloud(gt_points, "gt_points")
    d_pred_to_gt, _ = cKDTree(g).query(p, k=1)
    d_gt_to_pred, _ = cKDTree(p).query(g, k=1)
    return float(np.mean(d_pred_to_gt < threshold)), float(np.mean(d_gt_to_pred < threshold))


def f_score(pred_points: Any, gt_points: Any, threshold: float, procrustes: bool = False) -> float:
    """F-score at a distance threshold, averaged over samples (FreiHAND/HO3D "F@5mm", "F@15mm").

    ``F = 2 P R / (P + R)`` (0 when ``P + R = 0``) with ``P, R`` from :func:`precision_recall`. The public
    benchmarks report it at ``threshold = 0.005`` and ``0.015`` m on Procrustes-aligned vertices ("PA-F@5",
    "PA-F@15", hand-object paper Sec. 4.2); ``procrustes=True`` applies that alignment first, which needs
    corresponding points (same topology).

    Args:
        pred_points: ``(P, 3)`` or ``(N, P, 3)`` predicted points, metres.
        gt_points: ``(G, 3)`` or ``(N, G, 3)`` ground-truth points, metres.
        threshold: metres.
        procrustes: similarity-align each prediction onto its ground truth first (requires ``P == G``).

    Returns:
        Mean F-score over the ``N`` samples, in ``[0, 1]``.
    """
    p = as_float64(pred_points, "pred_points")
    g = as_float64(gt_points, "gt_points")
    if p.ndim == 2:
        p, g = p[None], g[None]
    if p.ndim != 3 or g.ndim != 3 or p.shape[0] != g.shape[0]:
        raise ValueError(f"expected (P, 3)/(G, 3) or (N, P, 3)/(N, G, 3), got {p.shape} and {g.shape}")
    if procrustes:
        if p.shape != g.shape:
            raise ValueError("procrustes=True needs corresponding points of equal shape")
        p = procrustes_align(torch.from_numpy(p), torch.from_numpy(g))[0].numpy()
    scores = []
    for pi, gi in zip(p, g):
        prec, rec = precision_recall(pi, gi, threshold)
        scores.append(0.0 if prec + rec == 0 else 2.0 * prec * rec / (prec + rec))
    return float(np.mean(scores))


def _faces(faces: Any, num_vertices: int, name: str) -> np.ndarray:
    if isinstance(faces, torch.Tensor):
        faces = faces.detach().cpu().numpy()
    f = np.asarray(faces)
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"{name} must be an integer (F, 3) array, got {f.dtype} {f.shape}")
    if f.size and (f.min() < 0 or f.max() >= num_vertices):
        raise ValueError(f"{name} index out of range for {num_vertices} vertices")
    return f.astype(np.int64)


def winding_numbers(
    points: Any, vertices: Any, faces: Any, chunk_elements: int = 2_000_000
) -> np.ndarray:
    """Generalised winding number of each query point with respect to a triangle mesh.

    ``w(p) = sum_f Omega_f(p) / (4 pi)`` with the signed solid angle of each triangle from Van Oosterom and
    Strackee's formula ``tan(Omega / 2) = det[a b c] / (|a||b||c| + (a.b)|c| + (b.c)|a| + (c.a)|b|)``,
    ``a, b, c`` the triangle corners relative to ``p`` (Jacobson et al. 2013). For a closed mesh with outward
    (counter-clockwise seen from outside) winding, ``w = 1`` inside and ``0`` outside; for open meshes (e.g.
    MANO, open at the wrist) ``w`` varies smoothly across the hole, which makes ``w > 0.5`` a robust
    inside test. Vectorised over points x faces in chunks of ``chunk_elements`` pairs.

    Args:
        points: ``(M, 3)`` query points, metres.
        vertices: ``(V, 3)`` mesh vertices, metres.
        faces: ``(F, 3)`` integer triangle indices.
        chunk_elements: memory bound (point-face pairs per chunk).

    Returns:
        ``(M,)`` float64 winding numbers.
    """
    q = as_float64(points, "points").reshape(-1, 3)
    v = _cloud(vertices, "vertices")
    f = _faces(faces, v.shape[0], "faces")
    out = np.zeros(q.shape[0])
    if f.shape[0] == 0 or q.shape[0] == 0:
        return out
    tri = v[f]  # (F, 3 corners, 3)
    step = max(1, chunk_elements // f.shape[0])
    for start in range(0, q.shape[0], step):
        rel = tri[None] - q[start : start + step, None, None, :]  # (m, F, 3, 3)
        a, b, c = rel[..., 0, :], rel[..., 1, :], rel[..., 2, :]
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        det = np.einsum("mfi,mfi->mf", a, np.cross(b, c))
        den = (
            la * lb * lc
            + np.einsum("mfi,mfi->mf", a, b) * lc
            + np.einsum("mfi,mfi->mf", b, c) * la
            + np.einsum("mfi,mfi->mf", c, a) * lb
        )
        out[start : start + step] = (2.0 * np.arctan2(det, den)).sum(-1) / (4.0 * np.pi)
    return out


def interpenetration_volume(
    verts_a: Any,
    faces_a: Any,
    verts_b: Any,
    faces_b: Any,
    voxel_size: float = 0.005,
    max_voxels: int = 4_000_000,
) -> float:
    """Volume shared by two meshes (cubic metres), by voxelisation.

    The intersection of the two axis-aligned bounding boxes (the only region where both meshes can contain
    a point) is divided into cubes of side ``voxel_size`` anchored at its minimum corner. A voxel counts when
    its centre is inside both meshes, inside meaning ``|winding number| > 0.5`` (:func:`winding_numbers`; the
    absolute value accepts either face orientation). The volume is ``count * voxel_size^3``.

    This is the interpenetration volume (IV) of the DIR paper (Sec. 4.5, voxel size 0.5 cm, reported in cm^3;
    multiply cubic metres by 1e6). Approximation: centre sampling misclassifies voxels cut by either surface,
    so the error is of the order of (area of the overlap region's boundary) x ``voxel_size`` / 2 and vanishes
    as the voxel shrinks; for open meshes (MANO's wrist) the winding number closes the hole smoothly.

    Args:
        verts_a: ``(Va, 3)`` vertices of hand A, metres, common frame with B.
        faces_a: ``(Fa, 3)`` triangles of A.
        verts_b: ``(Vb, 3)`` vertices of hand B, metres.
        faces_b: ``(Fb, 3)`` triangles of B.
        voxel_size: voxel side, metres (DIR: 0.005).
        max_voxels: refuse grids larger than this (raise) instead of running out of memory/time.

    Returns:
        Interpenetration volume in cubic metres (0.0 when the bounding boxes do not overlap).
    """
    va = _cloud(verts_a, "verts_a")
    vb = _cloud(verts_b, "verts_b")
    fa = _faces(faces_a, va.shape[0], "faces_a")
    fb = _faces(faces_b, vb.shape[0], "faces_b")
    if voxel_size <= 0:
        raise ValueError("voxel_size must be positive")
    lo = np.maximum(va.min(0), vb.min(0))
    hi = np.minimum(va.max(0), vb.max(0))
    if np.any(hi <= lo):
        return 0.0
    n = np.ceil((hi - lo) / voxel_size).astype(np.int64)
    total = int(np.prod(n))
    if total > max_voxels:
        raise ValueError(f"{total} voxels exceed max_voxels={max_voxels}; use a larger voxel_size")
    axes = [lo[i] + (np.arange(n[i]) + 0.5) * voxel_size for i in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    inside_a = np.abs(winding_numbers(centres, va, fa)) > 0.5
    candidates = centres[inside_a]
    if candidates.shape[0] == 0:
        return 0.0
    inside_both = np.abs(winding_numbers(candidates, vb, fb)) > 0.5
    return float(np.count_nonzero(inside_both)) * voxel_size**3
