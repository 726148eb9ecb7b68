"""``hand-recon bench messages``: both encodings round-trip through real rclpy serialisation, sizes as expected."""

from __future__ import annotations

import argparse


def test_bench_messages_reports_both_encodings(ros_available):
    from hand_recon_ros import bench_messages

    parser = argparse.ArgumentParser()
    bench_messages.add_arguments(parser)
    out = bench_messages.run(parser.parse_args(["--repeats", "3"]))
    points = (778 + 21) * 2
    flat, pts = out["flat_float32"], out["point_array_float64"]
    # flat: 3 float32 per point (+ the other HandMesh fields); Point[]: 3 float64 per point (+ Marker fields)
    assert points * 12 < flat["serialized_bytes"] < points * 12 + 4096
    assert pts["serialized_bytes"] > points * 24
    assert out["size_ratio_points_over_flat"] > 1.5
    assert flat["roundtrip"]["p50_ms"] > 0 and pts["roundtrip"]["p50_ms"] > 0
