"""Tests of right/left mirroring."""

from __future__ import annotations

import numpy as np
import torch

from hand_recon_core.geometry.rotations import axis_angle_to_matrix
from hand_recon_core.hand_model.mesh_checks import signed_volume
from hand_recon_core.hand_model.mirror import (
    mirror_axis_angle,
    mirror_faces,
    mirror_points,
    mirror_rotation_matrix,
)


def test_axis_angle_mirror_is_m_r_m():
    aa = torch.randn(10, 16, 3, dtype=torch.float64)
    m = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    expect = m @ axis_angle_to_matrix(aa) @ m
    torch.testing.assert_close(axis_angle_to_matrix(mirror_axis_angle(aa)), expect)
    torch.testing.assert_close(mirror_rotation_matrix(axis_angle_to_matrix(aa)), expect)
    flat = aa.reshape(10, 48)
    torch.testing.assert_close(mirror_axis_angle(mirror_axis_angle(flat)), flat)


def test_numpy_and_points():
    aa = np.array([[0.1, 0.2, 0.3]])
    np.testing.assert_array_equal(mirror_axis_angle(aa), [[0.1, -0.2, -0.3]])
    np.testing.assert_array_equal(mirror_points(np.array([1.0, 2.0, 3.0])), [-1.0, 2.0, 3.0])


def test_mirrored_mesh_keeps_outward_normals(open_right):
    v, f = open_right.v_template, open_right.faces
    assert signed_volume(v, f) > 0
    assert signed_volume(mirror_points(v), mirror_faces(f)) > 0
    assert signed_volume(mirror_points(v), f) < 0
    tf = torch.as_tensor(f)
    assert torch.equal(mirror_faces(tf), tf[:, [0, 2, 1]])
