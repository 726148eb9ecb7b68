"""Shared pytest set-up.

ROS tests (marked ``ros`` or using the ``ros_context`` fixture) need the set-up env (``source .ros_ws/env.sh``).
Outside it they are skipped with that reason; with ``HAND_RECON_REQUIRE_ROS=1`` (set by scripts/test.sh and
so by CI) a missing ROS 2 is an error instead, so the integration tests can never be skipped silently there.
"""

from __future__ import annotations

import os

import pytest


def _ros_import_error() -> str | None:
    try:
        import rclpy  # noqa: F401

        from hand_recon_ros.msg import HandMesh, HandMeshArray  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def ros_available() -> None:
    """Skip (or fail, under HAND_RECON_REQUIRE_ROS=1) when rclpy or the generated messages are missing."""
    err = _ros_import_error()
    if err is None:
        return
    reason = f"ROS 2 set-up env missing ({err}); run scripts/setup.sh and source .ros_ws/env.sh"
    if os.environ.get("HAND_RECON_REQUIRE_ROS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def ros_context(ros_available):
    """A fresh, initialised rclpy Context for one test, shut down afterwards."""
    import rclpy
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)
