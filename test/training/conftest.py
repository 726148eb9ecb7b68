"""Fixtures of the training/ scripts' tests: each script loaded as a module (training/ is not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

TRAINING = Path(__file__).resolve().parents[2] / "training"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, TRAINING / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tables() -> ModuleType:
    return _load("cpu_tables")


@pytest.fixture(scope="module")
def curves() -> ModuleType:
    return _load("compare_curves")


@pytest.fixture(scope="module")
def hk() -> ModuleType:
    return _load("heatmap_keypoints")
