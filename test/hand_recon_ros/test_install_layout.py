"""The colcon install tree that `ros2 run` / `ros2 launch` use: executables, launch and config files, messages.

Checks the overlay ``scripts/setup.sh`` builds (``.ros_ws/install``), the same ``CMakeLists.txt`` install rules a
native ``colcon build`` runs.
"""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prefix(ros_available) -> Path:
    base = Path(os.environ.get("HAND_RECON_ROOT", ROOT)) / ".ros_ws" / "install" / "hand_recon_ros"
    if not base.is_dir():
        pytest.fail(f"no colcon install tree at {base}: run scripts/setup.sh")
    return base


def _files(folder: Path) -> list[Path]:
    return sorted(p.relative_to(ROOT) for p in (ROOT / folder).rglob("*") if p.is_file())


def test_every_executable_is_installed_under_lib_and_imports(prefix):
    scripts = sorted((ROOT / "scripts" / "ros").iterdir())
    assert scripts, "scripts/ros is empty"
    for script in scripts:
        installed = prefix / "lib" / "hand_recon_ros" / script.name
        assert installed.is_file() and os.access(installed, os.X_OK), f"{installed} missing or not executable"
        # the module each launcher runs must import (a renamed module would only fail at `ros2 run`)
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hand_recon"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{script.name}: {node.module}.{alias.name} missing"


@pytest.mark.parametrize("folder", ["launch", "config", "msg"])
def test_launch_config_and_message_files_are_installed_under_share(prefix, folder):
    files = _files(Path(folder))
    assert files
    missing = [str(f) for f in files if not (prefix / "share" / "hand_recon_ros" / f).is_file()]
    assert not missing, f"not installed: {missing}"


def test_generated_messages_come_from_the_overlay(prefix):
    from hand_recon_ros.msg import HandMesh, HandMeshArray

    for cls in (HandMesh, HandMeshArray):
        path = Path(importlib.import_module(cls.__module__).__file__).resolve()
        assert ".ros_ws" in path.parts or "install" in path.parts, path
