"""Tests for hand_recon_core.inference.inputs (hand-computed cases)."""

from __future__ import annotations

import numpy as np
import pytest

from hand_recon_core.inference.inputs import InputError, default_intrinsics, validate_image, validate_intrinsics


def test_default_intrinsics_by_hand():
    K = default_intrinsics(640, 480)
    assert K.dtype == np.float64
    assert np.array_equal(K, [[640.0, 0.0, 319.5], [0.0, 640.0, 239.5], [0.0, 0.0, 1.0]])
    assert default_intrinsics(480, 640, focal_ratio=0.5)[0, 0] == 320.0
    with pytest.raises(ValueError):
        default_intrinsics(10, 10, focal_ratio=0.0)


def test_validate_image_returns_a_contiguous_view_or_copy():
    img = np.zeros((4, 6, 3), np.uint8)
    assert validate_image(img) is img
    strided = np.zeros((4, 12, 3), np.uint8)[:, ::2]
    out = validate_image(strided)
    assert out.flags["C_CONTIGUOUS"] and out.shape == (4, 6, 3)
    with pytest.raises(InputError, match="uint8"):
        validate_image(np.zeros((4, 6, 3), np.float64))


def test_validate_intrinsics_accepts_camera_info_and_rejects_uncalibrated():
    k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    assert validate_intrinsics(k).shape == (3, 3)
    with pytest.raises(InputError, match="uncalibrated"):
        validate_intrinsics([0.0] * 9, (640, 480))
    with pytest.raises(InputError, match="NaN"):
        validate_intrinsics(np.array([[np.inf, 0, 1], [0, 1, 1], [0, 0, 1]]))
