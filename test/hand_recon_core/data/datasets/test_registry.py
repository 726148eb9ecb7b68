"""Tests for the dataset registry ``build_dataset``."""

from __future__ import annotations

import pytest

from hand_recon_core.data.datasets import DATASETS, build_dataset
from hand_recon_core.data.datasets.freihand import FreiHANDDataset


def test_registry_names():
    assert sorted(DATASETS) == ["dexycb", "freihand", "ho3d", "interhand", "rhd"]
    assert all(cls.name == name for name, cls in DATASETS.items())


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match="known: .*freihand"):
        build_dataset("stb", tmp_path, "train")


def test_kwargs_reach_the_loader(tmp_path):
    with pytest.raises(FileNotFoundError, match="FreiHAND root"):
        build_dataset("freihand", tmp_path / "missing", "training", load_mask=False)
    assert DATASETS["freihand"] is FreiHANDDataset
