"""Tests of the plausible-pose sampler and the two-hand interaction sampler."""

from __future__ import annotations

import numpy as np
import torch

from hand_recon_core.hand_model.loader import load_hand_model
from hand_recon_core.hand_model.mesh_checks import points_inside
from hand_recon_core.hand_model.mirror import mirror_axis_angle
from hand_recon_core.hand_model.pose_sampler import (
    PRESET_NAMES,
    PoseSampler,
    anatomical_to_axis_angle,
    axis_angle_to_anatomical,
    default_joint_frames,
    preset_angles,
    sample_anatomical,
    sample_two_hand_interaction,
)


def test_sampling_is_seeded_and_within_limits(open_right):
    lim = open_right.joint_limits.astype(np.float64)
    a = sample_anatomical(np.random.default_rng(7), 500, lim)
    b = sample_anatomical(np.random.default_rng(7), 500, lim)
    np.testing.assert_array_equal(a, b)
    assert np.all(a >= lim[1:, :, 0] - 1e-12) and np.all(a <= lim[1:, :, 1] + 1e-12)
    # Covers open hands and fists: the mean index PIP flexion spans a wide range.
    pip = np.degrees(a[:, 1, 0])
    assert pip.min() < 10 and pip.max() > 90


def test_presets_round_trip_through_axis_angle(open_right):
    frames = open_right.joint_frames.astype(np.float64)
    for name in PRESET_NAMES:
        ang = preset_angles(name)
        back = axis_angle_to_anatomical(anatomical_to_axis_angle(ang, frames), frames)
        np.testing.assert_allclose(back, ang, atol=1e-9, err_msg=name)


def test_fist_closes_and_flat_is_zero():
    layer = load_hand_model(flat_hand_mean=True)
    s = PoseSampler(layer)
    np.testing.assert_allclose(s.preset("flat"), 0.0, atol=1e-12)
    out = layer(hand_pose=s.to_layer_input(np.stack([s.preset("flat"), s.preset("fist")])))
    tip_to_wrist = (out.joints[:, 18] - out.joints[:, 0]).norm(dim=-1)
    assert tip_to_wrist[1] < 0.6 * tip_to_wrist[0]


def test_left_sampler_mirrors_right_and_layer_inputs():
    right = load_hand_model(side="right", dtype=torch.float64)
    left = load_hand_model(side="left", dtype=torch.float64, pose_repr="pca", num_pca_comps=45)
    sr, sl = PoseSampler(right), PoseSampler(left)
    pr = sr.sample(np.random.default_rng(3), 4)
    pl = sl.sample(np.random.default_rng(3), 4)
    np.testing.assert_allclose(pl, mirror_axis_angle(pr), atol=1e-12)
    vr = right(hand_pose=sr.to_layer_input(pr)).vertices
    vl = left(hand_pose=sl.to_layer_input(pl)).vertices
    np.testing.assert_allclose(vl[..., 0].numpy(), -vr[..., 0].numpy(), atol=1e-9)
    six = load_hand_model(pose_repr="6d", dtype=torch.float64)
    np.testing.assert_allclose(six(hand_pose=PoseSampler(six).to_layer_input(pr)).vertices.numpy(), vr.numpy(),
                               atol=1e-9)


def test_default_frames_match_open_model_for_fingers(open_right):
    frames = default_joint_frames(open_right.rest_joints(), open_right.v_template[open_right.tip_vertex_ids])
    np.testing.assert_allclose(frames[1:13], open_right.joint_frames[1:13], atol=1e-5)


def test_two_hand_interaction_touches_without_deep_overlap():
    right, left = load_hand_model(side="right"), load_hand_model(side="left")
    s = sample_two_hand_interaction(np.random.default_rng(11), right, left)
    assert s.min_distance <= 0.004 and s.max_penetration <= 0.003
    inside = points_inside(s.left_vertices, s.right_vertices, right.faces.numpy())
    assert inside.sum() < 0.02 * len(inside)
    with torch.no_grad():
        out = left(global_orient=torch.tensor(s.left_orient, dtype=torch.float32)[None],
                   hand_pose=PoseSampler(left).to_layer_input(s.left_pose[None]),
                   transl=torch.tensor(s.left_transl, dtype=torch.float32)[None])
    np.testing.assert_allclose(out.vertices[0].numpy(), s.left_vertices, atol=1e-5)


def test_presets_look_like_their_names():
    """Fingertip geometry of each named preset on the open model (tips: thumb 16, index 17 ... pinky 20)."""
    layer = load_hand_model(flat_hand_mean=True)
    s = PoseSampler(layer)
    names = list(PRESET_NAMES)
    j = layer(hand_pose=s.to_layer_input(np.stack([s.preset(n) for n in names]))).joints.detach().numpy()
    pose = dict(zip(names, j))
    reach = {n: np.linalg.norm(p[16:21] - p[0], axis=1) / np.linalg.norm(pose["flat"][16:21] - pose["flat"][0],
                                                                           axis=1) for n, p in pose.items()}
    pinch_gap = {n: np.linalg.norm(p[16] - p[17]) for n, p in pose.items()}
    extended, curled = 0.9, 0.45  # fingertip-to-wrist distance / the flat hand's
    assert pinch_gap["pinch"] < 0.02 and pinch_gap["ok"] < 0.02 and pinch_gap["flat"] > 0.06
    assert pinch_gap["open"] > pinch_gap["flat"]  # the open hand spreads the thumb
    assert np.all(reach["fist"][1:] < curled)
    assert reach["point"][1] > extended and np.all(reach["point"][2:] < curled)
    assert np.all(reach["peace"][1:3] > extended) and np.all(reach["peace"][3:] < curled)
    assert reach["thumbs_up"][0] > 0.9 and np.all(reach["thumbs_up"][1:] < curled)
    # every preset is within the joint limits once the sampler applies it
    for name in names:
        back = axis_angle_to_anatomical(s.preset(name), layer.joint_frames.cpu().numpy().astype(np.float64))
        lim = layer.joint_limits.cpu().numpy()
        assert np.all(back >= lim[1:, :, 0] - 1e-6) and np.all(back <= lim[1:, :, 1] + 1e-6), name
