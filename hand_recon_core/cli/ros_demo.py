"""``hand-recon ros-demo``: run the ROS 2 demo in one process (``launch`` is not needed).

Until the reconstruction node lands, the demo is the ROS 2 smoke run: one node publishes HandMeshArray messages
and a second node receives them through DDS and checks them field by field.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=__doc__)
    p.add_argument("--count", type=int, default=5, help="messages to publish")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for delivery")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from hand_recon_ros import smoke
    except ImportError as exc:  # ROS 2 or the built messages missing
        print(f"hand-recon ros-demo: ROS 2 is not available ({exc}); run scripts/setup.sh and "
              "`source .ros_ws/env.sh` first", file=sys.stderr)
        return 2
    return smoke.main(["--count", str(args.count), "--timeout", str(args.timeout)])
