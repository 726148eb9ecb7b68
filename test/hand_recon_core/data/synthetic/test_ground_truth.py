"""Label computations of the synthetic engine on hand-built inputs."""

from __future__ import annotations

import numpy as np
import pytest

from hand_recon_core.data.synthetic.ground_truth import (
    DENSE_LEVELS,
    DEPTH_STEP,
    JOINT_PARTS,
    clipped_box,
    dense_correspondence,
    dequantize_depth,
    hand_center,
    instance_mask,
    interaction_pairs,
    joint_surface_offsets,
    joint_visibility,
    part_segmentation,
    quantize_depth,
)
from hand_recon_core.render.rasterizer import RenderResult


def _render(mesh_id, face_id, bary) -> RenderResult:
    mesh_id = np.asarray(mesh_id, np.int32)
    h, w = mesh_id.shape
    return RenderResult(image=np.zeros((h, w, 3), np.float32), depth=np.ones((h, w), np.float32),
                        mesh_id=mesh_id, face_id=np.asarray(face_id, np.int32),
                        bary=np.asarray(bary, np.float32).reshape(h, w, 3))


def test_joint_parts_are_kinematic_joints_then_distal_joints():
    assert JOINT_PARTS.tolist() == list(range(16)) + [15, 3, 6, 12, 9]


def test_instance_mask_keeps_hands_and_drops_objects():
    mesh_id = np.array([[-1, 0, 1, 2]])
    assert instance_mask(mesh_id, 2).tolist() == [[-1, 0, 1, -1]]
    assert instance_mask(mesh_id, 2).dtype == np.int16


def test_part_segmentation_uses_the_dominant_vertex_and_the_side():
    # one face (0, 1, 2); vertex parts 4, 7, 0; pixel 0 nearest vertex 1, pixel 1 nearest vertex 2
    faces = {"right": np.array([[0, 1, 2]]), "left": np.array([[0, 2, 1]])}
    parts = np.array([4, 7, 0])
    bary = [[0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.0, 0.0, 0.0]]
    r = _render([[0, 1, -1]], [[0, 0, -1]], bary)
    seg = part_segmentation(r, ["right", "left"], faces, parts)
    # pixel 0: right hand, vertex 1 -> part 7 -> class 8; pixel 1: left hand, corner 2 of (0, 2, 1) is vertex 1
    assert seg.tolist() == [[8, 1 + 16 + 7, 0]]


def test_dense_correspondence_interpolates_the_vertex_codes():
    faces = {"right": np.array([[0, 1, 2]])}
    code = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])
    r = _render([[0, -1]], [[0, -1]], [[0.5, 0.25, 0.25], [0, 0, 0]])
    q = dense_correspondence(r, ["right"], faces, code)
    expect = np.rint(np.array([0.25, 0.25, 0.375]) * DENSE_LEVELS)
    assert q.dtype == np.uint8
    assert q[0, 0].tolist() == expect.tolist()
    assert q[0, 1].tolist() == [0, 0, 0]


def test_depth_quantisation_round_trip_is_exact():
    d = np.array([[0.4321234, np.inf], [1.5, 0.0]], dtype=np.float32)
    q = quantize_depth(d)
    assert q.tolist() == [[4321, 0], [15000, 0]]
    back = dequantize_depth(q)
    assert back.dtype == np.float32 and abs(back[0, 0] - 0.4321) < 1e-7
    assert np.array_equal(quantize_depth(back), q)
    assert np.array_equal(dequantize_depth(quantize_depth(back)), back)
    assert DEPTH_STEP == 1e-4


def test_joint_surface_offsets_are_distances_to_the_part():
    joints = np.zeros((21, 3))
    vertices = np.array([[0.0, 0.0, 0.01], [0.0, 0.0, 0.03]])
    parts = np.array([0, 5])
    r = joint_surface_offsets(joints, vertices, parts)
    assert r[0] == pytest.approx(0.01) and r[5] == pytest.approx(0.03)
    assert r[1] == 0.0  # part without vertices


def test_joint_visibility_rule():
    h, w = 9, 9
    mask = np.full((h, w), -1, np.int16)
    depth = np.zeros((h, w), np.float32)
    mask[:, :5] = 0  # hand 0 on the left half at 0.50 m
    depth[:, :5] = 0.50
    mask[:, 5:] = 1  # hand 1 on the right half at 0.30 m (in front)
    depth[:, 5:] = 0.30
    uv = np.zeros((21, 2))
    z = np.full(21, 0.51)
    r = np.full(21, 0.005)
    uv[0] = (2, 4)  # inside hand 0, surface 0.50 >= 0.51 - 0.005 - 0.01: visible
    uv[1] = (7.4, 4)  # pixel 7: hand 1 covers the whole 3x3 window: occluded
    uv[2] = (5.2, 4)  # pixel 5: window columns 4..6, column 4 is hand 0: visible (window rule)
    uv[3] = (-0.6, 4)  # rounds outside the image: invisible
    uv[4] = (2, 4)
    z[4] = 0.6  # hand 0's surface 0.50 is 8.5 cm in front of the joint's part surface: self-occluded
    joints = np.concatenate([uv, z[:, None]], axis=1)
    vis = joint_visibility(uv, joints, r, 0, mask, depth)
    assert vis.dtype == np.float32
    assert vis[:5].tolist() == [1, 0, 1, 0, 0]
    assert joint_visibility(uv, joints, r, 0, mask, depth, window=0)[2] == 0  # pixel 5 alone is hand 1


def test_clipped_box_and_center():
    uv = np.array([[-5.0, 2.0], [10.0, 20.0], [4.0, 3.0]])
    box = clipped_box(uv, (16, 12))
    assert box.tolist() == [0.0, 2.0, 10.0, 15.0]
    kp = np.zeros((21, 2), np.float32)
    kp[:, 0] = np.arange(21)
    vis = np.zeros(21)
    vis[[2, 4]] = 1
    c, ok = hand_center(kp, vis, box, (16, 12))
    assert ok and c.tolist() == [3.0, 0.0]
    c, ok = hand_center(kp, np.zeros(21), box, (16, 12))  # none visible: keypoints inside the image (u <= 11.5)
    assert not ok and c[0] == pytest.approx(np.mean(np.arange(12)))
    far = kp + 100
    c, ok = hand_center(far, np.zeros(21), box, (16, 12))
    assert not ok and c.tolist() == [5.0, 8.5]


def test_interaction_pairs_uses_the_contact_distance():
    a = np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0]])
    b = a + [0.025, 0.0, 0.0]  # 1.5 cm from a
    c = a + [0.2, 0.0, 0.0]
    assert interaction_pairs([a, b, c]).tolist() == [[0, 1]]
    assert interaction_pairs([a, b, c], distance=0.01).shape == (0, 2)
    assert interaction_pairs([]).shape == (0, 2)
