"""Tests for hand_recon_core.losses.photometric."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hand_recon_core.geometry.cameras import project_points
from hand_recon_core.geometry.rotations import axis_angle_to_matrix
from hand_recon_core.hand_model import load_hand_model
from hand_recon_core.losses.photometric import (
    crop_images,
    crop_intrinsics,
    photometric_loss,
    render_hands,
    square_boxes,
)
from hand_recon_core.render.primitives import box_mesh
from hand_recon_core.render.rasterizer import default_sh, render_meshes

K = torch.tensor([[120.0, 0.0, 31.5], [0.0, 120.0, 31.5], [0.0, 0.0, 1.0]])  # 64 x 64, sample convention


@pytest.fixture(scope="module")
def layer():
    return load_hand_model("open", side="right", flat_hand_mean=True)


def _hand(layer, requires_grad=False):
    go = torch.tensor([[math.pi / 2, 0.0, 0.0]], requires_grad=requires_grad)  # palm towards the camera
    pose = torch.zeros(1, 45)
    pose[0, 5] = 0.4
    pose.requires_grad_(requires_grad)
    out = layer(global_orient=go, hand_pose=pose, transl=torch.tensor([[0.06, -0.04, 0.6]]))  # inside the 64 x 64 image
    return out.vertices, go, pose


def test_square_boxes():
    b = square_boxes(torch.tensor([[10.0, 20.0, 30.0, 60.0]]), margin=1.5)
    assert b.tolist() == [[-10.0, 10.0, 50.0, 70.0]]


def test_crop_intrinsics_and_crop_images_are_aligned():
    image = torch.zeros(1, 1, 64, 64)
    u0, v0 = 40, 23
    image[0, 0, v0, u0] = 1.0
    x = torch.tensor([[[(u0 - 31.5) / 120.0 * 2.0, (v0 - 31.5) / 120.0 * 2.0, 2.0]]])  # projects to (u0, v0)
    assert torch.allclose(project_points(x, K), torch.tensor([[[float(u0), float(v0)]]]), atol=1e-4)
    p = 20
    box = torch.tensor([[u0 - 10.5, v0 - 7.5, u0 - 10.5 + p, v0 - 7.5 + p]])  # one image pixel per crop pixel
    crop = crop_images(image, torch.tensor([0]), box, p)[0, 0]
    assert crop[7, 10] == pytest.approx(1.0) and crop.sum() == pytest.approx(1.0)
    uv = project_points(x, crop_intrinsics(K[None], box, p))[0, 0]  # lands on the centre of crop pixel (10, 7)
    assert torch.allclose(uv, torch.tensor([10.0, 7.0]), atol=1e-4)


@pytest.mark.parametrize("box,size", [((-0.5, -0.5, 63.5, 63.5), 64), ((10.0, 4.0, 50.0, 44.0), 48)])
def test_rendered_crop_lies_on_the_reference_rendering(box, size):
    """A convex mesh soft-rendered into a crop (crop_intrinsics) covers the pixels where the project's z-buffer
    rasterizer draws it in the sample's pixel convention: same centroid (no half-pixel shift), same shape up to
    the soft edge band; crop pixel j maps back to image pixel u = x1 + (j + 0.5) L / P."""
    v, f = box_mesh(size=(0.12, 0.09, 0.05), center=(0.01, -0.02, 0.6))
    rot = axis_angle_to_matrix(torch.tensor([0.3, -0.4, 0.5])).numpy()
    centre = np.array([0.01, -0.02, 0.6])
    v = (v - centre) @ rot.T + centre
    ref = render_meshes([v], [f], [np.ones(3)], K.numpy().astype(np.float64), (64, 64), antialias=False)
    ref_mask = torch.from_numpy((ref.mesh_id >= 0).astype(np.float32))
    b = torch.tensor([box])
    verts = torch.as_tensor(v, dtype=torch.float32)[None]
    faces = torch.as_tensor(f, dtype=torch.long)
    _, sil = render_hands(verts, faces, torch.full((1, len(v), 3), 0.5), torch.zeros(1, 27),
                          crop_intrinsics(K[None], b, size), size, sigma=0.05)
    mine = (sil[0] > 0.5).float()
    scale = (b[0, 2] - b[0, 0]) / size
    jj = torch.arange(size, dtype=torch.float32)
    ui, vi = b[0, 0] + (jj + 0.5) * scale, b[0, 1] + (jj + 0.5) * scale  # image coordinates of crop pixels
    gy, gx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    ref_c = torch.stack([(ref_mask * gx).sum(), (ref_mask * gy).sum()]) / ref_mask.sum()
    mine_c = torch.stack([(mine * ui[None, :]).sum(), (mine * vi[:, None]).sum()]) / mine.sum()
    assert ref_mask.sum() > 300
    assert torch.allclose(mine_c, ref_c, atol=0.1)
    area_ratio = float(mine.sum() * scale**2 / ref_mask.sum())
    assert 0.93 < area_ratio < 1.07
    if size == 64:  # one crop pixel per image pixel: compare pixel by pixel
        iou = (mine * ref_mask).sum() / ((mine + ref_mask) > 0).sum()
        assert iou > 0.93
        same = crop_images(ref_mask[None, None], torch.tensor([0]), b, 64, mode="nearest")[0, 0]
        assert torch.equal(same, ref_mask)


def test_photometric_loss_hand_computed():
    rendered = torch.zeros(1, 2, 2, 3)
    target = torch.zeros(1, 2, 2, 3)
    target[0, 0, 0] = torch.tensor([0.3, 0.4, 0.0])  # distance 0.5
    target[0, 0, 1] = torch.tensor([1.0, 0.0, 0.0])  # distance 1, outside the skin mask
    target[0, 1, 0] = torch.tensor([0.0, 0.0, 1.0])  # distance 1, outside the silhouette
    sil = torch.tensor([[[0.9, 0.9], [0.2, 0.8]]])
    skin = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    # selected: (0, 0) distance 0.5 and (1, 1) distance 0 -> mean 0.25
    assert float(photometric_loss(rendered, sil, target, skin)) == pytest.approx(0.25, abs=1e-4)
    assert float(photometric_loss(rendered, sil, rendered, skin)) == pytest.approx(0.0, abs=1e-6)
    assert float(photometric_loss(rendered, sil, target, torch.zeros_like(skin))) == 0.0


def test_photometric_gradient_reaches_texture_lighting_and_pose(layer):
    verts, go, pose = _hand(layer, requires_grad=True)
    albedo = torch.full((1, layer.num_vertices, 3), 0.5, requires_grad=True)
    sh = torch.as_tensor(default_sh(), dtype=torch.float32)[None].clone().requires_grad_(True)
    uv = project_points(verts.detach(), K)
    box = square_boxes(torch.cat([uv.amin(1), uv.amax(1)], dim=1), 1.2)
    p = 24
    rendered, sil = render_hands(verts, layer.faces, albedo, sh, crop_intrinsics(K[None], box, p), p)
    # target: a left-to-right colour ramp, so moving the hand changes the error
    ramp = torch.linspace(0.0, 1.0, p)
    target = torch.stack([ramp[None, :].expand(p, p), ramp[:, None].expand(p, p), torch.full((p, p), 0.2)], -1)[None]
    loss = photometric_loss(rendered, sil, target, torch.ones(1, p, p))
    loss.backward()
    for name, t in (("albedo", albedo), ("sh", sh), ("finger pose", pose), ("global orient", go)):
        assert t.grad is not None and t.grad.abs().sum() > 0, name
        assert torch.isfinite(t.grad).all(), name
