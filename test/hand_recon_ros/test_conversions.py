"""HandMesh / HandMeshArray: numpy conversions and a real rclpy publish/receive round trip."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros


def _assert_hands_equal(a, b) -> None:
    for name in ("id", "handedness", "hand_model", "joint_order", "refined", "partner_id"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("score", "handedness_score"):
        assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-6), name
    for name in ("bbox", "keypoints_2d", "keypoints_2d_score", "joints", "vertices", "wrist_position",
                 "wrist_orientation", "global_orient", "hand_pose", "betas", "transl"):
        expected = np.asarray(getattr(a, name), np.float32)
        got = np.asarray(getattr(b, name))
        assert got.shape == expected.shape, name
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_hand_numpy_roundtrip_is_exact(ros_available):
    from std_msgs.msg import Header

    from hand_recon_ros.conversions import hand_to_msg, msg_to_hand, random_hands

    hands = random_hands(np.random.default_rng(3), 2, 778)
    for hand in hands:
        msg = hand_to_msg(hand, Header(frame_id="cam"))
        assert len(msg.vertices) == 778 * 3 and len(msg.joints) == 21 * 3
        _assert_hands_equal(hand, msg_to_hand(msg))


def test_from_float32_field_rejects_ragged_lengths(ros_available):
    import array

    from hand_recon_ros.conversions import from_float32_field

    assert from_float32_field(array.array("f", [1, 2, 3, 4, 5, 6]), 3).shape == (2, 3)
    with pytest.raises(ValueError, match="multiple of 3"):
        from_float32_field(array.array("f", [1, 2, 3, 4]), 3)


def test_published_hand_mesh_array_is_received_equal_field_by_field(ros_context):
    from hand_recon_ros.conversions import msg_to_hand
    from hand_recon_ros.smoke import run_smoke

    sent, received = run_smoke(n_messages=3, timeout_s=20.0, seed=7, context=ros_context)
    assert len(received) == len(sent) == 3
    for s, r in zip(sent, received):
        assert r.header.frame_id == s.header.frame_id == "camera_color_optical_frame"
        assert (r.header.stamp.sec, r.header.stamp.nanosec) == (s.header.stamp.sec, s.header.stamp.nanosec)
        assert (r.image_width, r.image_height) == (640, 480)
        assert r.inference_time == pytest.approx(s.inference_time)
        assert len(r.hands) == len(s.hands) == 2
        for hs, hr in zip(s.hands, r.hands):
            assert hr.header == hs.header
            _assert_hands_equal(msg_to_hand(hs), msg_to_hand(hr))
        assert r == s  # the generated __eq__ agrees


def test_axis_angle_to_quaternion_matches_scipy(ros_available):
    from scipy.spatial.transform import Rotation

    from hand_recon_ros.conversions import axis_angle_to_quaternion

    rng = np.random.default_rng(5)
    for aa in [*rng.normal(size=(50, 3)) * 2.0, np.zeros(3), np.array([1e-7, 0.0, 0.0]), np.array([0.0, 0.0, 3.5])]:
        expected = Rotation.from_rotvec(aa).as_quat()
        expected = -expected if expected[3] < 0 else expected
        np.testing.assert_allclose(axis_angle_to_quaternion(aa), expected, atol=1e-6)
    np.testing.assert_array_equal(axis_angle_to_quaternion(np.array([np.nan, 0, 0])), [0, 0, 0, 1])


def test_result_to_hand_maps_every_field(ros_available):
    from hand_recon_core.inference.frame import LEFT, HandResult
    from hand_recon_ros.conversions import axis_angle_to_quaternion, result_to_hand

    rng = np.random.default_rng(6)
    pose = rng.normal(size=48).astype(np.float32)
    r = HandResult(slot=1, handedness=LEFT, score=0.75, bbox=np.array([1, 2, 3, 4], np.float32),
                   keypoints_2d=rng.normal(size=(21, 2)).astype(np.float32),
                   joints_3d=rng.normal(size=(21, 3)).astype(np.float32),
                   vertices_3d=rng.normal(size=(806, 3)).astype(np.float32), hand_pose=pose,
                   betas=np.ones(10, np.float32), transl=np.zeros(3, np.float32), handedness_score=0.5,
                   refined=True, partner_slot=0, track_id=12)
    h = result_to_hand(r, "open-v1-right", partner_id=11)
    assert (h.id, h.handedness, h.score, h.partner_id, h.refined, h.hand_model) == (12, LEFT, 0.75, 11, True,
                                                                                     "open-v1-right")
    np.testing.assert_array_equal(h.wrist_position, r.joints_3d[0])
    np.testing.assert_array_equal(h.global_orient, pose[:3])
    np.testing.assert_array_equal(h.hand_pose, pose[3:])
    np.testing.assert_allclose(h.wrist_orientation, axis_angle_to_quaternion(pose[:3]))
    untracked = result_to_hand(HandResult(**{**r.__dict__, "track_id": -1, "hand_pose": None}), "m")
    assert untracked.id == 1 and untracked.global_orient is None
    np.testing.assert_array_equal(untracked.wrist_orientation, [0, 0, 0, 1])
