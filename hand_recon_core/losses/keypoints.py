"""Keypoint losses: 2D re-projection, 2D bone direction, global-local consistency, root-relative 3D joints.

Equations refer to the single-stage multi-hand paper (``shared/papers/single_stage_weakly_supervised_multi_hand
.txt``): Eq. 8 (re-projection loss: keypoint term + normalised bone-direction term), Eq. 11 (consistency
between the keypoints of the heatmap branch and the re-projected 3D joints). Joints are in the canonical
``mano21`` order unless a ``bones`` list says otherwise; 2D in pixels of one image, 3D in metres.

Every loss averages over the valid entries of the whole batch (``1 / (k J) sum_n sum_j`` in Eq. 8 and 11, with
invalid joints left out of both sums) and returns a float32 scalar, 0 when nothing is valid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from hand_recon_core.hand_model.joint_orders import JOINT_NAMES, bone_pairs, canonical_order

__all__ = [
    "SCALE_BONE",
    "hand_scale_2d",
    "keypoint_reprojection_loss",
    "bone_direction_loss",
    "keypoint_consistency_loss",
    "heatmap_soft_argmax",
    "root_relative_joint_loss",
]


def _joint(name: str, order: str = "mano21") -> int:
    return JOINT_NAMES[canonical_order(order)].index(name)


#: The bone whose 2D length normalises the re-projection error, (parent, child) in ``mano21``: the first section
#: of the middle finger's chain, wrist -> middle MCP (Eq. 8, "We use the length of the first section in middle
#: finger to unify the errors for different hand scales").
SCALE_BONE: tuple[int, int] = (_joint("wrist"), _joint("middle_mcp"))


def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    w = weights.float()
    return (values.float() * w).sum() / w.sum().clamp_min(1.0)


def hand_scale_2d(keypoints: torch.Tensor, valid: torch.Tensor, bbox: torch.Tensor | None = None,
                  min_fraction: float = 0.1, min_pixels: float = 1.0) -> torch.Tensor:
    """Per-hand 2D scale for Eq. 8: the length of :data:`SCALE_BONE` (wrist -> middle MCP) in pixels.

    The bone may be foreshortened (a palm seen edge-on), so the scale is floored at ``min_fraction`` times the
    longer side of the hand box (when given) and at ``min_pixels``; hands whose bone is not annotated use the
    floor alone.

    Args:
        keypoints: (M, 21, 2) ground-truth keypoints, pixels, ``mano21``.
        valid: (M, 21) 0/1 validity.
        bbox: optional (M, 4) xyxy ground-truth boxes, pixels.
        min_fraction: floor as a fraction of the box's longer side.
        min_pixels: absolute floor, pixels.

    Returns:
        (M,) float32 pixels.
    """
    p, c = SCALE_BONE
    length = torch.linalg.vector_norm(keypoints[:, c].float() - keypoints[:, p].float(), dim=-1)
    ok = (valid[:, p] > 0) & (valid[:, c] > 0)
    length = torch.where(ok, length, torch.zeros_like(length))
    floor = torch.full_like(length, float(min_pixels))
    if bbox is not None:
        side = torch.maximum(bbox[:, 2] - bbox[:, 0], bbox[:, 3] - bbox[:, 1]).float()
        floor = torch.maximum(floor, min_fraction * side)
    return torch.maximum(length, floor)


def keypoint_reprojection_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                               scale: torch.Tensor | None = None) -> torch.Tensor:
    """First term of Eq. 8: mean Euclidean distance between re-projected and annotated keypoints.

    ``L = 1 / (k J) sum_n sum_j ||phi_nj - phi*_nj||_2 / s_n`` over valid joints, ``s_n`` the hand's scale
    (:func:`hand_scale_2d`), so the loss is in units of the wrist -> middle-MCP length.

    Args:
        pred: (M, J, 2) projected joints, pixels.
        target: (M, J, 2) annotated keypoints, pixels.
        valid: (M, J) 0/1 (or weights).
        scale: optional (M,) per-hand scale, pixels (None: errors in pixels).

    Returns:
        scalar float32.
    """
    err = torch.linalg.vector_norm(pred.float() - target.float(), dim=-1)  # (M, J)
    if scale is not None:
        err = err / scale.float().clamp_min(1e-6)[:, None]
    return _masked_mean(err, valid)


def bone_direction_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                        bones: Sequence[tuple[int, int]] | None = None, min_length: float = 1e-3) -> torch.Tensor:
    """Second term of Eq. 8: distance between normalised 2D bone vectors.

    ``L = 1 / (k E) sum_n sum_e ||e_ne - e*_ne||_2`` with ``e = (child - parent) / ||child - parent||``, over the
    bones whose two joints are valid and whose annotated length exceeds ``min_length``. Zero for identical
    skeletons (and for skeletons differing by a scale about any point and a translation), at most 2 per bone.

    Args:
        pred: (M, J, D) predicted joints (D = 2 for pixels; any D works).
        target: (M, J, D) annotated joints.
        valid: (M, J) 0/1.
        bones: (parent, child) pairs; default the 20 bones of ``mano21``.
        min_length: annotated bones shorter than this (units of ``target``) are skipped (no direction).

    Returns:
        scalar float32.
    """
    pairs = torch.as_tensor(bones if bones is not None else bone_pairs("mano21"), device=pred.device,
                            dtype=torch.long)
    parent, child = pairs[:, 0], pairs[:, 1]
    vp = pred[:, child].float() - pred[:, parent].float()
    vt = target[:, child].float() - target[:, parent].float()
    ok = (valid[:, child] > 0) & (valid[:, parent] > 0) & (torch.linalg.vector_norm(vt, dim=-1) > min_length)
    ep = F.normalize(vp, dim=-1, eps=1e-8)
    et = F.normalize(vt, dim=-1, eps=1e-8)
    return _masked_mean(torch.linalg.vector_norm(ep - et, dim=-1), ok)


def heatmap_soft_argmax(logits: torch.Tensor, batch: torch.Tensor, boxes: torch.Tensor, stride: int,
                        temperature: float = 1.0) -> torch.Tensor:
    """Per-hand keypoints from keypoint heatmaps: soft-argmax of each channel inside the hand's box.

    The joint-assignment step of Eq. 11 ("keypoints belonging to the same hand should be close to each other
    while different hands should fall apart"): for hand ``n`` only the heatmap cells whose centres lie in its
    box ``boxes[n]`` compete, so the peaks of other hands are ignored. The expectation of the cell centres under
    ``softmax(logits / temperature)`` restricted to the box is returned (differentiable w.r.t. the logits).

    Args:
        logits: (B, J, h, w) keypoint heatmap logits at ``stride``.
        batch: (M,) int64 image index of each hand.
        boxes: (M, 4) xyxy boxes in input pixels (sample convention: pixel centres at integers).
        stride: input pixels per heatmap cell.
        temperature: softmax temperature (logit units).

    Returns:
        (M, J, 2) float32 keypoints in input pixels.
    """
    _, j, h, w = logits.shape
    xs = torch.arange(w, device=logits.device, dtype=torch.float32) * stride + (stride - 1) / 2.0
    ys = torch.arange(h, device=logits.device, dtype=torch.float32) * stride + (stride - 1) / 2.0
    b = boxes.float()
    in_x = (xs[None, :] >= b[:, 0:1]) & (xs[None, :] <= b[:, 2:3])  # (M, w)
    in_y = (ys[None, :] >= b[:, 1:2]) & (ys[None, :] <= b[:, 3:4])  # (M, h)
    # a box thinner than a cell still gets its nearest column / row
    cx = ((b[:, 0] + b[:, 2]) / 2 - (stride - 1) / 2.0) / stride
    cy = ((b[:, 1] + b[:, 3]) / 2 - (stride - 1) / 2.0) / stride
    in_x |= torch.arange(w, device=logits.device)[None, :] == cx.round().clamp(0, w - 1).long()[:, None]
    in_y |= torch.arange(h, device=logits.device)[None, :] == cy.round().clamp(0, h - 1).long()[:, None]
    window = in_y[:, :, None] & in_x[:, None, :]  # (M, h, w)
    x = logits[batch.long()].float() / temperature  # (M, J, h, w)
    x = x.masked_fill(~window[:, None], float("-inf"))
    prob = torch.softmax(x.reshape(x.shape[0], j, h * w), dim=-1).reshape(x.shape[0], j, h, w)
    u = (prob.sum(dim=2) * xs).sum(-1)
    v = (prob.sum(dim=3) * ys).sum(-1)
    return torch.stack([u, v], dim=-1)


def keypoint_consistency_loss(kp_local: torch.Tensor, kp_reprojected: torch.Tensor, valid: torch.Tensor,
                              scale: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 11: mean distance between keypoints from local features (heatmaps) and re-projected 3D joints.

    ``L_con = 1 / (k J) sum_n sum_j ||phi^kp_nj - phi^rep_nj||_2`` (divided by the hand scale ``s_n`` when given,
    as for Eq. 8, so both losses share units). Gradients reach both branches.

    Args:
        kp_local: (M, J, 2) keypoints of the heatmap branch (:func:`heatmap_soft_argmax`), pixels.
        kp_reprojected: (M, J, 2) projected 3D joints, pixels.
        valid: (M, J) weights (e.g. 1 for joints inside the image).
        scale: optional (M,) pixels.

    Returns:
        scalar float32.
    """
    return keypoint_reprojection_loss(kp_reprojected, kp_local, valid, scale)


def root_relative_joint_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, root: int = 0,
                             pred_root: torch.Tensor | None = None, target_root: torch.Tensor | None = None
                             ) -> torch.Tensor:
    """Fully supervised 3D term: mean Euclidean error of root-relative joints (or vertices).

    Args:
        pred: (M, P, 3) predicted points (joints or vertices), metres, camera frame.
        target: (M, P, 3) ground truth, metres, camera frame.
        valid: (M, P) weights (hands without 3D get zeros).
        root: index of the root point in ``pred``/``target`` (``mano21`` wrist = 0), used when the roots are not
            given; the root must then be valid for a hand to count.
        pred_root: optional (M, 3) root of each predicted hand (e.g. its wrist joint, for vertices).
        target_root: optional (M, 3) root of each ground-truth hand.

    Returns:
        scalar float32, metres.
    """
    w = valid.float()
    if pred_root is None or target_root is None:
        pred_root, target_root = pred[:, root], target[:, root]
        w = w * (valid[:, root:root + 1] > 0).float()
    p = pred.float() - pred_root.float()[:, None]
    t = target.float() - target_root.float()[:, None]
    return _masked_mean(torch.linalg.vector_norm(p - t, dim=-1), w)
