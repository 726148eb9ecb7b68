"""image_source_node and its frame sources: the deterministic synthetic stream, video files, image folders."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.ros


def test_synthetic_stream_is_deterministic_moving_and_labelled(synthetic_frames):
    from hand_recon_core.data.sample import LEFT, RIGHT
    from hand_recon_ros.sources import SyntheticHandsSource

    again = SyntheticHandsSource(320, 240, rate=15.0).render(5)
    np.testing.assert_array_equal(again.image, synthetic_frames[5].image)
    a, b = synthetic_frames[0], synthetic_frames[10]
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() > 1.0  # the hands moved
    for f in (a, b):
        assert f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8
        assert sorted(h.handedness for h in f.truth.hands) == [RIGHT, LEFT]
        for h in f.truth.hands:
            p = h.joints_3d @ f.K.T
            np.testing.assert_allclose(p[:, :2] / p[:, 2:], h.keypoints_2d, atol=1e-3)
            assert (h.bbox[:2] >= 0).all() and h.bbox[2] < 320 and h.bbox[3] < 240  # in view
            assert 0.3 < h.joints_3d[0, 2] < 0.8
    wrist_motion = np.linalg.norm(a.truth.hands[0].joints_3d[0] - b.truth.hands[0].joints_3d[0])
    assert 0.005 < wrist_motion < 0.2  # smooth: centimetres in 10 frames


def test_video_folder_and_single_image_sources(tmp_path):
    from hand_recon_ros.sources import ImageFolderSource, VideoFileSource, open_source

    rng = np.random.default_rng(0)
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)]
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for f in frames:
        writer.write(f)
    writer.release()
    src = open_source(str(video), focal=50.0)
    assert isinstance(src, VideoFileSource)
    got = [src.read() for _ in range(7)]  # loops after 5
    assert all(g is not None and g.image.shape == (48, 64, 3) for g in got)
    assert abs(int(got[2].image.mean()) - 80) <= 3 and abs(int(got[5].image.mean()) - 0) <= 3
    assert got[0].K[0, 0] == 50.0 and got[0].K[0, 2] == 31.5
    src.close()

    folder = tmp_path / "images"
    folder.mkdir()
    for i, name in enumerate(["b.png", "a.png", "c.jpg"]):
        img = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
        img[0, 0] = (i, 0, 0)
        cv2.imwrite(str(folder / name), img[..., ::-1])
    (folder / "notes.txt").write_text("not an image")
    src = open_source(str(folder), loop=False)
    assert isinstance(src, ImageFolderSource) and [p.name for p in src.files] == ["a.png", "b.png", "c.jpg"]
    got = [src.read() for _ in range(3)]
    assert src.read() is None and got[0].K is None
    assert got[0].image[0, 0, 0] == 1 and got[1].image[0, 0, 0] == 0  # a.png then b.png, RGB order
    single = open_source(str(folder / "a.png"))
    assert single.read().image.shape == (8, 8, 3) and single.read().index == 1
    with pytest.raises(ValueError, match="unknown source"):
        open_source(str(tmp_path / "nothing_here"))


def test_node_publishes_image_and_camera_info_with_one_header(ros_context, synthetic_frames):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, Image

    from hand_recon_ros.image_conversion import image_msg_to_rgb
    from hand_recon_ros.image_source_node import ImageSourceNode

    class Replay:
        def __init__(self, frames):
            self.frames = list(frames)

        def read(self):
            return self.frames.pop(0) if self.frames else None

        def close(self):
            pass

    seen = []
    node = ImageSourceNode("source_test", context=ros_context, namespace="source_test_ns",
                           source=Replay(synthetic_frames[:6]), on_frame=lambda f, m: seen.append(f.index),
                           parameter_overrides=[Parameter("rate", value=50.0), Parameter("encoding", value="bgr8"),
                                                Parameter("max_frames", value=4)])
    sink = Node("sink", context=ros_context, namespace="source_test_ns")
    images, infos = [], []
    sink.create_subscription(Image, "image", images.append, 10)
    sink.create_subscription(CameraInfo, "camera_info", infos.append, 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(sink)
    try:
        end = time.monotonic() + 10.0
        while time.monotonic() < end and not (node.finished and len(images) >= 4 and len(infos) >= 4):
            executor.spin_once(timeout_sec=0.02)
        assert node.finished and node.published == 4 and seen == [0, 1, 2, 3]
        assert len(images) == 4 and len(infos) == 4
        for img, info, frame in zip(images, infos, synthetic_frames):
            assert img.header == info.header and img.header.frame_id == "camera_color_optical_frame"
            assert img.encoding == "bgr8"
            np.testing.assert_array_equal(image_msg_to_rgb(img), frame.image)
            np.testing.assert_allclose(np.array(info.k).reshape(3, 3), frame.K)
            assert (info.width, info.height) == (320, 240) and info.p[3] == 0.0
        stamps = [(i.header.stamp.sec, i.header.stamp.nanosec) for i in images]
        assert stamps == sorted(stamps) and len(set(stamps)) == 4
    finally:
        executor.shutdown()
        node.destroy_node()
        sink.destroy_node()
