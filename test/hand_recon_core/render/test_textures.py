"""Tests of hand_recon_core.render.textures."""

import numpy as np

from hand_recon_core.render.textures import checker_colors, noise_colors, value_noise


def test_checker_colors_alternate_between_cells():
    uv = np.array([[0.05, 0.05], [0.15, 0.05], [0.15, 0.15], [0.05, 0.15], [-0.05, 0.05]])
    c = checker_colors(uv, 0.1, (1.0, 0.0, 0.0), (0.0, 0.0, 1.0))
    np.testing.assert_array_equal(c[:, 0], [1.0, 0.0, 1.0, 0.0, 0.0])
    assert c.dtype == np.float32 and c.shape == (5, 3)


def test_value_noise_is_deterministic_smooth_and_in_range():
    pts = np.random.default_rng(0).random((500, 3))
    a = value_noise(pts, np.random.default_rng(7), scale=0.3)
    b = value_noise(pts, np.random.default_rng(7), scale=0.3)
    c = value_noise(pts, np.random.default_rng(8), scale=0.3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0.02
    # continuity: nearby points get nearby values
    d = value_noise(pts + 1e-4, np.random.default_rng(7), scale=0.3)
    assert np.abs(a - d).max() < 0.02
    two_d = value_noise(pts[:, :2], np.random.default_rng(1), octaves=1)
    assert two_d.shape == (500,)


def test_noise_colors_blend_the_two_colours():
    pts = np.random.default_rng(0).random((200, 3)) * 0.1
    c = noise_colors(pts, np.random.default_rng(0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    np.testing.assert_allclose(c.sum(1), 1.0, atol=1e-6)
    assert c.min() >= 0 and c.max() <= 1 and c.dtype == np.float32
