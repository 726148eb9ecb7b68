"""3D/2D position errors with explicit alignment: MPJPE, MPVPE, PA-*, MRRPE, MIAA.

Pure functions in the style of mmpose's ``keypoint_mpjpe``: inputs are numpy arrays or torch tensors (torch is
detached and converted), evaluation runs in numpy float64.

Units: **metres in, metres out** for every 3D metric (multiply by 1000 for the millimetre tables of the
papers); MIAA is in pixels. Every reported number must be logged together with
:func:`describe_alignment` of the same arguments, because the published protocols differ:

* IntagHand / HandDGCL (InterHand2.6M): root at the middle MCP, prediction rescaled so that its
  wrist-to-middle-MCP bone equals the ground truth's: ``root="middle_mcp", scale="bone"``
  (DIR paper, Sec. 4.5: "MPJPE-MS"; HandDGCL Sec. 4.1: "aligning the root joint and scaling the length of the
  middle metacarpal").
* DIR (InterHand2.6M): wrist root, bone scaling: ``root="wrist", scale="bone"`` (DIR Sec. 4.3).
* InterWild: wrist root, no scaling: ``root="wrist", scale="none"``.
* FreiHAND / HO3D servers: Procrustes alignment: ``procrustes=True`` (or :func:`pa_mpjpe`).

Joint indices default to the project's canonical ``mano21`` order and are looked up by name in
:mod:`hand_recon_core.hand_model.joint_orders` (wrist 0, middle MCP 4); pass other indices for other orders.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hand_recon_core.geometry.cameras import project_points
from hand_recon_core.geometry.procrustes import procrustes_align
from hand_recon_core.metrics._arrays import as_float64, as_mask

try:
    from hand_recon_core.hand_model.joint_orders import JOINT_NAMES as _JOINT_NAMES
except ImportError:  # pragma: no cover - joint_orders is written in parallel; the lead removes this branch.
    _JOINT_NAMES = None

__all__ = [
    "HAND_BONE_LENGTH_M",
    "MIDDLE_MCP_INDEX",
    "WRIST_INDEX",
    "describe_alignment",
    "joint_index",
    "miaa",
    "mpjpe",
    "mpvpe",
    "mrrpe",
    "pa_mpjpe",
    "pa_mpvpe",
    "position_errors",
    "rotation_error_deg",
]

#: Explicit mano21 indices, used only when ``joint_orders`` is unavailable (mano21: 16 MANO joints in native
#: order, 0 wrist, 4 middle MCP; see HAND_FACTS / hand_model.constants).
_MANO21_FALLBACK = {"wrist": 0, "middle_mcp": 4}


def joint_index(name: str, order: str = "mano21") -> int:
    """Index of joint ``name`` (e.g. ``"wrist"``, ``"middle_mcp"``) in the 21-joint ``order``.

    Looked up in ``hand_recon_core.hand_model.joint_orders.JOINT_NAMES``; never retyped.

    Raises:
        KeyError: unknown order or joint name.
    """
    if _JOINT_NAMES is None:  # pragma: no cover - see the import above
        if order != "mano21":
            raise KeyError(f"joint order {order!r} needs hand_recon_core.hand_model.joint_orders")
        return _MANO21_FALLBACK[name]
    if order not in _JOINT_NAMES:
        raise KeyError(f"unknown joint order {order!r}; known: {sorted(_JOINT_NAMES)}")
    names = _JOINT_NAMES[order]
    if name not in names:
        raise KeyError(f"joint {name!r} not in order {order!r}: {names}")
    return names.index(name)


#: Wrist index in the canonical mano21 order (0).
WRIST_INDEX: int = joint_index("wrist")
#: Middle-finger MCP index in the canonical mano21 order (4).
MIDDLE_MCP_INDEX: int = joint_index("middle_mcp")
#: Conventional wrist-to-middle-MCP length (metres) used to normalise scale on InterHand2.6M evaluations.
HAND_BONE_LENGTH_M: float = 0.095

_ROOTS = ("wrist", "middle_mcp", "none")
_SCALES = ("none", "bone", "lstsq")


def _points3(x: Any, name: str) -> np.ndarray:
    a = as_float64(x, name)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, K, 3), got {a.shape}")
    return a


def _resolve_root(root: str, root_index: int | None, wrist_index: int, middle_mcp_index: int) -> int | None:
    if root not in _ROOTS:
        raise ValueError(f"root must be one of {_ROOTS}, got {root!r}")
    if root == "none":
        if root_index is not None:
            raise ValueError("root_index given with root='none'")
        return None
    if root_index is not None:
        return int(root_index)
    return wrist_index if root == "wrist" else middle_mcp_index


def describe_alignment(
    root: str = "wrist",
    scale: str = "none",
    procrustes: bool = False,
    *,
    root_index: int | None = None,
    wrist_index: int = WRIST_INDEX,
    middle_mcp_index: int = MIDDLE_MCP_INDEX,
    bone_length: float | None = None,
    joint_order: str = "mano21",
) -> str:
    """One-line description of an alignment protocol, to log next to every number computed with it.

    Takes the same alignment arguments as :func:`position_errors` (``joint_order`` only names the order the
    indices refer to).

    Returns:
        e.g. ``"root=wrist (mano21 joint 0); scale=bone (pred |j0-j4| matched to GT); procrustes=off;
        units=metres"``.
    """
    r = _resolve_root(root, root_index, wrist_index, middle_mcp_index)
    if scale not in _SCALES:
        raise ValueError(f"scale must be one of {_SCALES}, got {scale!r}")
    parts = []
    if r is None:
        parts.append("root=none (no translation alignment)")
    else:
        label = root if root_index is None else "custom"
        parts.append(f"root={label} ({joint_order} joint {r}, pred translated onto GT root)")
    bone = f"|j{wrist_index}-j{middle_mcp_index}|"
    if scale == "none":
        parts.append("scale=none")
    elif scale == "bone" and bone_length is None:
        parts.append(f"scale=bone (pred rescaled about the root so its {bone} equals the GT's)")
    elif scale == "bone":
        parts.append(f"scale=bone-normalised (pred and GT rescaled about the root: {bone} = {bone_length} m)")
    else:
        parts.append("scale=lstsq (least-squares scale of root-relative pred onto GT)")
    parts.append("procrustes=on (scale, rotation, translation)" if procrustes else "procrustes=off")
    parts.append("units=metres")
    return "; ".join(parts)


def position_errors(
    pred: Any,
    gt: Any,
    mask: Any = None,
    root: str = "wrist",
    scale: str = "none",
    procrustes: bool = False,
    *,
    pred_joints: Any = None,
    gt_joints: Any = None,
    root_index: int | None = None,
    wrist_index: int = WRIST_INDEX,
    middle_mcp_index: int = MIDDLE_MCP_INDEX,
    bone_length: float | None = None,
) -> np.ndarray:
    """Per-point Euclidean errors after the requested alignment (the building block of all MP*PE metrics).

    Steps, in order:

    1. ``root`` (``"wrist"``, ``"middle_mcp"`` or ``"none"``; ``root_index`` overrides the index): translate
       the prediction so its root joint coincides with the ground truth's.
    2. ``scale`` (needs a root): ``"bone"`` rescales the prediction about the root so that its
       wrist-to-middle-MCP length equals the ground truth's (IntagHand/DIR protocol); with ``bone_length``
       (e.g. :data:`HAND_BONE_LENGTH_M` = 0.095 m) both prediction and ground truth are instead rescaled so
       that this bone has exactly that length (scale-normalised errors). ``"lstsq"`` applies the least-squares
       scale of the root-relative prediction onto the root-relative ground truth, fitted on the valid points.
    3. ``procrustes``: similarity (Umeyama) alignment of the prediction onto the ground truth, fitted per
       sample on the valid points (FreiHAND/HO3D "PA" protocol). It makes steps 1-2 irrelevant for the error
       (except ``bone_length``, which rescales the ground truth).

    Args:
        pred: ``(N, P, 3)`` predicted points (joints or vertices), metres, any common frame.
        gt: ``(N, P, 3)`` ground-truth points, same frame and units.
        mask: optional ``(N, P)`` bool validity; invalid points are excluded from the fits (their errors are
            still returned).
        root, scale, procrustes: alignment, see above.
        pred_joints: ``(N, J, 3)`` predicted joints giving the root and bone when ``pred`` are vertices;
            defaults to ``pred`` (joint evaluation).
        gt_joints: ``(N, J, 3)`` ground-truth joints, likewise; defaults to ``gt``.
        root_index: explicit root joint index (overrides ``root``'s default index).
        wrist_index: wrist index in the joint order (default: mano21, looked up by name).
        middle_mcp_index: middle-finger MCP index in the joint order (default: mano21).
        bone_length: with ``scale="bone"``, normalise both hands to this wrist-to-middle-MCP length (metres).

    Returns:
        ``(N, P)`` float64 distances, metres.
    """
    p = _points3(pred, "pred")
    g = _points3(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {p.shape} vs {g.shape}")
    valid = as_mask(mask, p.shape[:2])
    pj = p if pred_joints is None else _points3(pred_joints, "pred_joints")
    gj = g if gt_joints is None else _points3(gt_joints, "gt_joints")
    if pj.shape != gj.shape or pj.shape[0] != p.shape[0]:
        raise ValueError(f"joint shapes must match and share N: {pj.shape} vs {gj.shape}, N={p.shape[0]}")
    r = _resolve_root(root, root_index, wrist_index, middle_mcp_index)
    if scale not in _SCALES:
        raise ValueError(f"scale must be one of {_SCALES}, got {scale!r}")
    if scale != "none" and r is None:
        raise ValueError(f"scale={scale!r} needs a root (scaling is about the root joint)")
    if bone_length is not None and scale != "bone":
        raise ValueError("bone_length is only used with scale='bone'")

    if r is not None:
        pred_root = pj[:, r]  # (N, 3)
        gt_root = gj[:, r]
        p = p - pred_root[:, None] + gt_root[:, None]
        pj = pj - pred_root[:, None] + gt_root[:, None]
        p_rel = p - gt_root[:, None]
        g_rel = g - gt_root[:, None]
        if scale == "bone":
            pred_bone = np.linalg.norm(pj[:, wrist_index] - pj[:, middle_mcp_index], axis=-1)
            gt_bone = np.linalg.norm(gj[:, wrist_index] - gj[:, middle_mcp_index], axis=-1)
            if np.any(pred_bone <= 0) or np.any(gt_bone <= 0):
                raise ValueError("zero wrist-to-middle-MCP length: cannot rescale by bone length")
            if bone_length is None:
                p_rel = p_rel * (gt_bone / pred_bone)[:, None, None]
            else:
                p_rel = p_rel * (bone_length / pred_bone)[:, None, None]
                g_rel = g_rel * (bone_length / gt_bone)[:, None, None]
        elif scale == "lstsq":
            w = valid[..., None]
            num = (w * p_rel * g_rel).sum((1, 2))
            den = (w * p_rel * p_rel).sum((1, 2))
            p_rel = p_rel * (num / np.maximum(den, 1e-300))[:, None, None]
        p = p_rel + gt_root[:, None]
        g = g_rel + gt_root[:, None]

    if procrustes:
        aligned, _ = procrustes_align(torch.from_numpy(p), torch.from_numpy(g), mask=torch.from_numpy(valid))
        p = aligned.numpy()
    return np.linalg.norm(p - g, axis=-1)


def _masked_mean(errors: np.ndarray, mask: Any) -> float:
    valid = as_mask(mask, errors.shape)
    if not valid.any():
        return float("nan")
    return float(errors[valid].mean())


def mpjpe(
    pred: Any,
    gt: Any,
    mask: Any = None,
    root: str = "wrist",
    scale: str = "none",
    procrustes: bool = False,
    **kwargs: Any,
) -> float:
    """Mean per-joint position error (metres) after the alignment of :func:`position_errors`.

    The mean runs over all valid (sample, joint) pairs, as mmpose's ``keypoint_mpjpe``.

    Args:
        pred: ``(N, K, 3)`` predicted joints, metres.
        gt: ``(N, K, 3)`` ground-truth joints, metres.
        mask: optional ``(N, K)`` validity.
        root: ``"wrist"`` (default; DIR, InterWild), ``"middle_mcp"`` (IntagHand) or ``"none"``.
        scale: ``"none"``, ``"bone"`` (IntagHand/DIR/HandDGCL) or ``"lstsq"``.
        procrustes: Procrustes-aligned error (FreiHAND/HO3D PA-MPJPE).
        **kwargs: ``root_index``, ``wrist_index``, ``middle_mcp_index``, ``bone_length`` as in
            :func:`position_errors`.

    Returns:
        Mean error in metres (NaN if nothing is valid). Log :func:`describe_alignment` with it.
    """
    errors = position_errors(pred, gt, mask, root, scale, procrustes, **kwargs)
    return _masked_mean(errors, mask)


def mpvpe(
    pred_vertices: Any,
    gt_vertices: Any,
    pred_joints: Any = None,
    gt_joints: Any = None,
    mask: Any = None,
    root: str = "wrist",
    scale: str = "none",
    procrustes: bool = False,
    **kwargs: Any,
) -> float:
    """Mean per-vertex position error (metres); root and bone come from the joints.

    With ``procrustes=True`` the similarity is fitted on the vertices themselves (FreiHAND PA-MPVPE). Root or
    bone alignment needs ``pred_joints``/``gt_joints``.

    Args:
        pred_vertices: ``(N, V, 3)`` predicted vertices, metres.
        gt_vertices: ``(N, V, 3)`` ground-truth vertices (same topology), metres.
        pred_joints: ``(N, J, 3)`` predicted joints (root and bone), metres.
        gt_joints: ``(N, J, 3)`` ground-truth joints, metres.
        mask: optional ``(N, V)`` validity.
        root, scale, procrustes, **kwargs: as in :func:`mpjpe`.

    Returns:
        Mean error in metres.
    """
    needs_joints = root != "none" or kwargs.get("root_index") is not None
    if needs_joints and (pred_joints is None or gt_joints is None):
        raise ValueError("root/scale alignment of vertices needs pred_joints and gt_joints")
    errors = position_errors(
        pred_vertices, gt_vertices, mask, root, scale, procrustes,
        pred_joints=pred_joints, gt_joints=gt_joints, **kwargs,
    )  # fmt: skip
    return _masked_mean(errors, mask)


def pa_mpjpe(pred: Any, gt: Any, mask: Any = None) -> float:
    """Procrustes-aligned MPJPE (metres): similarity alignment per sample, no root/scale step.

    Convention of the FreiHAND and HO3D evaluation servers (PA-MPJPE / "PA-J-PE"), ACR and the hand-object
    paper. Inputs as :func:`mpjpe`.
    """
    return mpjpe(pred, gt, mask, root="none", scale="none", procrustes=True)


def pa_mpvpe(pred_vertices: Any, gt_vertices: Any, mask: Any = None) -> float:
    """Procrustes-aligned MPVPE (metres), the similarity fitted on the vertices (FreiHAND/HO3D PA-MPVPE)."""
    return mpvpe(pred_vertices, gt_vertices, mask=mask, root="none", scale="none", procrustes=True)


def mrrpe(
    pred_left_root: Any, pred_right_root: Any, gt_left_root: Any, gt_right_root: Any, mask: Any = None
) -> float:
    """Mean relative-root position error (metres): error of the left root relative to the right root.

    ``mean_n |(pL_n - pR_n) - (gL_n - gR_n)|`` (DIR Sec. 4.3 "MRRPE", InterNet/InterWild convention; the root
    is whichever joint the protocol uses, usually the wrist). Evaluate on frames where both hands are
    annotated.

    Args:
        pred_left_root: ``(N, 3)`` predicted left-hand root, metres, camera frame.
        pred_right_root: ``(N, 3)`` predicted right-hand root.
        gt_left_root: ``(N, 3)`` ground-truth left root.
        gt_right_root: ``(N, 3)`` ground-truth right root.
        mask: optional ``(N,)`` validity (both hands valid).

    Returns:
        Mean error in metres.
    """
    named = {
        "pred_left_root": pred_left_root,
        "pred_right_root": pred_right_root,
        "gt_left_root": gt_left_root,
        "gt_right_root": gt_right_root,
    }
    arrays = [as_float64(a, n) for n, a in named.items()]
    shape = arrays[0].shape
    if len(shape) != 2 or shape[-1] != 3 or any(a.shape != shape for a in arrays):
        raise ValueError(f"all roots must have the same shape (N, 3), got {[a.shape for a in arrays]}")
    pl, pr, gl, gr = arrays
    err = np.linalg.norm((pl - pr) - (gl - gr), axis=-1)
    return _masked_mean(err, mask)


def miaa(pred: Any, gt: Any, mask: Any = None, intrinsics: Any = None) -> float:
    """Mesh-image alignment accuracy (pixels): mean 2D distance between projected predicted and GT vertices.

    Definition from the DIR paper (Ren et al., "Decoupled Iterative Refinement Framework for Interacting
    Hands Reconstruction from a Single RGB Image", Sec. 4.3 Evaluation Metrics: "to evaluate the Mesh-image
    Alignment Accuracy (MIAA), we calculate the 2D distance in image pixels between the projected ground
    truth vertices and the predicted vertices"; reported in pixels in its Tables 1-2). Lower is better. No
    alignment is applied: the metric measures how well the mesh overlays the image.

    Args:
        pred: ``(N, V, 2)`` projected predicted vertices in pixels, or ``(N, V, 3)`` camera-frame vertices
            (metres) when ``intrinsics`` is given.
        gt: same shape as ``pred``, ground truth.
        mask: optional ``(N, V)`` validity.
        intrinsics: optional ``(3, 3)`` or ``(N, 3, 3)`` pinhole intrinsics (pixels) used to project 3D
            inputs with :func:`hand_recon_core.geometry.cameras.project_points`.

    Returns:
        Mean distance in pixels.
    """
    p = as_float64(pred, "pred")
    g = as_float64(gt, "gt")
    if p.shape != g.shape or p.ndim != 3:
        raise ValueError(f"pred and gt must have the same shape (N, V, C), got {p.shape} and {g.shape}")
    if intrinsics is not None:
        if p.shape[-1] != 3:
            raise ValueError("with intrinsics, pred and gt must be (N, V, 3) camera-frame points")
        k = torch.from_numpy(as_float64(intrinsics, "intrinsics"))  # (3, 3) or (N, 3, 3): broadcasts
        p = project_points(torch.from_numpy(p), k).numpy()
        g = project_points(torch.from_numpy(g), k).numpy()
    elif p.shape[-1] != 2:
        raise ValueError("pred and gt must be (N, V, 2) pixels, or pass intrinsics for 3D points")
    err = np.linalg.norm(p - g, axis=-1)
    return _masked_mean(err, mask)


def rotation_error_deg(pred: Any, gt: Any, mask: Any = None) -> np.ndarray:
    """Global rotation error per hand (degrees): the angle of the rotation in the similarity Procrustes
    alignment of the predicted joints onto the ground truth (the rotation that PA-MPJPE removes).

    Independent of how a method parametrises its orientation (axis-angle, 6D, hand-model conventions): 0 for a
    prediction whose joints differ from the ground truth by a similarity, 180 for a half turn. Diagnostic,
    ours (no paper reports it); a large value with a small PA-MPJPE means the articulation is right and the
    global orientation wrong.

    Args:
        pred: ``(N, K, 3)`` predicted joints (any frame offset and scale).
        gt: ``(N, K, 3)`` ground-truth joints.
        mask: optional ``(N, K)`` validity (at least 3 valid joints per hand).

    Returns:
        ``(N,)`` float64 angles in degrees, in ``[0, 180]``.
    """
    p = _points3(pred, "pred")
    g = _points3(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt must have the same shape, got {p.shape} and {g.shape}")
    m = None if mask is None else torch.from_numpy(as_mask(mask, p.shape[:2]))
    _, (_, rot, _) = procrustes_align(torch.from_numpy(p), torch.from_numpy(g), m)
    trace = torch.diagonal(rot, dim1=-2, dim2=-1).sum(-1)
    return np.degrees(np.arccos(np.clip((trace.numpy() - 1.0) / 2.0, -1.0, 1.0)))
