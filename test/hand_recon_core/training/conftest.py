"""Fixtures of the engine tests: the test-local toy method (loaded like a user plugin) and its configs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from hand_recon_core.models.registry import import_plugins
from hand_recon_core.training.config import config_from_dict

TOY_METHOD_FILE = str(Path(__file__).resolve().parent / "toy_method.py")

BASE = {
    "experiment": "toy",
    "imports": [TOY_METHOD_FILE],
    "method": {"name": "toy", "kwargs": {"hidden": 8}},
    "data": {"train": {"name": "toy-images", "kwargs": {"count": 64}}, "batch_size": 8, "num_workers": 0},
    "optim": {"name": "adam", "lr": 0.03},
    "schedule": {"name": "none"},
    "train": {"max_steps": 24},
    "checkpoint": {"every_steps": None, "every_epochs": None, "keep_last": None},
    "log": {"every_steps": 4, "tensorboard": False, "progress": False, "curves": False},
}


def _merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture(scope="session")
def toy_plugin() -> str:
    """Path of the toy plugin, imported into this process (registers ``toy``, ``toy-wide``, ``toy-images``)."""
    import_plugins([TOY_METHOD_FILE])
    return TOY_METHOD_FILE


@pytest.fixture
def make_cfg(tmp_path, toy_plugin):
    """``make_cfg(name, **sections)``: a validated toy config writing into ``tmp_path / name``."""

    def make(name: str = "run", **sections):
        data = _merge(BASE, sections)
        data["output_dir"] = str(tmp_path / name)
        return config_from_dict(data)

    return make
