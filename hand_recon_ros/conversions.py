"""numpy <-> ROS message conversions for hand_recon_ros messages (no model logic here).

Flat ``float32[]`` fields are filled from numpy with a single copy (``array.array('f', bytes)``), and read back
without a copy (``np.frombuffer`` over the field's buffer). See ``msg/HandMesh.msg`` for frames and units.
"""

from __future__ import annotations

import array
from dataclasses import dataclass, field

import numpy as np

from hand_recon_ros.msg import HandMesh, HandMeshArray


def to_float32_field(values: np.ndarray | list[float] | None) -> array.array:
    """Return ``values`` flattened as an ``array.array('f')`` suitable for a ``float32[]`` message field.

    Args:
        values: any-shape array-like of numbers (or None for an empty field).

    Returns:
        A row-major flattened float32 ``array.array`` (one copy of the data).
    """
    out = array.array("f")
    if values is None:
        return out
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).reshape(-1).view(np.uint8).data)
    return out


def from_float32_field(values, columns: int | None = None) -> np.ndarray:
    """View a ``float32[]`` message field as a numpy array, reshaped to (-1, columns) when given.

    Zero-copy for ``array.array('f')`` fields; the result is read-only when it shares the message's memory.

    Raises:
        ValueError: when the length is not a multiple of ``columns``.
    """
    arr = np.frombuffer(values, dtype=np.float32) if isinstance(values, array.array) else np.asarray(
        values, dtype=np.float32)
    if columns is None:
        return arr
    if arr.size % columns:
        raise ValueError(f"float32[] field of length {arr.size} is not a multiple of {columns} columns")
    return arr.reshape(-1, columns)


@dataclass
class HandArrays:
    """One hand as numpy arrays; the ROS-free mirror of ``HandMesh`` (same frames and units).

    Attributes:
        id: track id.
        handedness: 0 right, 1 left (``HandMesh.RIGHT`` / ``HandMesh.LEFT``).
        score: detection confidence in [0, 1].
        bbox: (4,) [u_min, v_min, u_max, v_max] pixels.
        keypoints_2d: (21, 2) pixels.
        joints: (21, 3) metres, camera optical frame.
        vertices: (V, 3) metres, camera optical frame.
        wrist_position: (3,) metres; wrist_orientation: (4,) quaternion x, y, z, w.
        global_orient: (3,) axis-angle radians; hand_pose: (45,); betas: (10,); transl: (3,) metres.
    """

    id: int
    handedness: int
    score: float
    bbox: np.ndarray
    keypoints_2d: np.ndarray
    joints: np.ndarray
    vertices: np.ndarray
    wrist_position: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    wrist_orientation: np.ndarray = field(default_factory=lambda: np.array([0, 0, 0, 1], np.float32))
    handedness_score: float = 1.0
    keypoints_2d_score: np.ndarray | None = None
    global_orient: np.ndarray | None = None
    hand_pose: np.ndarray | None = None
    betas: np.ndarray | None = None
    transl: np.ndarray | None = None
    hand_model: str = ""
    joint_order: str = "mano21"
    refined: bool = False
    partner_id: int = -1


def f32(value: float) -> float:
    """Round a Python float to float32 precision, as a ``float32`` message field will carry it."""
    return float(np.float32(value))


def hand_to_msg(hand: HandArrays, header) -> HandMesh:
    """Build a ``HandMesh`` from :class:`HandArrays`, stamped with ``header`` (copied from the input image)."""
    msg = HandMesh()
    msg.header = header
    msg.id = int(hand.id)
    msg.handedness = int(hand.handedness)
    msg.handedness_score = f32(hand.handedness_score)
    msg.score = f32(hand.score)
    msg.bbox = np.asarray(hand.bbox, dtype=np.float32).reshape(4)
    msg.joint_order = hand.joint_order
    msg.keypoints_2d = to_float32_field(hand.keypoints_2d)
    msg.keypoints_2d_score = to_float32_field(hand.keypoints_2d_score)
    msg.joints = to_float32_field(hand.joints)
    msg.vertices = to_float32_field(hand.vertices)
    p, q = np.asarray(hand.wrist_position, np.float64), np.asarray(hand.wrist_orientation, np.float64)
    msg.wrist_pose.position.x, msg.wrist_pose.position.y, msg.wrist_pose.position.z = map(float, p)
    (msg.wrist_pose.orientation.x, msg.wrist_pose.orientation.y, msg.wrist_pose.orientation.z,
     msg.wrist_pose.orientation.w) = map(float, q)
    msg.hand_model = hand.hand_model
    msg.global_orient = to_float32_field(hand.global_orient)
    msg.hand_pose = to_float32_field(hand.hand_pose)
    msg.betas = to_float32_field(hand.betas)
    msg.transl = np.zeros(3, np.float32) if hand.transl is None else np.asarray(hand.transl, np.float32)
    msg.refined = bool(hand.refined)
    msg.partner_id = int(hand.partner_id)
    return msg


def msg_to_hand(msg: HandMesh) -> HandArrays:
    """Inverse of :func:`hand_to_msg` (arrays share the message's memory where possible)."""
    pose = msg.wrist_pose
    return HandArrays(
        id=msg.id,
        handedness=msg.handedness,
        score=msg.score,
        bbox=np.asarray(msg.bbox, np.float32),
        keypoints_2d=from_float32_field(msg.keypoints_2d, 2),
        joints=from_float32_field(msg.joints, 3),
        vertices=from_float32_field(msg.vertices, 3),
        wrist_position=np.array([pose.position.x, pose.position.y, pose.position.z], np.float32),
        wrist_orientation=np.array(
            [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w], np.float32),
        handedness_score=msg.handedness_score,
        keypoints_2d_score=from_float32_field(msg.keypoints_2d_score),
        global_orient=from_float32_field(msg.global_orient),
        hand_pose=from_float32_field(msg.hand_pose),
        betas=from_float32_field(msg.betas),
        transl=np.asarray(msg.transl, np.float32),
        hand_model=msg.hand_model,
        joint_order=msg.joint_order,
        refined=msg.refined,
        partner_id=msg.partner_id,
    )


