"""Tests of the preview renders (needs the project rasterizer)."""

from __future__ import annotations

import numpy as np
import pytest

from hand_recon_core.hand_model.loader import load_hand_model

pytest.importorskip("hand_recon_core.render.rasterizer")

from hand_recon_core.hand_model.preview import render_hand, render_pose_grid  # noqa: E402


def test_left_preview_is_the_mirror_image_of_the_right():
    right, left = load_hand_model(side="right"), load_hand_model(side="left")
    vr = right().vertices[0].double().numpy()
    vl = left().vertices[0].double().numpy()
    ir = render_hand(vr, right.faces.numpy(), "right", size=64)
    il = render_hand(vl, left.faces.numpy(), "left", size=64)
    mask_r = np.abs(ir - ir[0, 0]).sum(-1) > 0.05
    mask_l = np.abs(il - il[0, 0]).sum(-1) > 0.05
    assert 0.1 < mask_r.mean() < 0.6
    assert (mask_r != mask_l[:, ::-1]).mean() < 0.04  # silhouettes mirror (anti-aliasing differs slightly)


def test_grid_shape():
    right, left = load_hand_model(side="right"), load_hand_model(side="left")
    grid = render_pose_grid(right, left, (("flat", "rest"), ("fist", "fist")), size=48)
    assert grid.shape == (2 * (48 + 24), 2 * 48, 3) and grid.dtype == np.uint8
