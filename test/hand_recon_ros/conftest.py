"""Fixtures of the ROS 2 node tests: synthetic frames with known hands and a harness around ``hand_recon_node``.

The harness runs the node and a test node (image / camera_info publishers, output subscribers) on a
multi-threaded executor in a background thread of the test's own rclpy Context; every message goes through DDS.
Each test uses its own namespace and TF frame prefix so nothing crosses between tests.
"""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

_NS_COUNTER = itertools.count()

#: Image size of the synthetic test frames (small: rendering and DDS stay cheap on two cores).
TEST_SIZE = (320, 240)


@pytest.fixture(scope="session")
def synthetic_frames(ros_available):
    """24 consecutive frames (320 x 240, 15 Hz clock) of the moving two-hand synthetic stream."""
    from hand_recon_ros.sources import SyntheticHandsSource

    source = SyntheticHandsSource(*TEST_SIZE, rate=15.0)
    return [source.render(i) for i in range(24)]


def unique_ns(prefix: str) -> str:
    """A namespace no other test uses (also valid as a TF prefix)."""
    return f"{prefix}_{next(_NS_COUNTER)}_{int(time.time() * 1e3) % 100_000}"


class Harness:
    """``hand_recon_node`` + a test node, spinning in the background.

    Args:
        ctx: the test's rclpy Context.
        ns: namespace of both nodes.
        pipeline: the stand-in model.
        params: node parameters ``{name: value}``.
        subscribe: outputs to subscribe to (``hands``, ``markers``, ``tf``, ``diagnostics``, ``overlay``).
    """

    def __init__(self, ctx, ns: str, pipeline, params: dict | None = None,
                 subscribe: tuple[str, ...] = ("hands", "markers", "tf"), publisher_depth: int = 10) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image
        from tf2_msgs.msg import TFMessage
        from visualization_msgs.msg import MarkerArray

        from hand_recon_ros.msg import HandMeshArray
        from hand_recon_ros.node_main import BackgroundSpin
        from hand_recon_ros.recon_node import HandReconNode

        self.ns = ns
        self.pipeline = pipeline
        params = {"frame_prefix": f"{ns}_", "no_image_warning_period": 0.0, **(params or {})}
        self.node = HandReconNode("hand_recon_node", context=ctx, namespace=ns, trace=True,
                                  parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
                                  pipeline_factory=lambda cfg: pipeline)
        self.io = Node("test_io", context=ctx, namespace=ns)
        qos = QoSProfile(depth=publisher_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.io.create_publisher(Image, "image", qos)
        self.info_pub = self.io.create_publisher(CameraInfo, "camera_info", qos)
        self.received: dict[str, list] = {k: [] for k in ("hands", "markers", "tf", "diagnostics", "overlay")}
        self.lock = threading.Lock()
        base = f"/{ns}/hand_recon_node"
        topics = {"hands": (HandMeshArray, f"{base}/hands"), "markers": (MarkerArray, f"{base}/markers"),
                  "tf": (TFMessage, "/tf"), "diagnostics": (DiagnosticArray, "/diagnostics"),
                  "overlay": (Image, f"{base}/overlay")}
        self.subs = {}
        for key in subscribe:
            self.subscribe(key, *topics[key])
        self.executor = MultiThreadedExecutor(num_threads=2, context=ctx)
        self.executor.add_node(self.node)
        self.executor.add_node(self.io)
        self.spin = BackgroundSpin(self.executor)
        self.stamp_counter = itertools.count(1)

    def subscribe(self, key: str, msg_type, topic: str) -> None:
        from rclpy.qos import QoSProfile

        def store(msg, key=key) -> None:
            if key == "tf":
                msg.transforms = [t for t in msg.transforms if t.child_frame_id.startswith(f"{self.ns}_")]
                if not msg.transforms:
                    return
            with self.lock:
                self.received[key].append(msg)

        self.subs[key] = self.io.create_subscription(msg_type, topic, store, QoSProfile(depth=100))

    def unsubscribe(self, key: str) -> None:
        self.io.destroy_subscription(self.subs.pop(key))

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    def wait_connected(self, timeout: float = 10.0) -> None:
        assert self.wait_for(lambda: self.image_pub.get_subscription_count() >= 1
                             and all(s.get_publisher_count() >= 1 for k, s in self.subs.items()
                                     if k not in ("tf", "diagnostics")), timeout), "DDS discovery timed out"

    def header(self, stamp_ns: int | None = None, frame_id: str = "camera_color_optical_frame"):
        from std_msgs.msg import Header

        stamp_ns = 1_700_000_000_000_000_000 + next(self.stamp_counter) * 66_666_667 if stamp_ns is None \
            else stamp_ns
        h = Header(frame_id=frame_id)
        h.stamp.sec, h.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return h

    def publish(self, image: np.ndarray, K: np.ndarray | None, header=None, encoding: str = "rgb8",
                info_header=None):
        """Publish camera_info (when K is given) then the image; returns the image header."""
        from hand_recon_ros.image_conversion import rgb_to_image_msg
        from hand_recon_ros.image_source_node import camera_info_msg

        header = header or self.header()
        msg = rgb_to_image_msg(image, header, encoding)
        if K is not None:
            h, w = image.shape[:2]
            self.info_pub.publish(camera_info_msg(K, w, h, info_header or header))
        self.image_pub.publish(msg)
        return header

    def count(self, key: str) -> int:
        with self.lock:
            return len(self.received[key])

    def close(self) -> None:
        self.spin.stop()
        self.node.close()
        self.executor.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()


@pytest.fixture
def harness_factory(ros_context):
    """``make(pipeline, params=None, subscribe=(...), prefix="t") -> Harness``; closed after the test.

    Python's GIL switch interval is the node executable's (``GIL_SWITCH_INTERVAL_S``) meanwhile.
    """
    import sys

    from hand_recon_ros.recon_node import GIL_SWITCH_INTERVAL_S

    made: list[Harness] = []
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)

    def make(pipeline, params: dict | None = None, subscribe=("hands", "markers", "tf"), prefix: str = "t",
             publisher_depth: int = 10):
        h = Harness(ros_context, unique_ns(prefix), pipeline, params, subscribe, publisher_depth)
        made.append(h)
        return h

    try:
        yield make
    finally:
        for h in made:
            h.close()
        sys.setswitchinterval(switch_interval)


@pytest.fixture
def ground_truth(synthetic_frames):
    """A GroundTruthPipeline that knows every synthetic test frame."""
    from hand_recon_ros.fake_pipeline import GroundTruthPipeline

    gt = GroundTruthPipeline()
    for f in synthetic_frames:
        gt.register(f.image, f.truth)
    return gt
