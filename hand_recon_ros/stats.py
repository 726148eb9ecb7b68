"""Run-time statistics of the node: latency percentiles per stage, rates, counters, throttling (no rclpy).

Used by the node's diagnostics and by ``hand-recon bench ros``. Everything is bounded: each stage keeps the
last ``window`` samples only.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

__all__ = ["LatencyStats", "RateMeter", "Throttle"]


class LatencyStats:
    """Sliding-window latencies per named stage, in milliseconds.

    Args:
        window: samples kept per stage.
    """

    def __init__(self, window: int = 300) -> None:
        self._window = int(window)
        self._samples: dict[str, deque] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, ms: float) -> None:
        """Record one latency of ``stage`` in milliseconds."""
        with self._lock:
            buf = self._samples.get(stage)
            if buf is None:
                buf = self._samples[stage] = deque(maxlen=self._window)
            buf.append(float(ms))

    def percentiles(self, q: tuple[float, ...] = (50.0, 95.0)) -> dict[str, tuple[float, ...]]:
        """``{stage: (p_q0, p_q1, ...)}`` in milliseconds over the window (stages with samples only)."""
        with self._lock:
            snap = {k: np.fromiter(v, np.float64) for k, v in self._samples.items() if v}
        return {k: tuple(float(x) for x in np.percentile(v, q)) for k, v in snap.items()}

    def count(self, stage: str) -> int:
        """Samples currently held for ``stage``."""
        with self._lock:
            return len(self._samples.get(stage, ()))

    def clear(self) -> None:
        """Forget every sample."""
        with self._lock:
            self._samples.clear()


class RateMeter:
    """Events per second over the last ``horizon`` seconds.

    Args:
        horizon: averaging window, seconds.
    """

    def __init__(self, horizon: float = 5.0) -> None:
        self._horizon = float(horizon)
        self._times: deque = deque(maxlen=10_000)
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        """Record one event (``time.monotonic()`` seconds; default now)."""
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: float | None = None) -> float:
        """Events per second over the horizon (0 with fewer than two events in it)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] > self._horizon:
                self._times.popleft()
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], 1e-9)
            return (len(self._times) - 1) / span if span < self._horizon else len(self._times) / self._horizon


class Throttle:
    """Per-key throttling of log messages: :meth:`ready` is True at most once per ``period`` seconds per key.

    Args:
        period: seconds between two messages of the same key.
    """

    def __init__(self, period: float = 5.0) -> None:
        self.period = float(period)
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def ready(self, key: str, now: float | None = None) -> bool:
        """True when a message of ``key`` may be logged now (and records it)."""
        now = time.monotonic() if now is None else now
        last = self._last.get(key)
        if last is not None and now - last < self.period:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        return True
