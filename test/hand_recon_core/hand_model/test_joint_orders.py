"""Tests of the 21-joint orders against the published index tables (HAND_FACTS.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_recon_core.hand_model.joint_orders import (
    JOINT_NAMES,
    PARENTS,
    bone_lengths,
    bone_pairs,
    bone_vectors,
    conversion_index,
    convert_joints,
)

# openpose[i] = mano21[MANO_TO_OPENPOSE[i]] and interhand[i] = openpose[OPENPOSE_TO_INTERHAND[i]] (HAND_FACTS).
MANO_TO_OPENPOSE = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]
OPENPOSE_TO_INTERHAND = [4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13, 20, 19, 18, 17, 0]
OPENPOSE_PARENTS = [-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19]


def test_tables_match_published_indices():
    np.testing.assert_array_equal(conversion_index("mano21", "openpose21"), MANO_TO_OPENPOSE)
    np.testing.assert_array_equal(conversion_index("openpose21", "interhand21"), OPENPOSE_TO_INTERHAND)
    assert list(PARENTS["openpose21"]) == OPENPOSE_PARENTS
    assert list(PARENTS["mano21"][:16]) == [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
    assert list(PARENTS["mano21"][16:]) == [15, 3, 6, 12, 9]
    assert JOINT_NAMES["interhand21"][0] == "thumb_tip" and JOINT_NAMES["interhand21"][20] == "wrist"


def test_aliases_are_openpose():
    assert JOINT_NAMES["freihand21"] == JOINT_NAMES["openpose21"] == JOINT_NAMES["mediapipe21"]
    j = np.random.default_rng(0).normal(size=(21, 3))
    np.testing.assert_array_equal(convert_joints(j, "mediapipe21", "freihand21"), j)


@pytest.mark.parametrize("src", ["mano21", "openpose21", "interhand21"])
@pytest.mark.parametrize("dst", ["mano21", "openpose21", "interhand21"])
def test_round_trip_and_names(src, dst):
    rng = np.random.default_rng(1)
    j = rng.normal(size=(2, 5, 21, 3))
    out = convert_joints(j, src, dst)
    back = convert_joints(out, dst, src)
    np.testing.assert_array_equal(back, j)
    # Each output joint is the input joint with the same name.
    names_src, names_dst = JOINT_NAMES[src], JOINT_NAMES[dst]
    for i, n in enumerate(names_dst):
        np.testing.assert_array_equal(out[..., i, :], j[..., names_src.index(n), :])


def test_torch_tensors_keep_type_device_and_grad():
    j = torch.randn(4, 21, 2, dtype=torch.float64, requires_grad=True)
    out = convert_joints(j, "mano21", "interhand21")
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == (4, 21, 2)
    out.sum().backward()
    assert torch.all(j.grad == 1)
    np.testing.assert_array_equal(out.detach().numpy(), convert_joints(j.detach().numpy(), "mano21", "interhand21"))


def test_parents_are_consistent_across_orders():
    j = np.random.default_rng(2).normal(size=(21, 3))
    for order in ("openpose21", "interhand21"):
        conv = convert_joints(j, "mano21", order)
        np.testing.assert_allclose(np.sort(bone_lengths(conv, order)), np.sort(bone_lengths(j, "mano21")))


def test_bones():
    pairs = bone_pairs("openpose21")
    assert len(pairs) == 20 and pairs[0] == (0, 1) and pairs[-1] == (19, 20)
    j = torch.arange(63, dtype=torch.float32).reshape(21, 3)
    v = bone_vectors(j, "openpose21")
    assert v.shape == (20, 3)
    torch.testing.assert_close(v[3], j[4] - j[3])


def test_errors():
    with pytest.raises(KeyError, match="unknown joint order"):
        convert_joints(np.zeros((21, 3)), "mano21", "coco")
    with pytest.raises(ValueError):
        convert_joints(np.zeros((20, 3)), "mano21", "openpose21")
