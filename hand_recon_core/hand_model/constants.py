"""Hand-model constants: the MANO kinematic tree, finger chains, fingertip conventions, mirroring.

Everything here is structure (public conventions), never model data. Import these names; do not retype them.

Kinematic joints (MANO native order, 16 joints)::

    0 wrist
    1 index1   2 index2   3 index3      (MCP, PIP, DIP)
    4 middle1  5 middle2  6 middle3
    7 pinky1   8 pinky2   9 pinky3
    10 ring1   11 ring2   12 ring3
    13 thumb1  14 thumb2  15 thumb3     (CMC, MCP, IP)

The hand layer outputs 21 joints, the project's canonical ``mano21`` order: the 16 kinematic joints followed by
the five fingertips thumb, index, middle, ring, pinky (see :mod:`hand_recon_core.hand_model.joint_orders`).

Fingertip vertices: a fingertip "joint" is a mesh vertex, and which vertex is a convention. For the official
MANO mesh this project uses the manopth/manotorch convention (right hand: 745, 317, 444, 556, 673 for thumb,
index, middle, ring, pinky). Other libraries use other vertices (smplx: 744, 320, 443, 554, 671; InterWild uses
445 for the middle tip), so joint errors computed with different conventions are NOT comparable. The open hand
model defines its own tip vertices (stored in its asset). Vertex ids are the same for the left MANO file.
"""

from __future__ import annotations

import numpy as np

#: Number of kinematic joints (wrist + 15 finger joints).
NUM_KINEMATIC_JOINTS = 16
#: Number of output joints (16 kinematic + 5 fingertips).
NUM_JOINTS = 21
#: Number of fingertips.
NUM_TIPS = 5
#: Number of shape coefficients (betas).
NUM_BETAS = 10
#: Axis-angle size of the finger pose (15 joints x 3).
NUM_HAND_POSE = 45
#: Pose-corrective basis size (15 joints x 9 entries of R - I).
NUM_POSE_BASIS = 135

#: MANO native kinematic tree: parent of each of the 16 joints (-1 for the wrist root).
MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)

#: Names of the 16 kinematic joints in MANO native order.
KINEMATIC_JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "index_mcp", "index_pip", "index_dip",
    "middle_mcp", "middle_pip", "middle_dip",
    "pinky_mcp", "pinky_pip", "pinky_dip",
    "ring_mcp", "ring_pip", "ring_dip",
    "thumb_cmc", "thumb_mcp", "thumb_ip",
)  # fmt: skip

#: Fingers in the order used for fingertips and anatomical tables.
FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")

#: Kinematic joints of each finger, base to tip (MANO native indices).
FINGER_JOINTS: dict[str, tuple[int, int, int]] = {
    "thumb": (13, 14, 15),
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "ring": (10, 11, 12),
    "pinky": (7, 8, 9),
}

#: Parent kinematic joint of each fingertip (thumb, index, middle, ring, pinky).
TIP_PARENTS: tuple[int, ...] = tuple(FINGER_JOINTS[f][2] for f in FINGER_NAMES)

#: Name of the fingertip convention used for official MANO meshes.
MANO_TIP_CONVENTION = "manopth"
#: Official MANO fingertip vertex ids (thumb, index, middle, ring, pinky), manopth/manotorch convention.
MANO_TIP_VERTEX_IDS: tuple[int, ...] = (745, 317, 444, 556, 673)
#: Number of vertices of the official MANO mesh.
MANO_NUM_VERTICES = 778

#: Hand sides.
SIDES: tuple[str, str] = ("right", "left")

#: Reflection used to turn a right hand into a left hand (and back): x -> -x, in the hand-model frame.
MIRROR = np.diag([-1.0, 1.0, 1.0])
#: Per-component sign applied to an axis-angle vector by mirroring (M R M with M = MIRROR): (x, -y, -z).
AXIS_ANGLE_MIRROR_SIGNS = np.array([1.0, -1.0, -1.0])


def check_side(side: str) -> str:
    """Validate a hand side name.

    Args:
        side: ``"right"`` or ``"left"``.

    Returns:
        The side, unchanged.

    Raises:
        ValueError: for any other value.
    """
    if side not in SIDES:
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    return side


def depth_levels(parents: tuple[int, ...] | list[int] | np.ndarray) -> list[list[int]]:
    """Group kinematic joints by tree depth (root first), so a chain can be evaluated level by level.

    Args:
        parents: (J,) parent index per joint, -1 for the root; parents must precede children.

    Returns:
        List of lists of joint indices: level 0 holds the root(s), level k the joints at depth k.
    """
    depth: list[int] = []
    for j, p in enumerate(int(x) for x in parents):
        if p >= j:
            raise ValueError("parents must precede their children")
        depth.append(0 if p < 0 else depth[p] + 1)
    levels: list[list[int]] = [[] for _ in range(max(depth) + 1)]
    for j, d in enumerate(depth):
        levels[d].append(j)
    return levels
