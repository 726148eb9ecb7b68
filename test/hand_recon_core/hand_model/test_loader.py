"""Tests of load_hand_model / load_hand_model_data sources and errors."""

from __future__ import annotations

import pytest

from hand_recon_core.hand_model.loader import OPEN_MODEL_PATH, load_hand_model, load_hand_model_data


def test_open_model_sides():
    right = load_hand_model_data("open", "right")
    left = load_hand_model_data("open", "left")
    assert (right.side, left.side) == ("right", "left")
    assert right.model_id == "open-v1-right" and left.model_id == "open-v1-left"


def test_npz_path_and_errors(tmp_path):
    assert load_hand_model(OPEN_MODEL_PATH, side="left").side == "left"
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_hand_model(tmp_path / "missing.npz")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported"):
        load_hand_model(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError, match="MANO_RIGHT.pkl"):
        load_hand_model(tmp_path)
    with pytest.raises(ValueError):
        load_hand_model("open", side="middle")
    with pytest.raises(ValueError, match="pose_repr"):
        load_hand_model("open", pose_repr="quaternion")
