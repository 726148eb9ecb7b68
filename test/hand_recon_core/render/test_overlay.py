"""Tests of hand_recon_core.render.overlay."""

import numpy as np

from hand_recon_core.render.overlay import draw_keypoints, draw_overlay
from hand_recon_core.render.primitives import sphere_mesh

K = np.array([[80.0, 0.0, 32.0], [0.0, 80.0, 32.0], [0.0, 0.0, 1.0]])


def test_mesh_overlay_blends_only_where_the_mesh_is():
    image = np.full((64, 64, 3), 40, dtype=np.uint8)
    before = image.copy()
    v, f = sphere_mesh(0.1, center=(0.0, 0.0, 1.0))  # projected radius ~8 px around (32, 32)
    out = draw_overlay(image, [v], [f], K, mesh_colors=[(1.0, 0.0, 0.0)], alpha=0.5)
    np.testing.assert_array_equal(image, before)
    assert out.dtype == np.uint8 and out.shape == (64, 64, 3)
    assert out[32, 32, 0] > 100 and out[32, 32, 1] <= 40  # reddish, half transparent
    assert (out[:10] == 40).all() and (out[:, -10:] == 40).all()  # far from the mesh: untouched


def test_keypoints_and_skeleton_are_drawn_at_pixel_coordinates():
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    kp = np.array([[4.5, 4.5], [27.5, 4.5], [np.nan, np.nan]])
    draw_keypoints(image, kp, skeleton=[(0, 1), (1, 2)], color=(0.0, 1.0, 0.0), radius=2, thickness=1)
    assert image[4, 16, 1] > 100  # the line between the two points, row 4 (centre 4.5)
    assert image[4, 4, 1] > 100 and image[20, 20].sum() == 0
    out = draw_overlay(np.zeros((32, 32, 3), np.uint8), keypoints=[kp], skeleton=[(0, 1)])
    assert out[4, 16].sum() > 0
