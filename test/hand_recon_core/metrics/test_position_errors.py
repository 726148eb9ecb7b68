"""Tests for hand_recon_core.metrics.position_errors (hand-computed cases)."""

import math

import numpy as np
import pytest
import torch

from hand_recon_core.hand_model.joint_orders import JOINT_NAMES
from hand_recon_core.metrics.position_errors import (
    HAND_BONE_LENGTH_M,
    MIDDLE_MCP_INDEX,
    WRIST_INDEX,
    describe_alignment,
    joint_index,
    miaa,
    mpjpe,
    mpvpe,
    mrrpe,
    pa_mpjpe,
    pa_mpvpe,
    position_errors,
    rotation_error_deg,
)


def _hand(n=2, seed=0):
    rng = np.random.default_rng(seed)
    joints = rng.normal(scale=0.04, size=(n, 21, 3))
    joints[:, WRIST_INDEX] = 0.0
    joints[:, MIDDLE_MCP_INDEX] = [0.0, -0.09, 0.0]  # 9 cm bone
    return joints + np.array([0.1, 0.0, 0.6])


def test_indices_come_from_the_joint_order():
    assert (WRIST_INDEX, MIDDLE_MCP_INDEX) == (0, 4)  # mano21 (HAND_FACTS: native MANO order)
    assert JOINT_NAMES["mano21"][MIDDLE_MCP_INDEX] == "middle_mcp"
    assert joint_index("middle_mcp", "openpose21") == 9
    with pytest.raises(KeyError):
        joint_index("elbow")


def test_translated_prediction():
    gt = _hand()
    shift = np.array([0.03, -0.04, 0.0])  # |shift| = 5 cm
    pred = gt + shift
    assert mpjpe(pred, gt, root="wrist") == pytest.approx(0.0, abs=1e-12)
    assert mpjpe(pred, gt, root="middle_mcp") == pytest.approx(0.0, abs=1e-12)
    assert mpjpe(pred, gt, root="none") == pytest.approx(0.05)
    assert pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)


def test_bone_scaling_removes_global_scale_about_root():
    gt = _hand()
    root = gt[:, WRIST_INDEX : WRIST_INDEX + 1]
    pred = (gt - root) * 1.3 + root + 0.2
    assert mpjpe(pred, gt, root="wrist", scale="bone") == pytest.approx(0.0, abs=1e-12)
    assert mpjpe(pred, gt, root="wrist", scale="lstsq") == pytest.approx(0.0, abs=1e-12)
    assert mpjpe(pred, gt, root="wrist", scale="none") > 0.005
    # Scaled about the root, a joint at distance d from the wrist is off by 0.3 d.
    errs = position_errors(pred, gt, root="wrist")
    np.testing.assert_allclose(errs, 0.3 * np.linalg.norm(gt - root, axis=-1), atol=1e-12)


def test_bone_scaling_hand_computed():
    # Two joints used: wrist at origin, middle MCP; one extra joint. GT bone 0.1 m, pred bone 0.05 m.
    gt = np.zeros((1, 21, 3))
    pred = np.zeros((1, 21, 3))
    gt[0, MIDDLE_MCP_INDEX] = [0.0, 0.1, 0.0]
    pred[0, MIDDLE_MCP_INDEX] = [0.0, 0.05, 0.0]
    gt[0, 20] = [0.02, 0.0, 0.0]
    pred[0, 20] = [0.02, 0.0, 0.0]  # after x2 scaling it sits at 0.04: error 0.02 on that joint only
    errs = position_errors(pred, gt, root="wrist", scale="bone")
    assert errs[0, MIDDLE_MCP_INDEX] == pytest.approx(0.0)
    assert errs[0, 20] == pytest.approx(0.02)
    assert mpjpe(pred, gt, root="wrist", scale="bone") == pytest.approx(0.02 / 21)
    # 0.095 m normalisation: both hands rescaled to a 0.095 m bone -> GT joint 20 at 0.019, pred at 0.038.
    errs = position_errors(pred, gt, root="wrist", scale="bone", bone_length=HAND_BONE_LENGTH_M)
    assert errs[0, 20] == pytest.approx(0.019)


