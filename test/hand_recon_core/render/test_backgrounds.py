"""Tests of hand_recon_core.render.backgrounds: shapes, ranges, determinism, image folders."""

import cv2
import numpy as np
import pytest

from hand_recon_core.render.backgrounds import (
    ImageFolderBackgrounds,
    checker_background,
    gradient_background,
    noise_background,
    random_background,
    stripes_background,
)


@pytest.mark.parametrize("fn", [gradient_background, noise_background, checker_background, stripes_background])
def test_procedural_backgrounds_are_deterministic_images(fn):
    a = fn((24, 40), np.random.default_rng(3))
    b = fn((24, 40), np.random.default_rng(3))
    c = fn((24, 40), np.random.default_rng(4))
    assert a.shape == (24, 40, 3) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() > 0


def test_gradient_with_given_colours_spans_them():
    g = gradient_background((16, 16), np.random.default_rng(0), colors=[(0, 0, 0), (1, 1, 1)])
    np.testing.assert_allclose([g.min(), g.max()], [0.0, 1.0], atol=1e-6)


def test_image_folder_backgrounds(tmp_path):
    rng = np.random.default_rng(0)
    img = np.zeros((30, 50, 3), dtype=np.uint8)
    img[..., 2] = 255  # pure red in BGR
    cv2.imwrite(str(tmp_path / "a.png"), img)
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "sub" / "b.jpg"), np.full((40, 20, 3), 128, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    src = ImageFolderBackgrounds(tmp_path)
    assert len(src) == 2
    out = [src.sample((16, 24), np.random.default_rng(s)) for s in range(6)]
    for o in out:
        assert o.shape == (16, 24, 3) and o.dtype == np.float32 and 0 <= o.min() and o.max() <= 1
    red = [o for o in out if o[..., 0].mean() > 0.9]
    assert red and all(o[..., 1].max() < 0.05 for o in red)  # RGB order
    np.testing.assert_array_equal(src.sample((8, 8), np.random.default_rng(1)),
                                  src.sample((8, 8), np.random.default_rng(1)))
    mixed = random_background((8, 8), rng, images=src, image_probability=1.0)
    assert mixed.shape == (8, 8, 3)
    with pytest.raises(FileNotFoundError):
        ImageFolderBackgrounds(tmp_path / "sub" / "missing")


def test_random_background_kinds():
    for seed in range(8):
        bg = random_background((12, 12), np.random.default_rng(seed))
        assert bg.shape == (12, 12, 3)
    with pytest.raises(ValueError):
        random_background((4, 4), np.random.default_rng(0), kinds=("plaid",))
