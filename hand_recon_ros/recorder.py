"""Record ROS 2 topics into an MCAP file (``ros2`` profile, CDR messages) and overlay images into a video.

Messages are taken serialised from DDS (``raw=True`` subscriptions) and written unchanged with ``mcap``'s
writer, so recording costs no (de)serialisation. Each channel's schema is the ``ros2msg`` definition of its type:
the ``.msg`` text of the type followed by those of every type it uses (found through the ament index), the format
Foxglove Studio, ``ros2 bag`` (rosbag2_storage_mcap) and ``mcap_ros2`` read.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["McapRecorder", "VideoRecorder", "ros2_msgdef", "type_name"]

#: Primitive field types of the ROS 2 IDL (everything else is a message type).
_PRIMITIVES = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
               "uint32", "int64", "uint64", "string", "wstring"}
_SEPARATOR = "=" * 80


def type_name(msg_class) -> str:
    """``"pkg/msg/Type"`` of a generated message class."""
    pkg = msg_class.__module__.split(".")[0]
    return f"{pkg}/msg/{msg_class.__name__}"


def _msg_text(pkg: str, name: str) -> str:
    from ament_index_python.packages import get_package_share_directory

    path = Path(get_package_share_directory(pkg)) / "msg" / f"{name}.msg"
    return path.read_text()


def _dependencies(pkg: str, text: str) -> list[tuple[str, str]]:
    deps = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" in line:
            continue  # a constant: TYPE NAME=VALUE
        field_type = line.split()[0]
        base = re.sub(r"\[.*\]$", "", field_type)
        base = re.sub(r"<=\d+$", "", base)
        if base in _PRIMITIVES:
            continue
        if base == "Header":
            deps.append(("std_msgs", "Header"))
        elif "/" in base:
            parts = base.split("/")
            deps.append((parts[0], parts[-1]))
        else:
            deps.append((pkg, base))
    return deps


def ros2_msgdef(msg_class) -> str:
    r"""The ``ros2msg`` schema text of a message class (its definition, then each dependency once).

    Args:
        msg_class: a generated message class, e.g. ``sensor_msgs.msg.Image``.

    Returns:
        The text: the type's ``.msg``, then for every type it uses (breadth first)
        ``"=" * 80 + "\\nMSG: pkg/Type\\n" + definition``.
    """
    pkg, name = msg_class.__module__.split(".")[0], msg_class.__name__
    root = _msg_text(pkg, name)
    parts = [root.rstrip("\n")]
    seen = {(pkg, name)}
    queue = _dependencies(pkg, root)
    while queue:
        dep = queue.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        text = _msg_text(*dep)
        parts.append(f"{_SEPARATOR}\nMSG: {dep[0]}/{dep[1]}\n{text.rstrip(chr(10))}")
        queue.extend(_dependencies(dep[0], text))
    return "\n".join(parts) + "\n"


class McapRecorder:
    """Subscribes to topics (serialised) and writes every message to an MCAP file.

    Args:
        node: the node that owns the subscriptions.
        path: the ``.mcap`` file (parent folders created).
        topics: ``(topic, msg_class, qos)`` to record.
    """

    def __init__(self, node, path: str | Path, topics: list[tuple[str, Any, Any]],
                 metadata: dict[str, str] | None = None) -> None:
        from mcap.writer import CompressionType, Writer

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        try:
            import zstandard  # noqa: F401

            compression = CompressionType.ZSTD
        except ImportError:
            compression = CompressionType.NONE
        self._writer = Writer(self._file, compression=compression)
        self._writer.start(profile="ros2", library="hand_recon")
        if metadata:  # e.g. what produced the hands (a trained model, random weights, the ground-truth stand-in)
            self._writer.add_metadata(name="hand_recon", data={str(k): str(v) for k, v in metadata.items()})
        self._lock = threading.Lock()
        self._node = node
        self._subs = []
        self.counts: dict[str, int] = {}
        self._closed = False
        schemas: dict[str, int] = {}
        for topic, msg_class, qos in topics:
            name = type_name(msg_class)
            if name not in schemas:
                schemas[name] = self._writer.register_schema(name=name, encoding="ros2msg",
                                                             data=ros2_msgdef(msg_class).encode())
            channel = self._writer.register_channel(topic=topic, message_encoding="cdr", schema_id=schemas[name])
            self.counts[topic] = 0
            self._subs.append(node.create_subscription(
                msg_class, topic, lambda data, c=channel, t=topic: self._write(c, t, data), qos, raw=True))

    def _write(self, channel: int, topic: str, data: bytes) -> None:
        now = time.time_ns()
        with self._lock:
            if self._closed:
                return
            self.counts[topic] += 1
            self._writer.add_message(channel_id=channel, log_time=now, data=bytes(data), publish_time=now,
                                     sequence=self.counts[topic])

    def close(self) -> None:
        """Unsubscribe and finish the file (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._writer.finish()
        self._file.close()


class VideoRecorder:
    """Writes RGB frames to an MP4 (OpenCV ``mp4v``), or a GIF when the path ends in ``.gif`` (Pillow).

    Args:
        path: output file (parent folders created).
        fps: frames per second of the file.
        caption: optional text burnt into the bottom of every frame (white on a dark band).
    """

    def __init__(self, path: str | Path, fps: float, caption: str | None = None) -> None:
        self.caption = caption
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = float(fps)
        self._writer = None
        self._gif: list = []
        self.frames = 0
        self._lock = threading.Lock()

    def add(self, rgb: np.ndarray) -> None:
        """Append an (H, W, 3) uint8 RGB frame (frames of another size than the first are resized)."""
        import cv2

        if self.caption:
            rgb = _with_caption(rgb, self.caption)
        with self._lock:
            if self.path.suffix.lower() == ".gif":
                self._gif.append(np.ascontiguousarray(rgb))
            else:
                if self._writer is None:
                    h, w = rgb.shape[:2]
                    self._size = (w, h)
                    self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
                    if not self._writer.isOpened():
                        raise RuntimeError(f"OpenCV cannot write {self.path} (mp4v)")
                if (rgb.shape[1], rgb.shape[0]) != self._size:
                    rgb = cv2.resize(rgb, self._size)
                self._writer.write(np.ascontiguousarray(rgb[..., ::-1]))
            self.frames += 1

    def close(self) -> None:
        """Finish the file."""
        with self._lock:
            if self._writer is not None:
                self._writer.release()
                self._writer = None
            if self._gif:
                from PIL import Image as PILImage

                images = [PILImage.fromarray(f) for f in self._gif]
                images[0].save(self.path, save_all=True, append_images=images[1:], loop=0,
                               duration=int(round(1000.0 / self.fps)))
                self._gif = []


def _with_caption(rgb: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``rgb`` with ``text`` on a dark band along the bottom edge."""
    import cv2

    out = np.array(rgb, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    scale = max(0.35, min(0.8, w / 1100.0))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    band = th + base + 8
    out[h - band:] = (out[h - band:] * 0.35).astype(np.uint8)
    cv2.putText(out, text, (6, h - base - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
