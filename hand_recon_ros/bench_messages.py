"""``hand-recon bench messages``: HandMeshArray encodings compared, Point[] against flat float32[].

Two 778-vertex hands (21 joints each). The flat encoding is what ``msg/HandMesh.msg`` uses; the Point[]
encoding is measured on an equivalent structure built from standard messages (``geometry_msgs/Point[]``, three
float64 per point, as in ``visualization_msgs/Marker.points``) carrying the same vertices and joints. Reported:
serialised CDR size and the time to fill the message from numpy, serialise, deserialise and read the vertices
back into numpy.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hands", type=int, default=2)
    parser.add_argument("--vertices", type=int, default=778)
    parser.add_argument("--repeats", type=int, default=200)


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    from geometry_msgs.msg import Point
    from rclpy.serialization import deserialize_message, serialize_message
    from std_msgs.msg import Header
    from visualization_msgs.msg import Marker, MarkerArray

    from hand_recon_core.bench.timing import summarize_ms, time_callable
    from hand_recon_ros.conversions import from_float32_field, hands_to_array_msg, random_hands
    from hand_recon_ros.msg import HandMeshArray

    hands = random_hands(np.random.default_rng(0), args.hands, args.vertices)
    header = Header(frame_id="camera_color_optical_frame")

    def flat_roundtrip():
        data = serialize_message(hands_to_array_msg(hands, header, (640, 480)))
        back = deserialize_message(data, HandMeshArray)
        return [from_float32_field(h.vertices, 3) for h in back.hands], len(data)

    def points_msg():
        out = MarkerArray()
        for h in hands:
            m = Marker(header=header)
            m.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in h.vertices.tolist()]
            m.points += [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in h.joints.tolist()]
            out.markers.append(m)
        return out

    def points_roundtrip():
        data = serialize_message(points_msg())
        back = deserialize_message(data, MarkerArray)
        return [np.array([(p.x, p.y, p.z) for p in m.points], np.float64) for m in back.markers], len(data)

    verts_flat, size_flat = flat_roundtrip()
    verts_pts, size_pts = points_roundtrip()
    assert np.allclose(verts_flat[0], hands[0].vertices) and np.allclose(verts_pts[0][: args.vertices],
                                                                           hands[0].vertices)
    flat_ms = summarize_ms(time_callable(flat_roundtrip, repeats=args.repeats))
    pts_ms = summarize_ms(time_callable(points_roundtrip, repeats=max(10, args.repeats // 4)))
    return {
        "hands": args.hands,
        "vertices_per_hand": args.vertices,
        "flat_float32": {"serialized_bytes": size_flat, "roundtrip": flat_ms},
        "point_array_float64": {"serialized_bytes": size_pts, "roundtrip": pts_ms},
        "size_ratio_points_over_flat": size_pts / size_flat,
        "time_ratio_points_over_flat": pts_ms["p50_ms"] / flat_ms["p50_ms"],
    }
