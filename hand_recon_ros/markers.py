"""RViz markers of reconstructed hands: numpy geometry and ``visualization_msgs/MarkerArray`` value trees.

Per hand (``id`` = the hand's track id, stable while it is tracked) four markers, one per namespace:

=============  =====================  ==================================================================
namespace      type                   content
=============  =====================  ==================================================================
``mesh``       ``TRIANGLE_LIST``      the mesh, opaque, coloured by handedness; triangles keep the hand
                                      model's outward counter-clockwise winding (3 points per face)
``joints``     ``SPHERE_LIST``        the 21 joints
``skeleton``   ``LINE_LIST``          the 20 bones of ``mano21`` (2 points per bone)
``label``      ``TEXT_VIEW_FACING``   ``#<id> <L|R> <score>`` above the wrist
=============  =====================  ==================================================================

Markers are updated in place (``ADD`` on the same namespace / id), never cleared and re-added, so RViz does
not blink; the markers of a hand that vanished are removed with explicit ``DELETE`` actions (:class:`MarkerBook`).
Coordinates are those of the message header's frame (the camera optical frame), metres.

The arrays are written straight into CDR by :func:`hand_recon_ros.cdr.serialize` (``serialize_marker_array``),
about a hundred times faster than building ``geometry_msgs/Point`` objects for two meshes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hand_recon_core.data.sample import HANDEDNESS_NAMES, LEFT, RIGHT
from hand_recon_core.hand_model.joint_orders import bone_pairs
from hand_recon_core.render.overlay import PALETTE

__all__ = [
    "HAND_COLORS",
    "MARKER_NAMESPACES",
    "MarkerBook",
    "MarkerHand",
    "build_marker_array",
    "delete_all_markers",
    "mesh_triangles",
    "serialize_marker_array",
    "skeleton_segments",
]

#: RGB in [0, 1] per handedness (the overlay uses the same colours).
HAND_COLORS: dict[int, tuple[float, float, float]] = {RIGHT: PALETTE[0], LEFT: PALETTE[1]}
#: Namespaces of the per-hand markers, in publication order.
MARKER_NAMESPACES: tuple[str, ...] = ("mesh", "joints", "skeleton", "label")

# visualization_msgs/Marker constants (the values are fixed by the message definition)
_LINE_LIST, _SPHERE_LIST, _TEXT_VIEW_FACING, _TRIANGLE_LIST = 5, 7, 9, 11
_ADD, _DELETE, _DELETEALL = 0, 2, 3

#: Sizes in metres: joint sphere diameter, bone line width, label text height, label offset above the wrist.
JOINT_DIAMETER = 0.008
BONE_WIDTH = 0.004
TEXT_HEIGHT = 0.02
LABEL_OFFSET = np.array([0.0, -0.03, 0.0])  # optical frame: -y is up in the image


@dataclass
class MarkerHand:
    """What the markers of one hand need.

    Attributes:
        id: track id (marker id in every namespace).
        handedness: ``RIGHT`` (0) or ``LEFT`` (1).
        score: detection confidence in [0, 1].
        vertices: (V, 3) float metres, header frame.
        faces: (F, 3) int triangles (outward counter-clockwise), indices into ``vertices``.
        joints: (21, 3) float metres, header frame, ``mano21`` order.
    """

    id: int
    handedness: int
    score: float
    vertices: np.ndarray
    faces: np.ndarray
    joints: np.ndarray


def mesh_triangles(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """The TRIANGLE_LIST points of a mesh.

    Args:
        vertices: (V, 3) float, metres.
        faces: (F, 3) int, winding kept as given.

    Returns:
        (3F, 3) float64: the three corners of each face in turn.
    """
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    return v[f].reshape(-1, 3)


def skeleton_segments(joints: np.ndarray, order: str = "mano21") -> np.ndarray:
    """The LINE_LIST points of the skeleton.

    Args:
        joints: (21, 3) float, metres, in ``order``.
        order: joint order name (bones from :func:`hand_recon_core.hand_model.joint_orders.bone_pairs`).

    Returns:
        (2B, 3) float64: parent then child joint of each bone (B = 20).
    """
    pairs = np.asarray(bone_pairs(order), dtype=np.int64)
    return np.asarray(joints, dtype=np.float64).reshape(-1, 3)[pairs].reshape(-1, 3)


class MarkerBook:
    """Remembers which hand ids have markers in RViz, to delete those of vanished hands exactly once."""

    def __init__(self) -> None:
        self.shown: set[int] = set()

    def update(self, ids: Sequence[int]) -> list[int]:
        """Record the ids shown now.

        Args:
            ids: ids of this frame's hands.

        Returns:
            The ids shown before but not now (their markers must be deleted), sorted.
        """
        now = {int(i) for i in ids}
        gone = sorted(self.shown - now)
        self.shown = now
        return gone

    def clear(self) -> None:
        """Forget every id (after a ``DELETEALL``)."""
        self.shown.clear()


def _color(rgb: Sequence[float], alpha: float = 1.0, scale: float = 1.0) -> dict:
    r, g, b = (float(np.clip(c * scale, 0.0, 1.0)) for c in rgb)
    return {"r": r, "g": g, "b": b, "a": float(alpha)}


def _marker(header, ns: str, marker_id: int, kind: int, **fields) -> dict:
    m = {"header": header, "ns": ns, "id": int(marker_id), "type": kind, "action": _ADD,
         "pose": {"orientation": {"w": 1.0}}}
    m.update(fields)
    return m


def build_marker_array(hands: Sequence[MarkerHand], header, book: MarkerBook | None = None,
                       order: str = "mano21") -> dict:
    """The MarkerArray of one frame, as a value tree for :func:`hand_recon_ros.cdr.serialize`.

    Args:
        hands: the hands to draw.
        header: ``std_msgs/Header`` (or dict) copied into every marker (the input image's).
        book: when given, markers of ids shown before but absent now get ``DELETE`` actions (and the book is
            updated).
        order: joint order of ``MarkerHand.joints``.

    Returns:
        ``{"markers": [...]}`` (four ADD markers per hand, then the DELETE markers).
    """
    markers = []
    for h in hands:
        rgb = HAND_COLORS.get(int(h.handedness), PALETTE[2])
        side = HANDEDNESS_NAMES[int(h.handedness)][0].upper() if int(h.handedness) in (RIGHT, LEFT) else "?"
        joints = np.asarray(h.joints, dtype=np.float64).reshape(-1, 3)
        markers.append(_marker(header, "mesh", h.id, _TRIANGLE_LIST, scale={"x": 1.0, "y": 1.0, "z": 1.0},
                               color=_color(rgb), points=mesh_triangles(h.vertices, h.faces)))
        markers.append(_marker(header, "joints", h.id, _SPHERE_LIST,
                               scale={"x": JOINT_DIAMETER, "y": JOINT_DIAMETER, "z": JOINT_DIAMETER},
                               color=_color(rgb, scale=0.6), points=joints))
        markers.append(_marker(header, "skeleton", h.id, _LINE_LIST, scale={"x": BONE_WIDTH},
                               color=_color((1.0, 1.0, 1.0)), points=skeleton_segments(joints, order)))
        x, y, z = (joints[0] + LABEL_OFFSET).tolist()
        markers.append(_marker(header, "label", h.id, _TEXT_VIEW_FACING, scale={"z": TEXT_HEIGHT},
                               color=_color((1.0, 1.0, 1.0)),
                               pose={"position": {"x": x, "y": y, "z": z}, "orientation": {"w": 1.0}},
                               text=f"#{h.id} {side} {float(h.score):.2f}"))
    if book is not None:
        for gone in book.update([h.id for h in hands]):
            for ns in MARKER_NAMESPACES:
                markers.append({"header": header, "ns": ns, "id": int(gone), "action": _DELETE})
    return {"markers": markers}


def delete_all_markers(header) -> dict:
    """A MarkerArray value tree removing every marker of this publisher (used on deactivate)."""
    return {"markers": [{"header": header, "action": _DELETEALL}]}


def serialize_marker_array(value: dict) -> bytes:
    """CDR bytes of a MarkerArray value tree (publish them with ``Publisher.publish``)."""
    from visualization_msgs.msg import MarkerArray

    from hand_recon_ros.cdr import serialize

    return serialize(MarkerArray, value)
