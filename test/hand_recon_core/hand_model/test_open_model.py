"""Tests of the open hand model asset and its generator."""

from __future__ import annotations

import numpy as np

from hand_recon_core.hand_model.constants import FINGER_JOINTS, FINGER_NAMES
from hand_recon_core.hand_model.loader import OPEN_MODEL_PATH
from hand_recon_core.hand_model.mesh_checks import (
    is_closed_manifold,
    non_manifold_vertices,
    self_intersections,
    signed_volume,
)
from hand_recon_core.hand_model.model_data import compare_npz, npz_bytes
from hand_recon_core.hand_model.open_model import anatomy
from hand_recon_core.hand_model.open_model.generate import generate_open_model
from hand_recon_core.hand_model.open_model.rigging import SHAPE_COMPONENTS
from hand_recon_core.hand_model.pose_sampler import MEAN_PRESET, anatomical_to_axis_angle, preset_angles


def test_asset_is_small_float32_and_regenerates_exactly():
    blob = OPEN_MODEL_PATH.read_bytes()
    assert len(blob) < 1_000_000
    data = generate_open_model()
    arrays = data.to_arrays()
    assert arrays["v_template"].dtype == np.float32
    verdict, detail = compare_npz(blob, arrays)
    assert verdict != "different", f"{detail}: regenerate with `hand-recon hand-model generate`"
    # the comparison itself: a changed float beyond rounding, or a changed integer array, is a difference
    moved = dict(arrays, v_template=arrays["v_template"] + np.float32(1e-4))
    assert compare_npz(blob, moved) == ("different", "v_template")
    faces = arrays["faces"].copy()
    faces[0, [0, 1]] = faces[0, [1, 0]]
    assert compare_npz(blob, dict(arrays, faces=faces)) == ("different", "faces")
    assert compare_npz(npz_bytes(arrays), arrays) == ("identical", "")


def test_mesh_is_closed_outward_and_free_of_self_intersections(open_right):
    v, f = open_right.v_template.astype(np.float64), open_right.faces
    assert 700 <= len(v) <= 900 and 1400 <= len(f) <= 1800
    assert is_closed_manifold(f)
    assert len(non_manifold_vertices(f, len(v))) == 0
    assert len(np.unique(f)) == len(v)
    assert signed_volume(v, f) > 0
    assert len(self_intersections(v, f)) == 0


def test_plausible_dimensions(open_right):
    v = open_right.v_template.astype(np.float64)
    joints = open_right.rest_joints()
    middle_tip = v[open_right.tip_vertex_ids[2]]
    assert 0.18 <= np.linalg.norm(middle_tip - joints[0]) <= 0.19  # hand length, wrist to middle tip
    palm = v[(open_right.part_labels == 0) & (v[:, 0] < -0.06)]
    assert 0.08 <= palm[:, 2].max() - palm[:, 2].min() <= 0.09  # palm breadth at the knuckles
    # Model frame: fingers along -x, palm facing -y, right thumb towards +z.
    assert np.all(v[open_right.tip_vertex_ids, 0] < -0.1)
    assert joints[14, 2] > joints[1, 2] > joints[4, 2] > joints[10, 2] > joints[7, 2]
    assert joints[13, 1] < 0


def test_rig_is_consistent(open_right):
    w = open_right.weights
    assert w.shape == (len(open_right.v_template), 16)
    assert w.min() >= 0 and np.allclose(w.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(open_right.part_labels, w.argmax(axis=1))
    assert set(np.unique(open_right.part_labels)) == set(range(16))
    reg = open_right.dense_regressor()
    assert reg.min() >= 0 and np.allclose(reg.sum(axis=1), 1.0, atol=1e-6)
    # Joints regressed from the template are the anatomical skeleton.
    skel = anatomy.build_skeleton()
    np.testing.assert_allclose(open_right.rest_joints(), anatomy.uwh_to_model(skel.joints), atol=2e-6)
    # Fingertip vertices are the skeleton's fingertips, on the distal parts.
    tips = open_right.v_template[open_right.tip_vertex_ids]
    np.testing.assert_allclose(tips, anatomy.uwh_to_model(skel.tips), atol=2e-6)
    for k, f in enumerate(FINGER_NAMES):
        assert open_right.part_labels[open_right.tip_vertex_ids[k]] == FINGER_JOINTS[f][2]


def test_shape_and_pose_bases(open_right):
    s = open_right.shapedirs.astype(np.float64)  # (V, 3, 10)
    flat = s.reshape(-1, 10)
    gram = flat.T @ flat
    off = gram - np.diag(np.diag(gram))
    assert np.abs(off).max() < 1e-4 * np.diag(gram).min()  # orthogonal components
    largest = np.linalg.norm(s, axis=1).max(axis=0)
    np.testing.assert_allclose(largest, [t * 1e-3 for _, t in SHAPE_COMPONENTS], rtol=1e-3)
    # Component 0 is a uniform scaling about the wrist.
    v = open_right.v_template.astype(np.float64)
    np.testing.assert_allclose(s[:, :, 0] / np.linalg.norm(s[:, :, 0]), v / np.linalg.norm(v), atol=1e-6)
    assert open_right.posedirs.shape == (len(v), 3, 135)
    assert 0 < np.abs(open_right.posedirs).max() < 0.01
    c = open_right.hands_components.astype(np.float64)
    np.testing.assert_allclose(c @ c.T, np.eye(45), atol=1e-5)
    frames = open_right.joint_frames.astype(np.float64)
    expect_mean = anatomical_to_axis_angle(preset_angles(MEAN_PRESET), frames)
    np.testing.assert_allclose(open_right.hands_mean, expect_mean, atol=1e-5)


def test_anatomical_frames_and_limits(open_right):
    frames = open_right.joint_frames.astype(np.float64)
    np.testing.assert_allclose(frames @ np.swapaxes(frames, 1, 2), np.broadcast_to(np.eye(3), (16, 3, 3)),
                               atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(frames), 1.0, atol=1e-6)
    # Finger flexion axis is +z, palmar direction -y (MANO axes).
    for j in (1, 2, 3, 4, 5, 6):
        assert frames[j, 2, 2] > 0.99 and frames[j, 1, 1] < -0.99
    lim = open_right.joint_limits
    assert np.all(lim[1:, :, 0] < lim[1:, :, 1])
    assert np.isclose(np.degrees(lim[2, 0, 1]), 105.0, atol=1e-3)  # index PIP flexion
