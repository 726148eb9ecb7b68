"""The ``main`` of a single-node executable: init, spin until Ctrl-C or shutdown, clean up."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node


def spin_node(factory: Callable[[], Node], argv: list[str] | None = None) -> int:
    """Create the node from ``factory`` after ``rclpy.init`` and spin it on the default executor.

    Ctrl-C and an external shutdown (SIGTERM from ``ros2 launch``) end it quietly; the node is destroyed and rclpy
    shut down in every case. Returns the process exit code (0).
    """
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = factory()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0

InvalidHandle = _rclpy.InvalidHandle


class BackgroundSpin:
    """Spin an executor in a daemon thread until :meth:`stop` (a context manager too).

    ``executor.spin()`` in a thread raises there when the executor or context is shut down under it, or when another
    thread destroys a subscription/timer while the executor waits on it. This loop spins in short slices, checks a
    stop flag, and treats an entity destroyed under it as a reason to rebuild the wait set (the next slice does),
    so stopping (then shutting the executor down) is clean.
    """

    def __init__(self, executor, slice_s: float = 0.05) -> None:
        import threading

        self.executor = executor
        self._stop = threading.Event()
        self._slice_s = slice_s
        self._thread = threading.Thread(target=self._run, name="ros-spin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        context = self.executor.context
        while not self._stop.is_set() and context.ok():
            try:
                self.executor.spin_once(timeout_sec=self._slice_s)
            except ExternalShutdownException:
                break
            except InvalidHandle:  # destroyed by another thread during the wait: the next slice skips it
                continue

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        self._thread.join(timeout=timeout)

    def __enter__(self) -> BackgroundSpin:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
