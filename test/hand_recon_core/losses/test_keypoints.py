"""Tests for hand_recon_core.losses.keypoints (hand-computed cases)."""

from __future__ import annotations

import math

import pytest
import torch

from hand_recon_core.hand_model.joint_orders import bone_pairs
from hand_recon_core.losses.keypoints import (
    SCALE_BONE,
    bone_direction_loss,
    hand_scale_2d,
    heatmap_soft_argmax,
    keypoint_consistency_loss,
    keypoint_reprojection_loss,
    root_relative_joint_loss,
)


def _skeleton(seed: int = 0, m: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(m, 21, 2, generator=g) * 100


def test_scale_bone_is_wrist_to_middle_mcp():
    assert SCALE_BONE == (0, 4)  # mano21: wrist, middle_mcp


def test_reprojection_hand_computed():
    pred = torch.zeros(1, 3, 2)
    target = torch.tensor([[[3.0, 4.0], [0.0, 1.0], [10.0, 0.0]]])
    valid = torch.tensor([[1.0, 1.0, 0.0]])
    assert float(keypoint_reprojection_loss(pred, target, valid)) == pytest.approx((5 + 1) / 2)
    assert float(keypoint_reprojection_loss(pred, target, valid, torch.tensor([2.0]))) == pytest.approx(1.5)
    assert float(keypoint_reprojection_loss(pred, target, torch.zeros(1, 3))) == 0.0


def test_hand_scale_uses_bone_with_box_floor():
    kp = torch.zeros(2, 21, 2)
    kp[:, 4] = torch.tensor([30.0, 40.0])  # wrist -> middle MCP length 50
    valid = torch.ones(2, 21)
    valid[1, 4] = 0
    bbox = torch.tensor([[0.0, 0.0, 100.0, 60.0], [0.0, 0.0, 100.0, 200.0]])
    s = hand_scale_2d(kp, valid, bbox)
    assert s.tolist() == pytest.approx([50.0, 20.0])  # hand 1: bone missing -> 0.1 * 200


def test_bone_direction_zero_for_identical_and_similar_skeletons():
    kp = _skeleton()
    valid = torch.ones(2, 21)
    assert float(bone_direction_loss(kp, kp, valid)) == 0.0
    assert float(bone_direction_loss(kp * 3 + 7, kp, valid)) == pytest.approx(0.0, abs=1e-6)


def test_bone_direction_positive_otherwise_and_hand_computed():
    kp = _skeleton()
    valid = torch.ones(2, 21)
    other = kp.clone()
    other[0, 8] += torch.tensor([5.0, -3.0])
    assert float(bone_direction_loss(other, kp, valid)) > 0
    # a straight skeleton; turning one fingertip bone (a leaf) by 90 degrees costs sqrt(2) / 20, reversing it 2 / 20
    target = torch.zeros(1, 21, 2)
    pred = torch.zeros(1, 21, 2)
    for parent, child in bone_pairs("mano21"):
        target[0, child] = target[0, parent] + torch.tensor([1.0, 0.0])
        pred[0, child] = pred[0, parent] + torch.tensor([1.0, 0.0])
    pairs = bone_pairs("mano21")
    last_parent, last_child = pairs[-1]
    pred2 = pred.clone()
    pred2[0, last_child] = pred2[0, last_parent] + torch.tensor([0.0, 1.0])  # a leaf (fingertip): 90 degrees
    got = float(bone_direction_loss(pred2, target, torch.ones(1, 21)))
    assert got == pytest.approx(math.sqrt(2) / 20, rel=1e-5)
    pred3 = pred.clone()
    pred3[0, last_child] = pred3[0, last_parent] - torch.tensor([1.0, 0.0])  # reversed: distance 2
    assert float(bone_direction_loss(pred3, target, torch.ones(1, 21))) == pytest.approx(2 / 20, rel=1e-5)
    # invalid joints remove their bones
    valid = torch.ones(1, 21)
    valid[0, last_child] = 0
    assert float(bone_direction_loss(pred2, target, valid)) == 0.0


def test_bone_direction_gradient_is_finite_for_degenerate_prediction():
    kp = _skeleton(1, 1)
    pred = torch.zeros(1, 21, 2, requires_grad=True)
    bone_direction_loss(pred, kp, torch.ones(1, 21)).backward()
    assert torch.isfinite(pred.grad).all()


def test_heatmap_soft_argmax_finds_each_hands_peak_inside_its_box():
    logits = torch.full((1, 21, 16, 16), -20.0)
    logits[0, :, 3, 2] = 20.0  # hand A's peak at cell (x=2, y=3)
    logits[0, :, 12, 13] = 20.0  # hand B's peak
    stride = 4
    boxes = torch.tensor([[0.0, 0.0, 20.0, 20.0], [40.0, 40.0, 63.0, 63.0]])
    kp = heatmap_soft_argmax(logits, torch.tensor([0, 0]), boxes, stride)
    assert kp.shape == (2, 21, 2)
    assert torch.allclose(kp[0], torch.tensor([2 * 4 + 1.5, 3 * 4 + 1.5]).expand(21, 2), atol=1e-3)
    assert torch.allclose(kp[1], torch.tensor([13 * 4 + 1.5, 12 * 4 + 1.5]).expand(21, 2), atol=1e-3)


def test_consistency_is_reprojection_between_branches_and_reaches_both():
    a = torch.zeros(1, 21, 2, requires_grad=True)
    b = torch.full((1, 21, 2), 3.0, requires_grad=True)
    loss = keypoint_consistency_loss(a, b, torch.ones(1, 21))
    assert float(loss.detach()) == pytest.approx(3 * math.sqrt(2), rel=1e-5)
    loss.backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def test_root_relative_joint_loss():
    gt = torch.rand(2, 21, 3)
    pred = gt + torch.tensor([0.1, -0.2, 0.3])  # a pure translation: zero root-relative error
    valid = torch.ones(2, 21)
    assert float(root_relative_joint_loss(pred, gt, valid)) == pytest.approx(0.0, abs=1e-6)
    pred2 = pred.clone()
    pred2[:, 5] += torch.tensor([0.0, 0.03, 0.04])
    assert float(root_relative_joint_loss(pred2, gt, valid)) == pytest.approx(0.05 / 21, rel=1e-4)
    # explicit roots (vertices)
    got = root_relative_joint_loss(pred2, gt, valid, pred_root=pred[:, 0], target_root=gt[:, 0])
    assert float(got) == pytest.approx(0.05 / 21, rel=1e-4)
