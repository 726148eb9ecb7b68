"""``hand-recon bench ros`` runs end to end (a few frames; the figures themselves are not asserted)."""

from __future__ import annotations

import argparse

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_bench_ros_reports_the_ros_layer_latency(ros_available):
    from hand_recon_ros import bench_ros

    parser = argparse.ArgumentParser()
    bench_ros.add_arguments(parser)
    result = bench_ros.run(parser.parse_args(["--frames", "20", "--warmup", "5", "--rate", "20"]))
    assert result["hands_per_frame"] == 2 and result["image_size"] == [640, 480]
    assert result["ros_layer"]["n"] >= 10 and result["hands_messages_received"] >= 15
    for stage in ("camera_info_wait", "queue", "convert", "post", "publish", "outputs_after_hands"):
        assert result["stages"][stage]["n"] >= 10, stage
    assert isinstance(result["ros_layer_meets_target"], bool)
