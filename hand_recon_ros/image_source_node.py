"""``image_source_node``: publishes ``image`` (``sensor_msgs/Image``) and ``camera_info`` at a fixed rate.

Sources (parameter ``source``, see :func:`hand_recon_ros.sources.open_source`): ``synthetic`` (default: two
interacting hands of the synthetic engine moving smoothly over a static background, deterministic), a video
file, an image folder, ``camera:<index>`` or ``/dev/videoN`` (OpenCV / V4L2). ``camera_info`` carries the
synthetic camera's intrinsics, or ``focal_px`` for the other sources; without a focal length no camera_info is
published (the reconstruction node then says it uses its default focal length).

Both messages of a frame share one header (stamp = publication time, ``frame_id``), so an approximate-time
synchroniser pairs them exactly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from hand_recon_ros.image_conversion import rgb_to_image_msg
from hand_recon_ros.sources import SourceFrame, open_source

__all__ = ["ImageSourceNode", "camera_info_msg", "main"]

NODE_NAME = "image_source"

#: name -> (default, description, (min, max) or None)
SOURCE_PARAMS: dict[str, tuple] = {
    "source": ("synthetic", "synthetic[:<scene>], a video file, an image folder, camera:<index> or /dev/videoN",
               None),
    "rate": (15.0, "frames per second [Hz]", (0.1, 240.0)),
    "width": (640, "image width of the synthetic source / requested camera width [px]", (16, 8192)),
    "height": (480, "image height of the synthetic source / requested camera height [px]", (16, 8192)),
    "focal_px": (0.0, "focal length [px] (0: the synthetic camera's, none for the other sources)", (0.0, 1e6)),
    "frame_id": ("camera_color_optical_frame", "header frame id (the camera's optical frame)", None),
    "encoding": ("rgb8", "published encoding: rgb8 or bgr8", None),
    "seed": (0, "seed of the synthetic source", (0, 2**31 - 1)),
    "loop": (True, "loop video files and image folders", None),
    "max_frames": (0, "stop publishing after this many frames (0: never)", (0, 2**31 - 1)),
    "reliable": (True, "reliable publishers (matched by reliable and best-effort subscribers)", None),
}


def camera_info_msg(K: np.ndarray, width: int, height: int, header) -> CameraInfo:
    """A ``sensor_msgs/CameraInfo`` of an ideal pinhole camera (no distortion).

    Args:
        K: (3, 3) intrinsics in pixels.
        width: image width, pixels.
        height: image height, pixels.
        header: the image's header.

    Returns:
        The message (``k``, ``p`` = [K | 0], ``r`` = identity, ``plumb_bob`` with zero coefficients).
    """
    K = np.asarray(K, np.float64).reshape(3, 3)
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = K.reshape(-1).tolist()
    msg.r = np.eye(3).reshape(-1).tolist()
    msg.p = np.concatenate([K, np.zeros((3, 1))], axis=1).reshape(-1).tolist()
    return msg


class ImageSourceNode(Node):
    """Publishes a frame source (see the module docstring).

    Args:
        node_name: node name.
        source: an already opened source (``read()`` / ``close()``) used instead of the ``source`` parameter.
        on_frame: ``on_frame(frame: SourceFrame, image_msg)`` called after each publication (the demo registers
            the synthetic ground truth with it).
        **kwargs: ``rclpy`` node arguments (``context``, ``namespace``, ``parameter_overrides`` ...).
    """

    def __init__(self, node_name: str = NODE_NAME, *, source=None,
                 on_frame: Callable[[SourceFrame, Image], None] | None = None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        for name, (default, description, bounds) in SOURCE_PARAMS.items():
            d = ParameterDescriptor(description=description, read_only=True)
            if bounds is not None and isinstance(default, float):
                d.floating_point_range = [FloatingPointRange(from_value=float(bounds[0]), to_value=float(bounds[1]))]
            elif bounds is not None and isinstance(default, int) and not isinstance(default, bool):
                d.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]), step=1)]
            self.declare_parameter(name, default, d)
        p = {name: self.get_parameter(name).value for name in SOURCE_PARAMS}
        if p["encoding"] not in ("rgb8", "bgr8"):
            raise ValueError(f"encoding must be rgb8 or bgr8, got {p['encoding']!r}")
        self.params = p
        self.source = source if source is not None else open_source(
            p["source"], p["width"], p["height"], p["rate"], p["seed"], p["focal_px"] or None, p["loop"])
        self.on_frame = on_frame
        qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.RELIABLE if p["reliable"] else ReliabilityPolicy.BEST_EFFORT)
        self.image_pub = self.create_publisher(Image, "image", qos)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", qos)
        self.published = 0
        self.finished = False
        self.timer = self.create_timer(1.0 / p["rate"], self._tick)
        self.get_logger().info(f"publishing {p['source']} at {p['rate']} Hz on {self.image_pub.topic_name} and "
                               f"{self.info_pub.topic_name} (frame {p['frame_id']})")

    def _tick(self) -> None:
        if self.finished:
            return
        if self.params["max_frames"] and self.published >= self.params["max_frames"]:
            self._finish(f"published {self.published} frames (max_frames)")
            return
        frame = self.source.read()
        if frame is None:
            self._finish(f"source ended after {self.published} frames")
            return
        self.publish_frame(frame)

    def publish_frame(self, frame: SourceFrame) -> Image:
        """Publish one frame (image, then camera_info when the intrinsics are known) with a fresh stamp."""
        header = Header(frame_id=self.params["frame_id"])
        header.stamp = self.get_clock().now().to_msg()
        msg = rgb_to_image_msg(frame.image, header, self.params["encoding"])
        if self.on_frame is not None:
            self.on_frame(frame, msg)
        if frame.K is not None:
            h, w = frame.image.shape[:2]
            self.info_pub.publish(camera_info_msg(frame.K, w, h, header))
        self.image_pub.publish(msg)
        self.published += 1
        return msg

    def _finish(self, why: str) -> None:
        self.finished = True
        self.timer.cancel()
        self.get_logger().info(why)

    def destroy_node(self) -> None:
        """Close the source, then destroy the node."""
        self.source.close()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    """``ros2 run hand_recon_ros image_source_node [--ros-args -p source:=...]``."""
    from hand_recon_ros.node_main import spin_node
    from hand_recon_ros.recon_node import GIL_SWITCH_INTERVAL_S

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)  # rendering threads vs the executor (see recon_node)
    return spin_node(ImageSourceNode, argv)


if __name__ == "__main__":
    sys.exit(main())
