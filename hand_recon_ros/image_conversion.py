"""sensor_msgs/Image -> numpy RGB, with validation and without extra copies.

The message is validated first (encoding, size, ``step``, data length). Then ``cv_bridge`` converts it when it
is installed (a real ROS 2 install: its passthrough result is a view of the message for unpadded rows, a compact
copy for padded ones); otherwise the buffer is viewed with numpy directly (row padding through the strides).
Either way the RGB result is a *view* of that array where the encoding allows it (rgb8; bgr8, rgba8 and bgra8 as
strided views; mono8 broadcast), so no pixel is copied here.

Every malformed input raises :class:`ImageConversionError` with a message naming the problem; the node logs it
(throttled) and skips the frame.
"""

from __future__ import annotations

import numpy as np

#: encoding -> (channels, channel index order to get RGB)
SUPPORTED_ENCODINGS: dict[str, tuple[int, tuple[int, ...]]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}

try:  # cv_bridge exists on ROS 2 installs, not in the PyPI environment
    from cv_bridge import CvBridge

    _CV_BRIDGE = CvBridge()
except ImportError:
    _CV_BRIDGE = None

#: Largest accepted image side in pixels by default (an 8000x8000 frame is refused, not processed).
DEFAULT_MAX_SIDE = 4096


class ImageConversionError(ValueError):
    """The image message cannot be converted; the message says why."""


def image_msg_to_rgb(msg, max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """View a ``sensor_msgs/Image`` as an RGB array.

    Args:
        msg: the image message (``height``, ``width``, ``encoding``, ``is_bigendian``, ``step``, ``data``).
        max_side: largest accepted width or height in pixels.

    Returns:
        (H, W, 3) uint8 RGB array, a read-only view of ``msg.data`` when possible.

    Raises:
        ImageConversionError: unsupported encoding, zero size, a side above ``max_side``, ``step`` smaller than
            a row, or ``data`` shorter than ``height * step``.
    """
    enc = str(msg.encoding).lower()
    if enc not in SUPPORTED_ENCODINGS:
        raise ImageConversionError(
            f"unsupported encoding {msg.encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ImageConversionError(f"empty image ({w}x{h})")
    if h > max_side or w > max_side:
        raise ImageConversionError(f"image {w}x{h} exceeds the maximum side of {max_side} px (max_image_side)")
    channels, order = SUPPORTED_ENCODINGS[enc]
    row_bytes = w * channels
    if step < row_bytes:
        raise ImageConversionError(f"step {step} is smaller than width x channels = {row_bytes} for {enc}")
    buf = _message_buffer(msg)
    if buf.size < h * step:
        raise ImageConversionError(f"data has {buf.size} bytes, expected height x step = {h * step}")
    # cv_bridge only sees validated messages, and only rows it can read: it takes step / channels columns per row,
    # which misreads a padding that is not a whole number of pixels (the numpy strides handle any step)
    if _CV_BRIDGE is not None and step % channels == 0:
        rows = np.asarray(_CV_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")).reshape(h, w, channels)
    else:
        rows = np.lib.stride_tricks.as_strided(buf, shape=(h, w, channels), strides=(step, channels, 1),
                                               writeable=False)
    if order == (0, 1, 2) and channels == 3:
        return rows
    if channels == 1:
        return np.broadcast_to(rows, (h, w, 3))
    return _reorder_view(rows, order)


def _message_buffer(msg) -> np.ndarray:
    """``msg.data`` as a flat uint8 numpy view (no copy)."""
    data = msg.data
    return data.reshape(-1).view(np.uint8) if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)


def _reorder_view(rows: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """Channel selection as a strided view: (0,1,2) -> first three channels; (2,1,0) -> reversed."""
    if order == (0, 1, 2):
        return rows[..., :3]
    # (2, 1, 0): start at channel 2 and walk backwards; still a view.
    return rows[..., 2::-1]


def rgb_to_image_msg(rgb: np.ndarray, header, encoding: str = "rgb8"):
    """Build a ``sensor_msgs/Image`` from an (H, W, 3) uint8 RGB array (one copy into the message)."""
    from sensor_msgs.msg import Image

    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageConversionError(f"expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if encoding == "bgr8":
        rgb = rgb[..., ::-1]
    elif encoding != "rgb8":
        raise ImageConversionError(f"rgb_to_image_msg writes rgb8 or bgr8, not {encoding!r}")
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg
