"""Linear blend skinning primitives (batched torch, differentiable).

Frames: everything is in the hand-model frame (metres) until the global translation is added. Rotations act
on column vectors. The kinematic chain is evaluated level by level (all joints of one tree depth at once), so
a 16-joint MANO tree costs four small batched products instead of sixteen.
"""

from __future__ import annotations

import torch


def forward_kinematics(rot_mats: torch.Tensor, joints: torch.Tensor, parents: list[int],
                       levels: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Compose local joint rotations along the kinematic tree.

    Each joint rotates about its rest position: the global frame of joint ``j`` is
    ``G_j = G_parent(j) @ [R_j | J_j - J_parent(j)]`` (root: ``[R_0 | J_0]``).

    Args:
        rot_mats: (B, J, 3, 3) local rotations (relative to the parent; rest frames are aligned with the
            model frame).
        joints: (B, J, 3) rest-pose joint positions, metres.
        parents: (J,) parent indices, -1 for the root; parents precede children.
        levels: joints grouped by depth (see :func:`hand_recon_core.hand_model.constants.depth_levels`).

    Returns:
        ``(glob_rot, glob_pos)``: (B, J, 3, 3) global rotations and (B, J, 3) posed joint positions (metres).
    """
    b, j = rot_mats.shape[:2]
    rel = joints.clone()
    par = torch.as_tensor([max(p, 0) for p in parents], device=joints.device)
    rel[:, 1:] = joints[:, 1:] - joints[:, par[1:]]
    glob_rot = [None] * j
    glob_pos = [None] * j
    root = levels[0]
    for r in root:
        glob_rot[r] = rot_mats[:, r]
        glob_pos[r] = rel[:, r]
    for level in levels[1:]:
        idx = torch.as_tensor(level, device=joints.device)
        pidx = [parents[c] for c in level]
        pr = torch.stack([glob_rot[p] for p in pidx], dim=1)  # (B, n, 3, 3)
        pt = torch.stack([glob_pos[p] for p in pidx], dim=1)  # (B, n, 3)
        rot = pr @ rot_mats.index_select(1, idx)
        pos = (pr @ rel.index_select(1, idx).unsqueeze(-1)).squeeze(-1) + pt
        for k, c in enumerate(level):
            glob_rot[c] = rot[:, k]
            glob_pos[c] = pos[:, k]
    return torch.stack(glob_rot, dim=1), torch.stack(glob_pos, dim=1)


def skinning_transforms(glob_rot: torch.Tensor, glob_pos: torch.Tensor, rest_joints: torch.Tensor) -> torch.Tensor:
    """Per-joint skinning transforms mapping rest-pose points to posed points.

    ``x_posed = G_R (x_rest - J_rest) + G_t`` for a point rigidly attached to the joint.

    Args:
        glob_rot: (B, J, 3, 3) global joint rotations.
        glob_pos: (B, J, 3) posed joint positions.
        rest_joints: (B, J, 3) rest joint positions.

    Returns:
        (B, J, 12): the three columns of the rotation (column-major flattening) followed by the translation.
    """
    t = glob_pos - (glob_rot @ rest_joints.unsqueeze(-1)).squeeze(-1)
    return torch.cat([glob_rot.transpose(-1, -2).flatten(-2), t], dim=-1)


def blend_and_apply(weights: torch.Tensor, transforms: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Blend per-joint transforms with skinning weights and apply them to points (linear blend skinning).

    Args:
        weights: (V, J) skinning weights.
        transforms: (B, J, 12) from :func:`skinning_transforms`.
        points: (B, V, 3) rest-pose points (after blend shapes), metres.

    Returns:
        (B, V, 3) posed points, metres.
    """
    b, j, _ = transforms.shape
    v = weights.shape[0]
    # One (V, J) x (J, B * 12) product, computed vertex-major: (V, B, 12) blended columns c0, c1, c2, translation.
    t = (weights @ transforms.permute(1, 0, 2).reshape(j, b * 12)).view(v, b, 12)
    p = points.transpose(0, 1)  # (V, B, 3) view
    # out = t + c0 * x + c1 * y + c2 * z: three fused multiply-adds, faster on CPU than B*V tiny matmuls.
    out = torch.addcmul(t[..., 9:12], t[..., 0:3], p[..., 0:1])
    out = out.addcmul_(t[..., 3:6], p[..., 1:2])
    out = out.addcmul_(t[..., 6:9], p[..., 2:3])
    return out.transpose(0, 1).contiguous()
