"""TF frames of a hand: names, the wrist pose, and joint frames that compose back to the camera-frame joints."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_ros.tf_frames import joint_frame_name, quaternion_to_matrix, wrist_frame_name

pytestmark = pytest.mark.ros


def test_frame_names():
    assert wrist_frame_name("hand_", 3, LEFT) == "hand_3_left_wrist"
    assert wrist_frame_name("cam1_", 0, RIGHT) == "cam1_0_right_wrist"
    assert joint_frame_name("hand_", 3, RIGHT, 16) == "hand_3_right_thumb_tip"
    assert joint_frame_name("hand_", 3, RIGHT, 1) == "hand_3_right_index_mcp"


def test_quaternion_to_matrix():
    q = Rotation.from_rotvec([0.3, -0.2, 1.0]).as_quat()
    np.testing.assert_allclose(quaternion_to_matrix(2.0 * q), Rotation.from_quat(q).as_matrix(), atol=1e-12)
    np.testing.assert_array_equal(quaternion_to_matrix(np.zeros(4)), np.eye(3))


def test_joint_frames_compose_back_to_the_joints(ros_available):
    from std_msgs.msg import Header

    from hand_recon_ros.conversions import HandArrays, axis_angle_to_quaternion
    from hand_recon_ros.tf_frames import hand_transforms

    rng = np.random.default_rng(4)
    joints = rng.normal([0, 0, 0.5], 0.05, size=(21, 3)).astype(np.float32)
    q = axis_angle_to_quaternion(np.array([0.4, -1.1, 0.2]))
    hand = HandArrays(id=5, handedness=LEFT, score=0.9, bbox=np.zeros(4), keypoints_2d=np.zeros((21, 2)),
                      joints=joints, vertices=np.zeros((4, 3)), wrist_position=joints[0], wrist_orientation=q)
    header = Header(frame_id="camera_color_optical_frame")
    header.stamp.sec = 42
    tfs = hand_transforms(hand, header, "hand_", joint_frames=True)
    assert len(tfs) == 21
    wrist = tfs[0]
    assert wrist.header.frame_id == "camera_color_optical_frame" and wrist.child_frame_id == "hand_5_left_wrist"
    assert wrist.header.stamp.sec == 42
    r = wrist.transform.rotation
    R = quaternion_to_matrix(np.array([r.x, r.y, r.z, r.w]))
    p = np.array([wrist.transform.translation.x, wrist.transform.translation.y, wrist.transform.translation.z])
    np.testing.assert_allclose(p, joints[0], atol=1e-6)
    for j, t in enumerate(tfs[1:], start=1):
        assert t.header.frame_id == "hand_5_left_wrist" and t.transform.rotation.w == 1.0
        local = np.array([t.transform.translation.x, t.transform.translation.y, t.transform.translation.z])
        np.testing.assert_allclose(p + R @ local, joints[j], atol=1e-6)
