"""Pose and shape priors: joint angles outside anatomical intervals, shape away from the mean.

The single-stage multi-hand paper (``shared/papers/single_stage_weakly_supervised_multi_hand.txt``, Sec. III-C,
Eq. 10) regularises the regressed hand model parameters with

    L_reg = w_pose ||delta_pose||_1 + w_shape ||delta_shape||_2,

where ``delta_pose`` is the amount by which each joint angle leaves its valid interval ``[theta_min, theta_max]``
("the angle within the range should not be regularized") and ``delta_shape`` pulls ``beta`` towards the mean
shape (zero).

Joint angles are the anatomical ``(flexion, abduction, twist)`` of each finger joint in its rest frame, the
parametrisation of :mod:`hand_recon_core.hand_model.pose_sampler` whose limits the hand layer carries
(``HandLayer.joint_limits``, (16, 3, 2) radians, right-hand convention; row 0, the wrist, is unused): the local
rotation is ``R = A Rz(flexion) Ry(abduction) Rx(twist) A^T`` with ``A = joint_frames[j]``. Left-hand poses are
mirrored to the right-hand convention first (``(x, y, z) -> (x, -y, -z)``, MANO's mirror relation).
"""

from __future__ import annotations

import torch

from hand_recon_core.geometry.rotations import axis_angle_to_matrix

__all__ = ["anatomical_angles", "joint_angle_violation", "joint_angle_limit_loss", "shape_prior_loss"]

_MIRROR_SIGNS = (1.0, -1.0, -1.0)


def anatomical_angles(finger_pose: torch.Tensor, frames: torch.Tensor, left: torch.Tensor | None = None
                      ) -> torch.Tensor:
    """Anatomical Euler angles (flexion, abduction, twist) of the 15 finger joints (differentiable).

    Inverse of :func:`hand_recon_core.hand_model.pose_sampler.anatomical_to_axis_angle` (intrinsic ZYX Euler
    decomposition of ``A^T R A``): ``flexion = atan2(R'[1,0], R'[0,0])``, ``abduction = asin(-R'[2,0])``,
    ``twist = atan2(R'[2,1], R'[2,2])``.

    Args:
        finger_pose: (M, 45) absolute axis-angle of MANO joints 1..15 (radians, native order, flat hand = 0).
        frames: (16, 3, 3) anatomical rest frames (columns in right-hand model coordinates).
        left: optional (M,) bool, poses of left hands (mirrored to the right-hand convention first).

    Returns:
        (M, 15, 3) radians.
    """
    aa = finger_pose.float().reshape(-1, 15, 3)
    if left is not None:
        signs = aa.new_tensor(_MIRROR_SIGNS)
        aa = torch.where(left.reshape(-1, 1, 1).bool(), aa * signs, aa)
    rot = axis_angle_to_matrix(aa)  # (M, 15, 3, 3)
    a = frames[1:].to(rot)
    r = a.transpose(-1, -2) @ rot @ a
    flexion = torch.atan2(r[..., 1, 0], r[..., 0, 0])
    abduction = torch.asin((-r[..., 2, 0]).clamp(-1.0 + 1e-6, 1.0 - 1e-6))
    twist = torch.atan2(r[..., 2, 1], r[..., 2, 2])
    return torch.stack([flexion, abduction, twist], dim=-1)


def joint_angle_violation(angles: torch.Tensor, limits: torch.Tensor) -> torch.Tensor:
    """Distance of each angle outside its interval (0 inside).

    Args:
        angles: (M, 15, 3) radians, from :func:`anatomical_angles`.
        limits: (16, 3, 2) radians ``[min, max]`` per joint and angle (row 0 unused).

    Returns:
        (M, 15, 3) radians, ``relu(min - angle) + relu(angle - max)``.
    """
    lo = limits[1:, :, 0].to(angles)
    hi = limits[1:, :, 1].to(angles)
    return torch.relu(lo - angles) + torch.relu(angles - hi)


def joint_angle_limit_loss(finger_pose: torch.Tensor, frames: torch.Tensor, limits: torch.Tensor,
                           left: torch.Tensor | None = None) -> torch.Tensor:
    """``||delta_pose||_1`` of Eq. 10: the L1 norm of the interval violations, averaged over hands.

    Args:
        finger_pose: (M, 45) absolute axis-angle finger pose (radians).
        frames: (16, 3, 3) anatomical frames (e.g. ``PoseSampler(layer).frames`` or ``layer.joint_frames``).
        limits: (16, 3, 2) radians (``layer.joint_limits``).
        left: optional (M,) bool left-hand flags.

    Returns:
        scalar float32: ``mean_hands sum_{joints, angles} violation`` (radians); 0 for M = 0.
    """
    if finger_pose.shape[0] == 0:
        return finger_pose.new_zeros((), dtype=torch.float32)
    v = joint_angle_violation(anatomical_angles(finger_pose, frames, left), limits)
    return v.sum(dim=(1, 2)).mean()


def shape_prior_loss(betas: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``||delta_shape||_2`` of Eq. 10: the L2 norm of ``beta`` (distance to the mean shape), averaged over hands.

    Args:
        betas: (M, 10) shape coefficients.
        eps: added under the square root (and its root subtracted) so the gradient is finite at ``beta = 0``.

    Returns:
        scalar float32; 0 for M = 0.
    """
    if betas.shape[0] == 0:
        return betas.new_zeros((), dtype=torch.float32)
    return (torch.sqrt((betas.float() ** 2).sum(-1) + eps) - eps**0.5).mean()
