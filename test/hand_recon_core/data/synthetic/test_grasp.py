"""Hand-object grasps and scene placement helpers."""

from __future__ import annotations

import numpy as np

from hand_recon_core.data.synthetic.camera import backproject, intrinsics, project, random_rotation, rotation_about
from hand_recon_core.data.synthetic.grasp import grasp_object, inside_object
from hand_recon_core.data.synthetic.hands import pose_hands
from hand_recon_core.data.synthetic.scene import frame_points, projected_box, spheres_collide, truncation_shift


def test_inside_object_primitives():
    pts = np.array([[0.0, 0.0, 0.0], [0.011, 0.0, 0.0], [0.0, 0.0, 0.04]])
    eye, zero = np.eye(3), np.zeros(3)
    assert inside_object(pts, "sphere", np.full(3, 0.01), eye, zero).tolist() == [True, False, False]
    assert inside_object(pts, "sphere", np.full(3, 0.01), eye, zero, margin=0.002).tolist() == [True, True, False]
    cyl = np.array([0.02, 0.02, 0.06])
    assert inside_object(pts, "cylinder", cyl, eye, zero).tolist() == [True, True, False]
    box = np.array([0.02, 0.02, 0.1])
    assert inside_object(pts, "box", box, eye, zero).tolist() == [True, False, True]
    rot = rotation_about((0, 1, 0), np.pi / 2)  # box long axis along x now
    assert inside_object(pts, "box", box, rot, zero).tolist() == [True, True, False]


def test_grasp_keeps_the_hand_outside_and_closes_on_the_object(hand_models):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        betas = np.zeros(10, np.float32)
        for side in ("right", "left"):
            g = grasp_object(rng, hand_models, side, betas, clearance=0.001)
            pose = np.concatenate([np.zeros(3), g.finger_pose])[None]
            hand = pose_hands(hand_models, [side], pose, betas[None], np.zeros((1, 3)))[0]
            assert not inside_object(hand.vertices, g.kind, g.size, g.rotation, g.centre).any()
            assert np.all((g.closure >= 0) & (g.closure <= 1))
            # the object lies on the palm side (-y in the hand-model frame, both sides)
            assert g.centre[1] < hand.joints[0, 1]


def test_camera_projection_round_trip():
    K = intrinsics(300.0, (100, 120))
    assert K[0, 2] == 59.5 and K[1, 2] == 49.5  # centre of a 120 x 100 image, integer pixel centres
    pts = np.array([[0.1, -0.05, 0.5], [0.0, 0.0, 2.0]])
    uv = project(pts, K)
    assert np.allclose(uv[1], [59.5, 49.5])
    assert np.allclose(backproject(uv, pts[:, 2], K), pts)
    r = random_rotation(np.random.default_rng(0))
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)


def test_frame_points_hits_the_requested_box():
    K = intrinsics(500.0, (256, 256))
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(200, 3)) * [0.05, 0.08, 0.02]
    t = frame_points(pts, K, np.array([100.0, 140.0]), 120.0)
    box = projected_box(pts + t, K)
    assert abs(max(box[2] - box[0], box[3] - box[1]) - 120.0) < 1.0
    assert np.allclose(0.5 * (box[:2] + box[2:]), [100.0, 140.0], atol=1.0)


def test_truncation_shift_moves_part_of_the_box_outside():
    rng = np.random.default_rng(0)
    box = np.array([40.0, 50.0, 80.0, 110.0])
    for _ in range(8):
        du, dv = truncation_shift(box, (128, 128), rng)
        moved = box + [du, dv, du, dv]
        outside_w = max(0.0, -0.5 - moved[0]) + max(0.0, moved[2] - 127.5)
        outside_h = max(0.0, -0.5 - moved[1]) + max(0.0, moved[3] - 127.5)
        frac = outside_w / 40.0 if du else outside_h / 60.0
        assert 0.15 - 1e-9 <= frac <= 0.5 + 1e-9


def test_spheres_collide():
    others = [(np.zeros(3), 0.1)]
    assert spheres_collide(np.array([0.15, 0, 0]), 0.1, others)
    assert not spheres_collide(np.array([0.25, 0, 0]), 0.1, others)