def test_root_choice_matters():
    gt = np.zeros((1, 21, 3))
    pred = np.zeros((1, 21, 3))
    pred[0, MIDDLE_MCP_INDEX] = [0.01, 0.0, 0.0]  # only the middle MCP is wrong
    assert mpjpe(pred, gt, root="wrist") == pytest.approx(0.01 / 21)
    assert mpjpe(pred, gt, root="middle_mcp") == pytest.approx(0.01 * 20 / 21)
    assert mpjpe(pred, gt, root_index=MIDDLE_MCP_INDEX) == pytest.approx(0.01 * 20 / 21)


def test_mask_excludes_joints():
    gt = np.zeros((1, 3, 3))
    pred = np.zeros((1, 3, 3))
    pred[0, 2] = [0.0, 0.0, 0.3]
    mask = np.array([[True, True, False]])
    assert mpjpe(pred, gt, mask, root="none") == pytest.approx(0.0)
    assert mpjpe(pred, gt, torch.tensor([[1, 1, 0]]), root="none") == pytest.approx(0.0)
    assert mpjpe(pred, gt, root="none") == pytest.approx(0.1)
    with pytest.raises(ValueError):
        mpjpe(pred, gt, mask[:, :2], root="none")


def test_procrustes_on_rotated_scaled_prediction_and_torch_input():
    gt = _hand(3)
    c = gt.mean(1, keepdims=True)
    ang = 0.7
    rot = np.array([[math.cos(ang), -math.sin(ang), 0], [math.sin(ang), math.cos(ang), 0], [0, 0, 1]])
    pred = 0.8 * (gt - c) @ rot.T + c + 0.05
    assert mpjpe(pred, gt, root="wrist") > 0.005
    assert pa_mpjpe(torch.tensor(pred, dtype=torch.float32), gt) == pytest.approx(0.0, abs=1e-7)
    assert mpjpe(pred, gt, procrustes=True) == pytest.approx(0.0, abs=1e-9)
    half = torch.tensor(pred, dtype=torch.float16, requires_grad=True)  # detached and converted to float64
    assert pa_mpjpe(half, gt) < 1e-3


def test_mpvpe_uses_joint_root():
    gt_j = _hand(1)
    gt_v = np.random.default_rng(1).normal(scale=0.04, size=(1, 50, 3)) + gt_j[:, :1]
    shift = np.array([0.0, 0.0, 0.02])
    assert mpvpe(gt_v + shift, gt_v, gt_j + shift, gt_j, root="wrist") == pytest.approx(0.0, abs=1e-12)
    assert mpvpe(gt_v + shift, gt_v, root="none") == pytest.approx(0.02)
    assert pa_mpvpe(gt_v * 1.1 + shift, gt_v) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        mpvpe(gt_v, gt_v, root="wrist")


def test_invalid_protocols_raise():
    gt = _hand(1)
    with pytest.raises(ValueError):
        mpjpe(gt, gt, root="none", scale="bone")
    with pytest.raises(ValueError):
        mpjpe(gt, gt, root="palm")
    with pytest.raises(ValueError):
        mpjpe(gt, gt, scale="lstsq", bone_length=0.095)
    with pytest.raises(ValueError):
        mpjpe(gt[0], gt[0])


def test_describe_alignment_names_everything():
    text = describe_alignment("middle_mcp", "bone")
    assert "root=middle_mcp" in text and "mano21 joint 4" in text
    assert "scale=bone" in text and "|j0-j4|" in text
    assert "procrustes=off" in text and "metres" in text
    assert "0.095" in describe_alignment("wrist", "bone", bone_length=HAND_BONE_LENGTH_M)
    assert "procrustes=on" in describe_alignment("none", "none", True)


def test_mrrpe_hand_computed():
    gl = np.array([[-0.1, 0.0, 0.5], [0.0, 0.0, 0.5]])
    gr = np.array([[0.1, 0.0, 0.5], [0.2, 0.0, 0.5]])
    # Both hands shifted together: zero relative error. Then left hand 3 cm too deep in sample 0 only.
    assert mrrpe(gl + 1.0, gr + 1.0, gl, gr) == pytest.approx(0.0)
    pl = gl.copy()
    pl[0, 2] += 0.03
    assert mrrpe(pl, gr, gl, gr) == pytest.approx(0.015)
    assert mrrpe(pl, gr, gl, gr, mask=np.array([True, False])) == pytest.approx(0.03)


