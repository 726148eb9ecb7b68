"""TF frames of reconstructed hands (REP-103 / REP-105 names and conventions).

* ``<prefix><id>_<left|right>_wrist``: child of the image's optical frame (the header's ``frame_id``) at the wrist
  joint, rotated by the hand's global orientation (``HandMesh.wrist_pose``: the hand model's canonical axes;
  identity when the method regresses no hand-model parameters).
* with per-joint frames on, ``<prefix><id>_<side>_<joint>`` for the 20 other ``mano21`` joints (names from
  :data:`hand_recon_core.hand_model.joint_orders.JOINT_NAMES`, e.g. ``hand_3_left_index_tip``): children of
  the wrist frame, translated to the joint; they carry positions only (their axes are the wrist frame's).
"""

from __future__ import annotations

import numpy as np

from hand_recon_core.data.sample import HANDEDNESS_NAMES
from hand_recon_core.hand_model.joint_orders import JOINT_NAMES

__all__ = ["hand_transforms", "joint_frame_name", "quaternion_to_matrix", "wrist_frame_name"]


def wrist_frame_name(prefix: str, hand_id: int, handedness: int) -> str:
    """``<prefix><id>_<left|right>_wrist``."""
    return f"{prefix}{int(hand_id)}_{HANDEDNESS_NAMES[int(handedness)]}_wrist"


def joint_frame_name(prefix: str, hand_id: int, handedness: int, joint: int, order: str = "mano21") -> str:
    """``<prefix><id>_<left|right>_<joint name>`` of joint index ``joint`` in ``order``."""
    return f"{prefix}{int(hand_id)}_{HANDEDNESS_NAMES[int(handedness)]}_{JOINT_NAMES[order][joint]}"


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix of a unit quaternion ``(x, y, z, w)`` (normalised first)."""
    from scipy.spatial.transform import Rotation

    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-12:
        return np.eye(3)
    return Rotation.from_quat(q / n).as_matrix()


def hand_transforms(hand, header, prefix: str = "hand_", joint_frames: bool = False) -> list:
    """``geometry_msgs/TransformStamped`` of one hand.

    Args:
        hand: :class:`hand_recon_ros.conversions.HandArrays` (``id``, ``handedness``, ``joints`` (21, 3) metres,
            ``wrist_position`` (3,) metres, ``wrist_orientation`` (4,) x, y, z, w; camera optical frame).
        header: ``std_msgs/Header`` of the input image (stamp and parent frame).
        prefix: frame-name prefix.
        joint_frames: also the 20 joint frames.

    Returns:
        The wrist transform, then (with ``joint_frames``) one per other joint.
    """
    from geometry_msgs.msg import TransformStamped

    wrist_name = wrist_frame_name(prefix, hand.id, hand.handedness)
    p = np.asarray(hand.wrist_position, dtype=np.float64).reshape(3)
    q = np.asarray(hand.wrist_orientation, dtype=np.float64).reshape(4)
    n = np.linalg.norm(q)
    q = q / n if np.isfinite(n) and n > 1e-12 else np.array([0.0, 0.0, 0.0, 1.0])
    t = TransformStamped()
    t.header.stamp = header.stamp
    t.header.frame_id = header.frame_id
    t.child_frame_id = wrist_name
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = map(float, p)
    (t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z,
     t.transform.rotation.w) = map(float, q)
    out = [t]
    if joint_frames:
        joints = np.asarray(hand.joints, dtype=np.float64).reshape(-1, 3)
        local = (joints - p) @ quaternion_to_matrix(q)  # R^T (x - p) for every row
        for j in range(1, joints.shape[0]):
            tj = TransformStamped()
            tj.header.stamp = header.stamp
            tj.header.frame_id = wrist_name
            tj.child_frame_id = joint_frame_name(prefix, hand.id, hand.handedness, j)
            tj.transform.translation.x, tj.transform.translation.y, tj.transform.translation.z = map(
                float, local[j])
            tj.transform.rotation.w = 1.0
            out.append(tj)
    return out
