"""RViz marker geometry (numpy) and the MarkerArray bytes as RViz / rclpy read them."""

from __future__ import annotations

import numpy as np
import pytest

from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.hand_model.joint_orders import bone_pairs
from hand_recon_ros.markers import (
    MARKER_NAMESPACES,
    MarkerBook,
    MarkerHand,
    build_marker_array,
    mesh_triangles,
    skeleton_segments,
)


@pytest.fixture(scope="module")
def hands():
    """Right and left open-model hands at rest, 0.5 m in front of the camera."""
    from hand_recon_core.data.synthetic.hands import get_hand_models

    models = get_hand_models("open")
    out = []
    for k, (side, code) in enumerate((("right", RIGHT), ("left", LEFT))):
        v = models.rest_vertices[side] + np.array([0.1 * (k - 0.5), 0.0, 0.5])
        joints = np.tile(v.mean(0), (21, 1)) + np.arange(21)[:, None] * 1e-3
        out.append(MarkerHand(id=7 + k, handedness=code, score=0.875, vertices=v, faces=models.faces[side],
                              joints=joints))
    return out


def _signed_volume(tri: np.ndarray) -> float:
    t = tri.reshape(-1, 3, 3)
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


def test_mesh_triangles_keep_the_outward_winding_of_both_hands(hands):
    for h in hands:
        tri = mesh_triangles(h.vertices, h.faces)
        assert tri.shape == (3 * len(h.faces), 3)
        np.testing.assert_array_equal(tri[3:6], h.vertices[h.faces[1]])
        # closed mesh, counter-clockwise from outside: positive enclosed volume (a hand is ~0.3-0.5 litre)
        assert 1e-4 < _signed_volume(tri) < 1e-3


def test_skeleton_segments_are_the_20_bones():
    joints = np.random.default_rng(0).normal(size=(21, 3))
    seg = skeleton_segments(joints)
    pairs = bone_pairs("mano21")
    assert seg.shape == (40, 3)
    for b, (p, c) in enumerate(pairs):
        np.testing.assert_array_equal(seg[2 * b], joints[p])
        np.testing.assert_array_equal(seg[2 * b + 1], joints[c])


def test_marker_book_deletes_vanished_ids_once():
    book = MarkerBook()
    assert book.update([1, 2]) == []
    assert book.update([2, 3]) == [1]
    assert book.update([2, 3]) == []
    assert book.update([]) == [2, 3]


def test_marker_array_tree_has_stable_namespaces_ids_and_deletes(hands):
    book = MarkerBook()
    header = {"frame_id": "cam", "stamp": {"sec": 3, "nanosec": 4}}
    first = build_marker_array(hands, header, book)["markers"]
    assert [(m["ns"], m["id"]) for m in first] == [(ns, h.id) for h in hands for ns in MARKER_NAMESPACES]
    assert all(m["action"] == 0 for m in first)
    second = build_marker_array(hands[:1], header, book)["markers"]
    deletes = [m for m in second if m["action"] == 2]
    assert [(m["ns"], m["id"]) for m in deletes] == [(ns, hands[1].id) for ns in MARKER_NAMESPACES]
    third = build_marker_array(hands[:1], header, book)["markers"]
    assert all(m["action"] == 0 for m in third)


@pytest.mark.ros
def test_serialised_marker_array_reads_back_as_rviz_markers(ros_available, hands):
    from rclpy.serialization import deserialize_message
    from std_msgs.msg import Header
    from visualization_msgs.msg import Marker, MarkerArray

    from hand_recon_ros.markers import delete_all_markers, serialize_marker_array

    header = Header(frame_id="camera_color_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 17, 99
    msg = deserialize_message(serialize_marker_array(build_marker_array(hands, header, MarkerBook())), MarkerArray)
    by_key = {(m.ns, m.id): m for m in msg.markers}
    mesh = by_key[("mesh", 7)]
    assert mesh.type == Marker.TRIANGLE_LIST and mesh.action == Marker.ADD and mesh.header == header
    assert len(mesh.points) == 3 * len(hands[0].faces) and mesh.color.a == 1.0
    assert mesh.pose.orientation.w == 1.0 and mesh.scale.x == 1.0
    p = mesh.points[4]
    np.testing.assert_allclose([p.x, p.y, p.z], hands[0].vertices[hands[0].faces[1, 1]])
    assert by_key[("joints", 8)].type == Marker.SPHERE_LIST and len(by_key[("joints", 8)].points) == 21
    assert by_key[("skeleton", 8)].type == Marker.LINE_LIST and len(by_key[("skeleton", 8)].points) == 40
    label = by_key[("label", 8)]
    assert label.type == Marker.TEXT_VIEW_FACING and label.text == "#8 L 0.88"
    assert by_key[("mesh", 7)].color != by_key[("mesh", 8)].color  # coloured by handedness
    cleared = deserialize_message(serialize_marker_array(delete_all_markers(header)), MarkerArray)
    assert [m.action for m in cleared.markers] == [Marker.DELETEALL]