def test_miaa_pixels_and_projection():
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[3.0, 4.0], [0.0, 1.0]]])
    assert miaa(pred, gt) == pytest.approx(3.0)
    k = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    gt3 = np.array([[[0.0, 0.0, 1.0], [0.1, 0.0, 1.0]]])
    pred3 = gt3 + np.array([0.01, 0.0, 0.0])  # 5 px to the right at 1 m
    assert miaa(pred3, gt3, intrinsics=k) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        miaa(pred3, gt3)


def test_procrustes_residual_hand_computed():
    """A square whose corners are lifted in a saddle pattern (+d, -d, +d, -d): no rotation or translation helps
    (the lift is orthogonal to them), the optimal scale is <g, p> / <p, p> = 8 / (8 + 4 d^2), and each corner's
    residual is sqrt(2 (s - 1)^2 + s^2 d^2). With d = 0.5: s = 8/9 and the error is sqrt(2) / 3."""
    gt = np.array([[1, 1, 0], [1, -1, 0], [-1, -1, 0], [-1, 1, 0]], float)
    pred = gt.copy()
    pred[:, 2] = 0.5 * np.array([1, -1, 1, -1])
    assert math.isclose(pa_mpjpe(pred[None], gt[None]), math.sqrt(2) / 3, rel_tol=1e-9)
    # invariant to a similarity of the prediction
    moved = 2.0 * pred + np.array([3.0, -2.0, 5.0])
    assert math.isclose(pa_mpjpe(moved[None], gt[None]), math.sqrt(2) / 3, rel_tol=1e-9)
    assert math.isclose(pa_mpvpe(moved[None], gt[None]), math.sqrt(2) / 3, rel_tol=1e-9)


def test_lstsq_scale_hand_computed():
    """Root-aligned points p1 = (1, 0, 0), p2 = (0, 1, 0) against g1 = (3, 0, 0), g2 = (0, 0, 1): the least-squares
    scale about the root is <p, g> / <p, p> = 3 / 2, leaving errors 1.5 and sqrt(1.5^2 + 1)."""
    pred, gt = np.zeros((1, 21, 3)), np.zeros((1, 21, 3))
    pred[0, 1], pred[0, 2] = [1, 0, 0], [0, 1, 0]
    gt[0, 1], gt[0, 2] = [3, 0, 0], [0, 0, 1]
    shift = np.array([0.2, -0.1, 0.7])  # the root alignment removes any offset first
    err = position_errors(pred + shift, gt, scale="lstsq")
    np.testing.assert_allclose(err[0, :3], [0.0, 1.5, math.sqrt(1.5 ** 2 + 1)], atol=1e-12)
    np.testing.assert_allclose(err[0, 3:], 0.0, atol=1e-12)


def test_interpenetration_default_voxel_is_5_mm():
    import inspect

    from hand_recon_core.metrics.surface import interpenetration_volume

    assert inspect.signature(interpenetration_volume).parameters["voxel_size"].default == 0.005


def test_rotation_error_is_the_procrustes_rotation_angle():
    from hand_recon_core.geometry.rotations import axis_angle_to_matrix

    gt = _hand(3, seed=4)
    angles = np.radians([30.0, 120.0, 179.0])
    axes = np.array([[0, 0, 1], [1, 0, 0], [0.6, 0.8, 0]], float)
    rot = axis_angle_to_matrix(torch.from_numpy(axes * angles[:, None])).numpy()
    pred = 1.3 * np.einsum("nij,nkj->nki", rot, gt) + np.array([0.2, -0.1, 0.3])  # similarity of the GT
    np.testing.assert_allclose(rotation_error_deg(pred, gt), [30.0, 120.0, 179.0], atol=1e-6)
    mask = np.ones((3, 21), bool)
    mask[:, 5:] = False  # 5 joints suffice
    np.testing.assert_allclose(rotation_error_deg(pred, gt, mask), [30.0, 120.0, 179.0], atol=1e-6)
