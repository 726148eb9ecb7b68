"""Tests for the MANO parameter conversions shared by the loaders."""

from __future__ import annotations

import numpy as np
import pytest

from hand_recon_core.data.datasets._mano_params import ManoParamConverter, build_converter, change_param_frame
from hand_recon_core.data.sample import LEFT, RIGHT


def test_rest_joints_follow_the_shape(hand_models):
    right, _ = hand_models
    conv = ManoParamConverter(hand_models)
    betas = np.linspace(-1, 1, 10)
    expected = right.dense_regressor() @ (right.v_template + right.shapedirs @ betas)
    assert np.allclose(conv.rest_joints(betas, RIGHT), expected)


def test_relative_and_pca_poses(hand_models):
    _, left = hand_models
    conv = ManoParamConverter(hand_models)
    rel = np.full(45, 0.1)
    assert np.allclose(conv.from_relative_pose(rel, LEFT), left.hands_mean + 0.1)
    coeffs = np.zeros(45)
    coeffs[2] = 0.5
    assert np.allclose(conv.from_pca_pose(coeffs, LEFT), left.hands_mean + 0.5 * left.hands_components[2])
    assert np.allclose(conv.from_pca_pose(np.zeros(6), LEFT), left.hands_mean)


def test_change_of_frame_moves_the_mesh_rigidly(hand_models, tools):
    right, _ = hand_models
    conv = ManoParamConverter(hand_models)
    betas = np.linspace(0.5, -0.5, 10)
    orient, transl = np.array([0.3, -1.2, 0.4]), np.array([0.1, -0.2, 0.9])
    a, b = tools.rotation("y", 30) @ tools.rotation("x", -70), np.array([0.05, 0.5, -0.3])
    new_orient, new_transl = change_param_frame(orient, transl, conv.rest_joints(betas, RIGHT)[0], a, b)
    expected = tools.rigid_mesh(right, betas, orient, transl) @ a.T + b
    assert np.allclose(tools.rigid_mesh(right, betas, new_orient, new_transl), expected, atol=1e-9)


def test_converter_needs_every_side(hand_models, caplog):
    right, _ = hand_models
    with pytest.raises(ValueError, match="left hand model"):
        build_converter([right], "toy", (RIGHT, LEFT))
    with pytest.raises(ValueError, match="two hand models"):
        ManoParamConverter([right, right])
    assert build_converter(None, "toy", (RIGHT,)) is None
    assert "has_params=False" in caplog.text
