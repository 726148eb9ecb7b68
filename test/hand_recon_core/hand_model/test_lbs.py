"""Tests of the linear-blend-skinning primitives on hand-computed cases."""

from __future__ import annotations

import math

import torch

from hand_recon_core.geometry.rotations import axis_angle_to_matrix
from hand_recon_core.hand_model.constants import depth_levels
from hand_recon_core.hand_model.lbs import blend_and_apply, forward_kinematics, skinning_transforms


def test_chain_of_three_joints():
    # Joints on the x axis at 0, 1, 2; joint 1 turns 90 degrees about z: joint 2 goes to (1, 1, 0).
    parents = [-1, 0, 1]
    joints = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]]], dtype=torch.float64)
    aa = torch.tensor([[[0.0, 0, 0], [0, 0, math.pi / 2], [0, 0, 0]]], dtype=torch.float64)
    rot, pos = forward_kinematics(axis_angle_to_matrix(aa), joints, parents, depth_levels(parents))
    torch.testing.assert_close(pos[0, 2], torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(rot[0, 2], axis_angle_to_matrix(aa[0, 1]))
    # A point rigidly attached to joint 2 at (3, 0, 0) ends at (1, 2, 0); halfway-weighted points blend.
    t = skinning_transforms(rot, pos, joints)
    pts = torch.tensor([[[3.0, 0, 0], [3.0, 0, 0]]], dtype=torch.float64)
    w = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.5, 0.5]], dtype=torch.float64)
    out = blend_and_apply(w, t, pts)
    torch.testing.assert_close(out[0, 0], torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(out[0, 1], torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64))


def test_root_rotation_about_root_joint():
    parents = [-1]
    joints = torch.tensor([[[1.0, 2.0, 3.0]]])
    rot = axis_angle_to_matrix(torch.tensor([[[0.0, math.pi, 0.0]]]))
    r, p = forward_kinematics(rot, joints, parents, depth_levels(parents))
    t = skinning_transforms(r, p, joints)
    out = blend_and_apply(torch.ones(1, 1), t, torch.tensor([[[2.0, 2.0, 3.0]]]))
    torch.testing.assert_close(out[0, 0], torch.tensor([0.0, 2.0, 3.0]), atol=1e-6, rtol=0)
