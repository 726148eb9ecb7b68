"""``hand-recon ros-demo``: both nodes in one process, recorded to an MCAP file and an overlay video."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.ros


def test_ros_demo_records_every_output(ros_available, tmp_path):
    from mcap_ros2.reader import read_ros2_messages

    from hand_recon_core.cli.main import main

    out = tmp_path / "demo"
    assert main(["ros-demo", "--model", "oracle", "--frames", "6", "--rate", "10", "--size", "192", "144",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "oracle" and summary["frames_published"] == 6
    assert summary["frames_processed"] >= 5

    topics: dict[str, list] = {}
    for m in read_ros2_messages(str(out / "hand_recon_demo.mcap")):  # decodes with the recorded schemas
        topics.setdefault(m.channel.topic, []).append(m.ros_msg)
    base = "/hand_recon_node"
    for topic in ("/camera/image", "/camera/camera_info", f"{base}/hands", f"{base}/markers", f"{base}/overlay",
                  f"{base}/faces/right", f"{base}/faces/left", "/tf"):
        assert topic in topics, topic
    hands = topics[f"{base}/hands"]
    assert len(hands) >= 5 and all(len(h.hands) == 2 for h in hands)
    assert len(topics[f"{base}/faces/right"]) == 1
    assert {t.child_frame_id for m in topics["/tf"] for t in m.transforms} == {"hand_0_right_wrist",
                                                                               "hand_1_left_wrist"}
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n >= 3
    # the recording and the video say they show the ground truth, not a reconstruction
    from mcap.reader import make_reader

    with open(out / "hand_recon_demo.mcap", "rb") as f:
        meta = {m.name: m.metadata for m in make_reader(f).iter_metadata()}
    assert "SYNTHETIC GROUND TRUTH" in meta["hand_recon"]["model"]


def test_video_caption_is_burnt_in(tmp_path):
    from hand_recon_ros.recorder import VideoRecorder

    frame = np.full((120, 160, 3), 200, np.uint8)
    for caption, name in ((None, "plain.mp4"), ("SYNTHETIC GROUND TRUTH", "captioned.mp4")):
        video = VideoRecorder(tmp_path / name, fps=5, caption=caption)
        for _ in range(3):
            video.add(frame)
        video.close()
    frames = {}
    for name in ("plain.mp4", "captioned.mp4"):
        ok, img = cv2.VideoCapture(str(tmp_path / name)).read()
        assert ok
        frames[name] = img.astype(int)
    bottom = slice(100, 120)
    assert np.abs(frames["plain.mp4"][bottom] - 200).mean() < 10  # untouched
    assert frames["captioned.mp4"][bottom].mean() < 150  # the dark band with the text
    assert np.abs(frames["captioned.mp4"][:60] - frames["plain.mp4"][:60]).mean() < 3  # the rest unchanged


def test_ros_demo_refuses_the_oracle_without_the_synthetic_source(ros_available, tmp_path, capsys):
    from hand_recon_core.cli.main import main

    assert main(["ros-demo", "--model", "oracle", "--source", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "synthetic" in capsys.readouterr().err
