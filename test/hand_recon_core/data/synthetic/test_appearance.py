"""Skin tones and lighting of the synthetic engine: the palette spans light to dark, the sampled light is
plausible (lit, not blown out), colours are stored exactly."""

from __future__ import annotations

import numpy as np

from hand_recon_core.data.synthetic.appearance import (
    MAX_SHADING,
    SKIN_PALETTE,
    quantize_colors,
    sample_sh,
    skin_tone,
)
from hand_recon_core.render.rasterizer import sh_shading


def _luma(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb) @ np.array([0.2126, 0.7152, 0.0722])


def test_palette_runs_from_very_light_to_very_dark():
    luma = _luma(np.stack([skin_tone(t) for t in range(len(SKIN_PALETTE))]))
    assert np.all(np.diff(luma) < 0)  # darker along the palette
    assert luma[0] > 0.6 and luma[-1] < 0.2
    mid = skin_tone(2.5)
    np.testing.assert_allclose(mid, 0.5 * (SKIN_PALETTE[2] + SKIN_PALETTE[3]))
    np.testing.assert_allclose(skin_tone(-3), SKIN_PALETTE[0])  # clipped to the palette
    for rgb in SKIN_PALETTE:  # skin: red >= green >= blue
        assert rgb[0] >= rgb[1] >= rgb[2]


def test_sampled_lighting_lights_camera_facing_surfaces_without_blowing_out():
    rng = np.random.default_rng(0)
    toward_camera = np.array([[0.0, 0.0, -1.0]])  # normals facing the camera (z forward)
    sphere = rng.normal(size=(2000, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    front = []
    for _ in range(200):
        sh = sample_sh(rng)
        assert sh.shape == (27,) and sh.dtype == np.float32
        front.append(sh_shading(toward_camera, sh).mean())
        assert sh_shading(sphere, sh).max() <= MAX_SHADING * 1.2
    front = np.asarray(front)
    assert np.median(front) > 0.4 and front.min() > 0.1  # camera-facing skin is visibly lit


def test_colours_are_stored_as_exact_multiples_of_1_over_255():
    c = quantize_colors(np.random.default_rng(1).uniform(size=(50, 3)))
    np.testing.assert_allclose(c * 255, np.rint(c * 255), atol=1e-4)
