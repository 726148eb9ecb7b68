"""Image + CameraInfo pairing and the keep-latest frame slot (pure Python, no rclpy).

* :class:`ApproxTimeSync`: pairs an image with the camera info of the nearest header stamp within ``slop``
  seconds, each side keeping at most ``queue_size`` unmatched messages. It is the fallback of
  ``message_filters.ApproximateTimeSynchronizer``, which :func:`make_synchroniser` uses when installed (a ROS 2
  install); both are fed by hand (``add_image`` / ``add_info``) so the node owns its subscriptions.
* :class:`LatestFrameSlot`: one pending frame at most. A new image replaces an unprocessed one (counted as a
  drop), so a slow model never builds a backlog; the worker takes a frame once its camera info is attached or
  its wait for one has expired (the node then uses the latest camera info, or the default focal).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ApproxTimeSync", "LatestFrameSlot", "PendingFrame", "make_synchroniser", "stamp_ns"]


def stamp_ns(msg: Any) -> int:
    """``msg.header.stamp`` in integer nanoseconds."""
    s = msg.header.stamp
    return int(s.sec) * 1_000_000_000 + int(s.nanosec)


class ApproxTimeSync:
    """Pairs images and camera infos by the nearest header stamp within ``slop``.

    Args:
        queue_size: unmatched messages kept per input (the oldest is forgotten first).
        slop: largest stamp difference of a pair, seconds.
        callback: ``callback(image, info)`` for each pair, called from ``add_image`` / ``add_info``.
    """

    def __init__(self, queue_size: int, slop: float, callback: Callable[[Any, Any], None]) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self._slop_ns = int(round(float(slop) * 1e9))
        self._images: deque = deque(maxlen=int(queue_size))
        self._infos: deque = deque(maxlen=int(queue_size))
        self._callback = callback
        self._lock = threading.Lock()

    def add_image(self, msg: Any) -> None:
        """Offer an image: paired at once with a queued camera info, else queued."""
        self._add(msg, self._infos, self._images, image_first=True)

    def add_info(self, msg: Any) -> None:
        """Offer a camera info: paired at once with a queued image, else queued."""
        self._add(msg, self._images, self._infos, image_first=False)

    def _add(self, msg: Any, others: deque, own: deque, image_first: bool) -> None:
        t = stamp_ns(msg)
        with self._lock:
            best, best_dt = -1, None
            for i, (t_other, _) in enumerate(others):
                dt = abs(t_other - t)
                if dt <= self._slop_ns and (best_dt is None or dt < best_dt):
                    best, best_dt = i, dt
            if best < 0:
                own.append((t, msg))
                return
            match = others[best][1]
            # the match and everything queued before it can no longer pair with a newer message
            for _ in range(best + 1):
                others.popleft()
        if image_first:
            self._callback(msg, match)
        else:
            self._callback(match, msg)


class _MessageFiltersSync:
    """``message_filters.ApproximateTimeSynchronizer`` fed through two ``SimpleFilter`` inputs."""

    def __init__(self, message_filters, queue_size: int, slop: float, callback) -> None:
        self._image_in = message_filters.SimpleFilter()
        self._info_in = message_filters.SimpleFilter()
        self._sync = message_filters.ApproximateTimeSynchronizer([self._image_in, self._info_in], int(queue_size),
                                                                 float(slop))
        self._sync.registerCallback(callback)

    def add_image(self, msg: Any) -> None:
        self._image_in.signalMessage(msg)

    def add_info(self, msg: Any) -> None:
        self._info_in.signalMessage(msg)


def make_synchroniser(queue_size: int, slop: float, callback: Callable[[Any, Any], None],
                      prefer_message_filters: bool = True) -> tuple[Any, str]:
    """The image / camera-info synchroniser: ``message_filters`` when installed, else :class:`ApproxTimeSync`.

    Args:
        queue_size: unmatched messages kept per input.
        slop: largest stamp difference of a pair, seconds.
        callback: ``callback(image, info)``.
        prefer_message_filters: use ``message_filters`` when it can be imported.

    Returns:
        ``(synchroniser, name)``: an object with ``add_image(msg)`` / ``add_info(msg)`` and the implementation's
        name (``"message_filters.ApproximateTimeSynchronizer"`` or ``"ApproxTimeSync (built-in)"``).
    """
    if prefer_message_filters:
        try:
            import message_filters
        except ImportError:
            pass
        else:
            return _MessageFiltersSync(message_filters, queue_size, slop, callback), \
                "message_filters.ApproximateTimeSynchronizer"
    return ApproxTimeSync(queue_size, slop, callback), "ApproxTimeSync (built-in)"


@dataclass
class PendingFrame:
    """An image waiting for the worker.

    Attributes:
        image: the ``sensor_msgs/Image``.
        info: the matched ``sensor_msgs/CameraInfo`` (None until matched).
        received: ``time.perf_counter()`` when the image arrived, seconds.
        deadline: ``time.perf_counter()`` after which it is processed without a matched camera info.
        seq: arrival number of the image (1, 2, ...).
        ready: ``time.perf_counter()`` when it became ready for the worker: its camera info attached, or the
            deadline (so ``ready - received`` is the time spent waiting for the camera info).
    """

    image: Any
    info: Any
    received: float
    deadline: float
    seq: int
    ready: float | None = None


class LatestFrameSlot:
    """Holds the newest unprocessed frame only; thread-safe.

    Counters (read them any time): ``received`` images put, ``dropped`` images replaced before the worker
    took them, ``taken`` images handed to the worker.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: PendingFrame | None = None
        self._closed = False
        self.received = 0
        self.dropped = 0
        self.taken = 0

    def put_image(self, image: Any, wait: float, now: float | None = None) -> bool:
        """Make ``image`` the pending frame.

        Args:
            image: the image message.
            wait: seconds the worker waits for a matching camera info (0: take it at once).
            now: arrival time (``time.perf_counter()``; default now).

        Returns:
            True when an unprocessed frame was replaced (a drop).
        """
        now = time.perf_counter() if now is None else now
        with self._cond:
            self.received += 1
            replaced = self._pending is not None
            if replaced:
                self.dropped += 1
            self._pending = PendingFrame(image, None, now, now + max(0.0, wait), self.received,
                                         now if wait <= 0 else None)
            self._cond.notify_all()
            return replaced

    def attach_info(self, image: Any, info: Any) -> bool:
        """Attach ``info`` to the pending frame when it holds ``image`` (same object, or same stamp and frame).

        Returns:
            True when attached (False: that image was already taken or replaced).
        """
        with self._cond:
            p = self._pending
            if p is None or p.info is not None:
                return False
            same = p.image is image or (stamp_ns(p.image) == stamp_ns(image)
                                        and p.image.header.frame_id == image.header.frame_id)
            if not same:
                return False
            p.info = info
            if p.ready is None:
                p.ready = time.perf_counter()
            self._cond.notify_all()
            return True

    def take(self, timeout: float | None = None) -> PendingFrame | None:
        """Wait for a frame that is ready (camera info attached, or its wait expired) and remove it.

        Args:
            timeout: seconds to wait at most (None: until a frame or :meth:`close`).

        Returns:
            The frame, or None on timeout or after :meth:`close`.
        """
        end = None if timeout is None else time.perf_counter() + timeout
        with self._cond:
            while not self._closed:
                now = time.perf_counter()
                p = self._pending
                if p is not None and (p.info is not None or now >= p.deadline):
                    if p.ready is None:
                        p.ready = p.deadline
                    self._pending = None
                    self.taken += 1
                    return p
                waits = [t - now for t in (end, None if p is None else p.deadline) if t is not None]
                if end is not None and now >= end:
                    return None
                self._cond.wait(timeout=max(1e-4, min(waits)) if waits else None)
            return None

    def pending(self) -> int:
        """1 when a frame waits, else 0 (the slot never holds more)."""
        with self._cond:
            return int(self._pending is not None)

    def clear(self) -> None:
        """Forget the pending frame (not counted as a drop)."""
        with self._cond:
            self._pending = None

    def close(self) -> None:
        """Wake every waiting :meth:`take` (they return None) and refuse to block again."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Undo :meth:`close` (a node activated again)."""
        with self._cond:
            self._closed = False
