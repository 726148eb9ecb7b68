"""Tests for hand_recon_core.metrics.pck."""

import numpy as np
import pytest
import torch

from hand_recon_core.metrics.pck import DEFAULT_PCK_THRESHOLDS_M, auc, pck_curve


def test_default_thresholds_are_0_to_50mm_in_100_steps():
    assert DEFAULT_PCK_THRESHOLDS_M.shape == (100,)
    assert DEFAULT_PCK_THRESHOLDS_M[0] == 0.0 and DEFAULT_PCK_THRESHOLDS_M[-1] == pytest.approx(0.05)


def test_pck_and_auc_hand_computed():
    errors = [0.0, 0.01, 0.02, 0.04]
    thr = np.array([0.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    t, pck = pck_curve(errors, thr)
    # error <= threshold counts as correct
    np.testing.assert_allclose(pck, [0.25, 0.5, 0.75, 0.75, 1.0, 1.0])
    # trapezoid: 0.01 * (0.375 + 0.625 + 0.75 + 0.875 + 1.0) = 0.03625, / 0.05 range
    assert auc(t, pck) == pytest.approx(0.725)


def test_perfect_and_hopeless():
    t, pck = pck_curve(np.zeros((3, 21)))
    assert auc(t, pck) == pytest.approx(1.0)
    t, pck = pck_curve(np.full((3, 21), 1.0))
    assert auc(t, pck) == pytest.approx(0.0)


def test_per_joint_average_with_mask():
    errors = torch.tensor([[0.0, 0.1], [0.1, 0.1], [0.1, 0.0]])
    mask = np.array([[True, True], [False, True], [False, True]])
    _, pck = pck_curve(errors, [0.05], mask)
    # joint 0: 1/1 correct; joint 1: 1/3 correct; mean 2/3
    np.testing.assert_allclose(pck, [2.0 / 3.0])
    _, pck = pck_curve(errors, [0.05], np.zeros((3, 2), bool))
    assert np.isnan(pck).all()


def test_auc_rejects_bad_input():
    with pytest.raises(ValueError):
        auc([0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError):
        auc([0.0, 1.0], [1.0])
