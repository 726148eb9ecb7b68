"""The ``main`` of a single-node executable: init, spin until Ctrl-C or shutdown, clean up."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
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