def hands_to_array_msg(hands: list[HandArrays], header, image_size: tuple[int, int] = (0, 0),
                       inference_time: float = 0.0) -> HandMeshArray:
    """Build a ``HandMeshArray``; ``image_size`` is (width, height) in pixels."""
    out = HandMeshArray()
    out.header = header
    out.hands = [hand_to_msg(h, header) for h in hands]
    out.image_width, out.image_height = int(image_size[0]), int(image_size[1])
    out.inference_time = f32(inference_time)
    return out


def random_hands(rng: np.random.Generator, n_hands: int = 2, n_vertices: int = 778) -> list[HandArrays]:
    """Random but well-formed hands (for smoke runs, tests and message benchmarks; not a model output)."""
    hands = []
    for i in range(n_hands):
        verts = rng.normal([0.0, 0.0, 0.5], 0.03, size=(n_vertices, 3)).astype(np.float32)
        joints = rng.normal([0.0, 0.0, 0.5], 0.03, size=(21, 3)).astype(np.float32)
        kp = rng.uniform(0, 480, size=(21, 2)).astype(np.float32)
        hands.append(HandArrays(
            id=i + 1, handedness=i % 2, score=float(rng.uniform(0.5, 1.0)),
            bbox=np.concatenate([kp.min(0), kp.max(0)]), keypoints_2d=kp, joints=joints, vertices=verts,
            wrist_position=joints[0].copy(), keypoints_2d_score=rng.uniform(0, 1, 21).astype(np.float32),
            global_orient=rng.normal(0, 0.5, 3).astype(np.float32),
            hand_pose=rng.normal(0, 0.3, 45).astype(np.float32),
            betas=rng.normal(0, 1, 10).astype(np.float32), transl=joints[0].copy(),
            hand_model="random-test", refined=bool(i % 2), partner_id=-1 if n_hands < 2 else (i ^ 1) + 1,
        ))
    return hands


def axis_angle_to_quaternion(aa: np.ndarray) -> np.ndarray:
    """(4,) float32 unit quaternion ``(x, y, z, w)``, ``w >= 0``, of an axis-angle vector (3,) in radians.

    ``q = (sin(theta / 2) * axis, cos(theta / 2))`` with ``theta = |aa|``; non-finite input gives the identity.
    """
    aa = np.asarray(aa, dtype=np.float64).reshape(3)
    theta = float(np.sqrt(aa @ aa))
    if not np.isfinite(theta):
        return np.array([0.0, 0.0, 0.0, 1.0], np.float32)
    # sin(theta / 2) / theta, by its Taylor series near 0 (exact to float64 there)
    k = 0.5 - theta * theta / 48.0 if theta < 1e-4 else np.sin(0.5 * theta) / theta
    q = np.array([aa[0] * k, aa[1] * k, aa[2] * k, np.cos(0.5 * theta)])
    if q[3] < 0:  # theta > pi: the same rotation with w >= 0
        q = -q
    return q.astype(np.float32)


def result_to_hand(result, hand_model_id: str, hand_id: int | None = None, partner_id: int = -1) -> HandArrays:
    """A :class:`hand_recon_core.inference.frame.HandResult` as :class:`HandArrays` (same frames and units).

    Args:
        result: the pipeline's hand (camera optical frame, metres; pixels; ``mano21`` joints).
        hand_model_id: ``HandFrame.hand_model_id`` (stored in ``HandMesh.hand_model``).
        hand_id: the published id (default: ``result.track_id``, or ``result.slot`` when untracked).
        partner_id: published id of the interacting partner (-1: none).

    Returns:
        The hand; the wrist pose is the wrist joint and the global orientation ``hand_pose[:3]`` (identity when
        the method regresses no hand-model parameters); ``hand_pose`` holds the 45 finger values only.
    """
    if hand_id is None:
        hand_id = result.track_id if result.track_id >= 0 else result.slot
    joints = np.asarray(result.joints_3d, np.float32).reshape(-1, 3)
    pose = None if result.hand_pose is None else np.asarray(result.hand_pose, np.float32).reshape(-1)
    return HandArrays(
        id=int(hand_id),
        handedness=int(result.handedness),
        score=float(result.score),
        bbox=np.asarray(result.bbox, np.float32).reshape(4),
        keypoints_2d=np.asarray(result.keypoints_2d, np.float32).reshape(-1, 2),
        joints=joints,
        vertices=np.asarray(result.vertices_3d, np.float32).reshape(-1, 3),
        wrist_position=joints[0].copy(),
        wrist_orientation=(np.array([0, 0, 0, 1], np.float32) if pose is None
                           else axis_angle_to_quaternion(pose[:3])),
        handedness_score=float(result.handedness_score),
        keypoints_2d_score=result.keypoints_2d_score,
        global_orient=None if pose is None else pose[:3],
        hand_pose=None if pose is None else pose[3:],
        betas=result.betas,
        transl=result.transl,
        hand_model=str(hand_model_id),
        refined=bool(result.refined),
        partner_id=int(partner_id),
    )
