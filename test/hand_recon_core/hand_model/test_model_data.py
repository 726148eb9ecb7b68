"""Tests of the HandModelData container: validation, mirroring, deterministic .npz storage."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hand_recon_core.hand_model.model_data import HandModelData, npz_bytes


def test_npz_round_trip_and_determinism(open_right, tmp_path):
    a = open_right.save_npz(tmp_path / "a.npz")
    b = open_right.save_npz(tmp_path / "b.npz")
    assert a.read_bytes() == b.read_bytes()
    back = HandModelData.load_npz(a)
    for name in ("v_template", "faces", "shapedirs", "posedirs", "weights", "hands_components", "hands_mean",
                 "tip_vertex_ids", "part_labels", "joint_limits", "joint_frames"):
        np.testing.assert_array_equal(getattr(back, name), getattr(open_right, name), err_msg=name)
    np.testing.assert_array_equal(back.dense_regressor(), open_right.dense_regressor())
    assert (back.side, back.model_id, back.tip_convention) == ("right", "open-v1-right", "open-v1")
    assert npz_bytes({"x": np.array(3)}) == npz_bytes({"x": np.array(3)})


def test_mirroring_twice_is_identity(open_right):
    left = open_right.mirrored()
    assert left.side == "left" and left.model_id == "open-v1-left"
    np.testing.assert_array_equal(left.v_template[:, 0], -open_right.v_template[:, 0])
    back = left.mirrored()
    assert back.model_id == "open-v1-right"
    for name in ("v_template", "faces", "shapedirs", "posedirs", "hands_components", "hands_mean"):
        np.testing.assert_array_equal(getattr(back, name), getattr(open_right, name), err_msg=name)


def test_rest_joints_and_validation(open_right):
    j = open_right.rest_joints()
    assert j.shape == (16, 3)
    np.testing.assert_allclose(j[0], 0.0, atol=1e-7)  # wrist at the origin
    with pytest.raises(ValueError, match="weights"):
        dataclasses.replace(open_right, weights=open_right.weights[:, :15]).validate()
    with pytest.raises(ValueError, match="parents"):
        dataclasses.replace(open_right, parents=np.arange(16) - 1).validate()
    with pytest.raises(ValueError, match="side"):
        dataclasses.replace(open_right, side="middle").validate()
