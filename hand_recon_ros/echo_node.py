"""``ros2 run hand_recon_ros hand_mesh_echo``: print a one-line summary of each HandMeshArray received."""

from __future__ import annotations

import sys

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from hand_recon_ros.conversions import msg_to_hand
from hand_recon_ros.msg import HandMeshArray
from hand_recon_ros.node_main import spin_node


class HandMeshEcho(Node):
    """Subscribes ``hands`` (remap it) and logs count, ids, handedness and wrist positions."""

    def __init__(self) -> None:
        super().__init__("hand_mesh_echo")
        self.create_subscription(HandMeshArray, "hands", self._on_hands, qos_profile_sensor_data)

    def _on_hands(self, msg: HandMeshArray) -> None:
        parts = []
        for h in map(msg_to_hand, msg.hands):
            side = "L" if h.handedness else "R"
            x, y, z = h.joints[0] if len(h.joints) else (float("nan"),) * 3
            parts.append(f"#{h.id}{side} {h.score:.2f} wrist=({x:+.3f},{y:+.3f},{z:+.3f}) m")
        self.get_logger().info(f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d} "
                               f"{len(msg.hands)} hand(s): " + "; ".join(parts))


def main(argv: list[str] | None = None) -> int:
    return spin_node(HandMeshEcho, argv)


if __name__ == "__main__":
    sys.exit(main())
