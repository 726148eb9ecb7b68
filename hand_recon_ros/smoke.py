"""ROS 2 smoke run: one node publishes HandMeshArray messages, a second node receives them.

Used by the README's demo command until the full demo exists, and by the integration tests. Both nodes run in
one process on a multi-threaded executor, but every message goes through the RMW layer (DDS), exactly as
between two processes.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from hand_recon_ros.conversions import hands_to_array_msg, random_hands
from hand_recon_ros.msg import HandMeshArray

TOPIC = "hand_recon_smoke/hands"


def run_smoke(n_messages: int = 5, timeout_s: float = 20.0, seed: int = 0, context=None):
    """Publish ``n_messages`` two-hand HandMeshArray messages and collect what a second node receives.

    Returns:
        (sent, received): two lists of HandMeshArray; ``received`` may be shorter on failure.
    """
    qos = QoSProfile(depth=n_messages + 5, reliability=ReliabilityPolicy.RELIABLE)
    pub_node = Node("hand_mesh_smoke_publisher", context=context)
    sub_node = Node("hand_mesh_smoke_receiver", context=context)
    received: list[HandMeshArray] = []
    sub_node.create_subscription(HandMeshArray, TOPIC, received.append, qos)
    pub = pub_node.create_publisher(HandMeshArray, TOPIC, qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(pub_node)
    executor.add_node(sub_node)
    rng = np.random.default_rng(seed)
    sent: list[HandMeshArray] = []
    deadline = time.monotonic() + timeout_s
    try:
        # Wait for discovery so that no message is published before the subscription is matched.
        while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        for i in range(n_messages):
            header = Header(frame_id="camera_color_optical_frame")
            header.stamp.sec, header.stamp.nanosec = 1_700_000_000 + i, 1000 * i
            msg = hands_to_array_msg(random_hands(rng, 2), header, (640, 480), inference_time=0.01 * i)
            pub.publish(msg)
            sent.append(msg)
        while len(received) < n_messages and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()
    return sent, received


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args(argv)
    rclpy.init()
    try:
        t0 = time.perf_counter()
        sent, received = run_smoke(args.count, args.timeout)
        ok = len(received) == len(sent) and all(a == b for a, b in zip(sent, received))
        n_vert = len(received[0].hands[0].vertices) // 3 if received else 0
        print(f"hand_mesh_smoke: published {len(sent)} HandMeshArray, received {len(received)} "
              f"({'all equal' if ok else 'MISMATCH'}), {n_vert} vertices per hand, "
              f"{time.perf_counter() - t0:.2f} s")
        return 0 if ok else 1
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
