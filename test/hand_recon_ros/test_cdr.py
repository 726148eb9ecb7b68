"""The numpy CDR serialiser: every byte it writes reads back through rclpy as the same message."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros


def _roundtrip(msg_class, value):
    from rclpy.serialization import deserialize_message

    from hand_recon_ros.cdr import serialize

    data = serialize(msg_class, value)
    assert data[:4] == b"\x00\x01\x00\x00" and len(data) % 4 == 0
    return deserialize_message(data, msg_class)


def test_every_field_kind_roundtrips(ros_available):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import Point, TransformStamped
    from sensor_msgs.msg import CameraInfo, Image
    from shape_msgs.msg import Mesh, MeshTriangle
    from std_msgs.msg import ColorRGBA, Header
    from tf2_msgs.msg import TFMessage
    from visualization_msgs.msg import Marker, MarkerArray

    from hand_recon_ros.conversions import hands_to_array_msg, random_hands
    from hand_recon_ros.msg import HandMeshArray

    header = Header(frame_id="héader")  # non-ASCII text
    header.stamp.sec, header.stamp.nanosec = -5, 123
    m = Marker(header=header, ns="mesh", id=-3, type=Marker.TRIANGLE_LIST, text="t", frame_locked=True,
               mesh_use_embedded_materials=True, color=ColorRGBA(r=1.0, g=0.5, b=0.25, a=1.0))
    m.points = [Point(x=1.0, y=-2.0, z=3.5), Point(x=4.0, y=5.0, z=6.0)]
    m.colors = [ColorRGBA(r=0.125, g=0.25, b=0.375, a=0.5)]
    m.lifetime.sec = 2
    m.texture.data = [1, 2, 3]
    cases = [
        (Marker, m),
        (MarkerArray, MarkerArray(markers=[m, Marker(), m])),
        (HandMeshArray, hands_to_array_msg(random_hands(np.random.default_rng(1), 2), header, (640, 480), 0.25)),
        (Image, Image(header=header, height=2, width=3, encoding="rgb8", step=9, data=bytes(range(18)))),
        (CameraInfo, CameraInfo(header=header, k=[float(i) for i in range(9)], d=[0.5] * 5,
                                distortion_model="plumb_bob")),
        (Mesh, Mesh(triangles=[MeshTriangle(vertex_indices=[1, 2, 3]), MeshTriangle(vertex_indices=[7, 8, 9])])),
        (TFMessage, TFMessage(transforms=[TransformStamped(header=header, child_frame_id="c")])),
        (DiagnosticArray, DiagnosticArray(header=header, status=[DiagnosticStatus(
            level=DiagnosticStatus.WARN, name="n", message="m", values=[KeyValue(key="k", value="v")])])),
    ]
    for cls, value in cases:
        assert _roundtrip(cls, value) == value, cls.__name__


def test_numpy_point_arrays_and_dict_defaults(ros_available):
    from visualization_msgs.msg import Marker

    pts = np.random.default_rng(0).normal(size=(1000, 3))
    back = _roundtrip(Marker, {"ns": "x", "points": pts, "colors": np.full((2, 4), 0.5, np.float32)})
    assert back.ns == "x" and back.pose.orientation.w == 1.0  # a dict's missing fields keep the defaults
    np.testing.assert_array_equal(np.array([[p.x, p.y, p.z] for p in back.points]), pts)
    assert back.colors[1].a == 0.5


def test_wrong_array_shapes_are_refused(ros_available):
    from sensor_msgs.msg import CameraInfo
    from visualization_msgs.msg import Marker

    from hand_recon_ros.cdr import serialize

    with pytest.raises(ValueError, match="9 elements"):
        serialize(CameraInfo, {"k": [1.0, 2.0]})
    with pytest.raises(ValueError, match="Point"):
        serialize(Marker, {"points": np.zeros((4, 2))})
