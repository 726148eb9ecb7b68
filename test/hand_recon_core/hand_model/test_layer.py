"""Tests of HandLayer on the open model (behaviour of linear blend skinning, inputs, precision, gradients)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hand_recon_core.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d
from hand_recon_core.hand_model.layer import HandLayer
from hand_recon_core.hand_model.loader import load_hand_model
from hand_recon_core.hand_model.mirror import mirror_axis_angle, mirror_points

F64 = torch.float64


def _inputs(b: int = 3, seed: int = 0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return {
        "global_orient": 0.7 * torch.randn(b, 3, generator=g, dtype=dtype),
        "hand_pose": 0.4 * torch.randn(b, 45, generator=g, dtype=dtype),
        "betas": torch.randn(b, 10, generator=g, dtype=dtype),
        "transl": 0.1 * torch.randn(b, 3, generator=g, dtype=dtype),
    }


def test_zero_pose_is_template_plus_shape(open_right):
    layer = HandLayer(open_right, flat_hand_mean=True, dtype=F64)
    betas = torch.randn(2, 10, dtype=F64)
    out = layer(betas=betas)
    expect = open_right.v_template[None] + np.einsum("vcl,bl->bvc", open_right.shapedirs, betas.numpy())
    np.testing.assert_allclose(out.vertices.numpy(), expect, atol=1e-12)
    assert out.full_pose.abs().max() == 0


def test_defaults_and_batch_inference(open_right):
    layer = HandLayer(open_right)
    out = layer()
    assert out.vertices.shape == (1, open_right.num_vertices, 3)
    assert out.joints.shape == (1, 21, 3)
    assert out.full_pose.shape == (1, 16, 3) and out.joint_transforms.shape == (1, 16, 4, 4)
    # Non-flat mean: zero input is the model's mean pose.
    np.testing.assert_allclose(out.full_pose[0, 1:].reshape(-1).numpy(), open_right.hands_mean, atol=1e-6)
    assert layer(transl=torch.zeros(5, 3)).vertices.shape[0] == 5
    with pytest.raises(ValueError, match="inconsistent batch"):
        layer(global_orient=torch.zeros(2, 3), betas=torch.zeros(3, 10))


def test_joints_are_regressed_from_vertices_at_rest_and_tips_are_vertices(open_right):
    layer = HandLayer(open_right, flat_hand_mean=True, dtype=F64)
    betas = torch.randn(4, 10, dtype=F64)
    out = layer(betas=betas)
    reg = torch.as_tensor(open_right.dense_regressor())
    np.testing.assert_allclose(out.joints[:, :16].numpy(), (reg @ out.vertices).numpy(), atol=1e-9)
    posed = layer(**_inputs(4))
    tips = posed.vertices[:, torch.as_tensor(open_right.tip_vertex_ids)]
    np.testing.assert_array_equal(posed.joints[:, 16:].numpy(), tips.numpy())


def test_parts_fully_weighted_to_one_joint_move_rigidly(open_right):
    data = dataclasses.replace(open_right, posedirs=np.zeros_like(open_right.posedirs))
    layer = HandLayer(data, flat_hand_mean=True, dtype=F64)
    inp = _inputs(2, seed=1)
    rest = layer(betas=inp["betas"])
    out = layer(**inp)
    rest_j = layer.rest_joints(inp["betas"])
    w = open_right.weights
    checked = 0
    for j in range(16):
        idx = np.nonzero(w[:, j] == 1.0)[0]
        assert len(idx) >= 3, f"part {j} has no fully weighted vertices"
        checked += 1
        r = out.joint_transforms[:, j, :3, :3]
        t = out.joint_transforms[:, j, :3, 3]
        v0 = rest.vertices[:, idx] - rest_j[:, j:j + 1]
        expect = torch.einsum("bij,bvj->bvi", r, v0) + t[:, None]
        np.testing.assert_allclose(out.vertices[:, idx].numpy(), expect.numpy(), atol=1e-12)
    assert checked == 16


def test_global_orient_rotates_about_the_wrist(open_right):
    layer = HandLayer(open_right, flat_hand_mean=True, dtype=F64)
    transl = torch.tensor([[0.1, -0.2, 0.3]], dtype=F64)
    out = layer(global_orient=torch.tensor([[0.3, -1.0, 2.0]], dtype=F64), transl=transl)
    np.testing.assert_allclose(out.joints[0, 0].numpy(), layer.rest_joints()[0, 0].numpy() + transl[0].numpy(),
                               atol=1e-12)


def test_left_is_mirrored_right(open_right):
    right = HandLayer(open_right, dtype=F64)
    left = HandLayer(open_right.mirrored(), dtype=F64)
    assert left.side == "left" and left.model_id == "open-v1-left"
    inp = _inputs(3, seed=2)
    out_r = right(**inp)
    out_l = left(global_orient=mirror_axis_angle(inp["global_orient"]),
                 hand_pose=mirror_axis_angle(inp["hand_pose"]), betas=inp["betas"],
                 transl=mirror_points(inp["transl"]))
    np.testing.assert_allclose(out_l.vertices.numpy(), mirror_points(out_r.vertices).numpy(), atol=1e-12)
    np.testing.assert_allclose(out_l.joints.numpy(), mirror_points(out_r.joints).numpy(), atol=1e-12)
    np.testing.assert_array_equal(left.faces.numpy(), right.faces.numpy()[:, [0, 2, 1]])


@pytest.mark.parametrize("pose_repr", ["axis_angle", "pca", "6d"])
def test_gradients_reach_every_input(open_right, pose_repr):
    layer = HandLayer(open_right, pose_repr=pose_repr, num_pca_comps=12, dtype=F64)
    inp = _inputs(2, seed=3)
    shape = (2, *layer.hand_pose_dim())
    inp["hand_pose"] = 0.3 * torch.randn(*shape, dtype=F64) + (torch.tensor([1.0, 0, 0, 0, 1, 0], dtype=F64)
                                                                if pose_repr == "6d" else 0.0)
    for v in inp.values():
        v.requires_grad_(True)
    out = layer(**inp)
    (out.vertices.square().sum() + out.joints.square().sum()).backward()
    for name, v in inp.items():
        assert v.grad is not None and torch.isfinite(v.grad).all(), name
        assert v.grad.abs().sum() > 0, name


def test_pca_and_6d_agree_with_axis_angle(open_right):
    inp = _inputs(3, seed=4)
    aa_layer = HandLayer(open_right, dtype=F64)
    ref = aa_layer(**inp)
    full = (inp["hand_pose"] + aa_layer.hands_mean).reshape(3, 15, 3)
    pca = HandLayer(open_right, pose_repr="pca", num_pca_comps=45, dtype=F64)
    out_pca = pca(**{**inp, "hand_pose": pca.axis_angle_to_pca(full.reshape(3, 45))})
    np.testing.assert_allclose(out_pca.vertices.numpy(), ref.vertices.numpy(), atol=1e-10)
    six = HandLayer(open_right, pose_repr="6d", dtype=F64)
    out_6d = six(**{**inp, "hand_pose": matrix_to_rot6d(axis_angle_to_matrix(full))})
    np.testing.assert_allclose(out_6d.vertices.numpy(), ref.vertices.numpy(), atol=1e-10)
    np.testing.assert_allclose(axis_angle_to_matrix(out_6d.full_pose).numpy(),
                               axis_angle_to_matrix(ref.full_pose).numpy(), atol=1e-10)


def test_pca_truncation_spans_the_leading_components(open_right):
    pca = HandLayer(open_right, pose_repr="pca", num_pca_comps=6, flat_hand_mean=True, dtype=F64)
    coeffs = torch.randn(2, 6, dtype=F64)
    aa = pca.hand_pose_to_axis_angle(coeffs)
    np.testing.assert_allclose(pca.axis_angle_to_pca(aa).numpy(), coeffs.numpy(), atol=1e-10)
    with pytest.raises(ValueError):
        HandLayer(open_right, pose_repr="pca", num_pca_comps=46)


def test_float16_forward(open_right):
    l32 = HandLayer(open_right)
    l16 = HandLayer(open_right, dtype=torch.float16)
    inp = _inputs(4, seed=5, dtype=torch.float32)
    o32 = l32(**inp)
    o16 = l16(**{k: v.half() for k, v in inp.items()})
    assert o16.vertices.dtype == torch.float16 and torch.isfinite(o16.vertices).all()
    assert (o16.vertices.float() - o32.vertices).abs().max() < 1e-3  # 1 mm
    assert (o16.joints.float() - o32.joints).abs().max() < 1e-3


def test_loader_builds_layers_on_device_and_dtype():
    layer = load_hand_model("open", side="left", pose_repr="pca", num_pca_comps=10, dtype=F64)
    assert layer.side == "left" and layer.dtype == F64 and layer.hand_pose_dim() == (10,)
    assert layer.faces.dtype == torch.int64 and layer.part_labels.max() == 15
    assert layer.joint_limits.shape == (16, 3, 2)
    assert "open-v1-left" in repr(layer)


def test_wrong_hand_pose_shape_is_a_clear_error(open_right):
    layer = HandLayer(open_right, pose_repr="pca", num_pca_comps=10)
    with pytest.raises(ValueError, match=r"\(B, 10\)"):
        layer(hand_pose=torch.zeros(2, 45))
