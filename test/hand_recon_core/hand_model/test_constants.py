"""Tests of the hand-model constants."""

from __future__ import annotations

import pytest

from hand_recon_core.hand_model.constants import (
    FINGER_JOINTS,
    KINEMATIC_JOINT_NAMES,
    MANO_PARENTS,
    TIP_PARENTS,
    check_side,
    depth_levels,
)


def test_mano_tree_and_chains():
    assert len(MANO_PARENTS) == len(KINEMATIC_JOINT_NAMES) == 16
    for finger, chain in FINGER_JOINTS.items():
        assert MANO_PARENTS[chain[0]] == 0
        assert MANO_PARENTS[chain[1]] == chain[0] and MANO_PARENTS[chain[2]] == chain[1]
        assert all(KINEMATIC_JOINT_NAMES[j].startswith(finger) for j in chain)
    assert TIP_PARENTS == (15, 3, 6, 12, 9)


def test_depth_levels():
    assert depth_levels(MANO_PARENTS) == [[0], [1, 4, 7, 10, 13], [2, 5, 8, 11, 14], [3, 6, 9, 12, 15]]
    with pytest.raises(ValueError):
        depth_levels([-1, 2, 0])


def test_check_side():
    assert check_side("left") == "left"
    with pytest.raises(ValueError):
        check_side("both")
