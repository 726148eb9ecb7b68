"""Tests for hand_recon_core.geometry.procrustes."""

import math

import pytest
import torch

from hand_recon_core.geometry.procrustes import (
    align_root,
    align_scale_lstsq,
    apply_similarity,
    procrustes_align,
)
from hand_recon_core.geometry.rotations import axis_angle_to_matrix


def _points(shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 0.05


def test_recovers_random_similarity_exactly():
    src = _points((4, 21, 3))
    g = torch.Generator().manual_seed(1)
    rot = axis_angle_to_matrix(torch.randn(4, 3, generator=g, dtype=torch.float64))
    scale = torch.tensor([0.5, 1.0, 1.7, 3.0], dtype=torch.float64)
    trans = torch.randn(4, 3, generator=g, dtype=torch.float64)
    tgt = scale[:, None, None] * src @ rot.transpose(-1, -2) + trans[:, None]
    aligned, tf = procrustes_align(src, tgt)
    assert (aligned - tgt).norm(dim=-1).max() < 1e-6
    torch.testing.assert_close(tf.scale, scale)
    torch.testing.assert_close(tf.rotation, rot)
    torch.testing.assert_close(tf.translation, trans)
    torch.testing.assert_close(apply_similarity(src, tf), aligned)


def test_float32_recovery_and_rigid_mode():
    src = _points((21, 3)).float()
    rot = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    tgt = src @ rot.T + torch.tensor([0.1, 0.2, 0.3])
    aligned, tf = procrustes_align(src, tgt, with_scale=False)
    assert (aligned - tgt).norm(dim=-1).max() < 1e-6
    assert tf.scale.item() == 1.0


def test_reflection_is_not_used():
    src = _points((30, 3))
    mirrored = src * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    _, tf = procrustes_align(src, mirrored)
    torch.testing.assert_close(torch.linalg.det(tf.rotation), torch.tensor(1.0, dtype=torch.float64))


def test_mask_ignores_outliers():
    src = _points((21, 3))
    tgt = 2.0 * src + 0.1
    tgt[5] += 10.0  # an outlier joint
    mask = torch.ones(21, dtype=torch.bool)
    mask[5] = False
    aligned, tf = procrustes_align(src, tgt, mask=mask)
    torch.testing.assert_close(tf.scale, torch.tensor(2.0, dtype=torch.float64))
    torch.testing.assert_close(aligned[mask], tgt[mask])
    with pytest.raises(ValueError):
        procrustes_align(src, tgt, mask=mask[:5])


def test_gradient_flows():
    src = _points((21, 3)).requires_grad_(True)
    tgt = _points((21, 3), seed=3)
    aligned, _ = procrustes_align(src, tgt)
    (aligned - tgt).pow(2).sum().backward()
    assert torch.isfinite(src.grad).all()


def test_align_root_and_lstsq_scale():
    pts = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    out = align_root(pts, pts[0], torch.tensor([0.0, 5.0, 0.0]))
    torch.testing.assert_close(out, torch.tensor([[0.0, 5.0, 0.0], [1.0, 5.0, 0.0]]))
    src = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    tgt = torch.tensor([[2.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    scaled, s = align_scale_lstsq(src, tgt)  # <x,y>/<x,x> = 6 / 2
    torch.testing.assert_close(s, torch.tensor(3.0))
    torch.testing.assert_close(scaled, 3.0 * src)
    _, s_masked = align_scale_lstsq(src, tgt, mask=torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(s_masked, torch.tensor(2.0))
