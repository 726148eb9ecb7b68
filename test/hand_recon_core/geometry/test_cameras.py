"""Tests for hand_recon_core.geometry.cameras."""

import pytest
import torch

from hand_recon_core.geometry.cameras import (
    backproject_pixels,
    crop_intrinsics,
    crop_weak_perspective_to_full_translation,
    normalized_to_pixels,
    pixels_to_normalized,
    project_points,
    translation_to_weak_perspective,
    weak_perspective_project,
    weak_perspective_to_translation,
)

K = torch.tensor([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def test_project_known_point():
    # 0.1 m right, 0.05 m down, 1 m ahead: u = 500*0.1 + 320 = 370, v = 500*0.05 + 240 = 265.
    p = torch.tensor([[0.1, 0.05, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(project_points(p, K), torch.tensor([[370.0, 265.0]], dtype=torch.float64))
    # Twice as far: half the offset from the principal point.
    torch.testing.assert_close(project_points(2 * p, K), torch.tensor([[370.0, 265.0]], dtype=torch.float64))
    torch.testing.assert_close(project_points(p * torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64), K),
                               torch.tensor([[345.0, 252.5]], dtype=torch.float64))


def test_project_batched_intrinsics_and_min_depth():
    pts = torch.tensor([[[0.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]]])
    ks = torch.stack([K.float(), K.float()])
    ks[1, 0, 2] = 100.0
    uv = project_points(pts, ks)
    torch.testing.assert_close(uv, torch.tensor([[[320.0, 240.0]], [[100.0, 240.0]]]))
    behind = torch.tensor([[0.1, 0.0, 0.0]])
    assert torch.isfinite(project_points(behind, K.float(), min_depth=1e-3)).all()


def test_backproject_inverts_projection():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(4, 10, 3, generator=g, dtype=torch.float64) - 0.5
    pts[..., 2] += 1.5
    k_skew = K.clone()
    k_skew[0, 1] = 3.0
    uv = project_points(pts, k_skew)
    torch.testing.assert_close(backproject_pixels(uv, pts[..., 2], k_skew), pts)
    with pytest.raises(ValueError):
        backproject_pixels(uv, pts[..., 2:], K)


def test_weak_perspective_projection_and_normalisation():
    pts = torch.tensor([[0.1, -0.2, 5.0]])
    cam = torch.tensor([2.0, 0.05, 0.1])
    torch.testing.assert_close(weak_perspective_project(pts, cam), torch.tensor([[0.3, -0.2]]))
    torch.testing.assert_close(normalized_to_pixels(torch.tensor([[-1.0, 0.0], [1.0, 1.0]]), 256),
                               torch.tensor([[0.0, 128.0], [256.0, 256.0]]))
    xy = torch.tensor([[0.3, -0.7]])
    torch.testing.assert_close(pixels_to_normalized(normalized_to_pixels(xy, 224), 224), xy)


def test_weak_perspective_translation_round_trip():
    cam = torch.tensor([[8.0, 0.01, -0.02], [3.0, 0.0, 0.1]], dtype=torch.float64)
    t = weak_perspective_to_translation(cam, focal=1000.0, size=256.0)
    # tz = 2 f / (s size) = 2000 / (8 * 256)
    torch.testing.assert_close(t[0], torch.tensor([0.01, -0.02, 2000.0 / 2048.0], dtype=torch.float64))
    torch.testing.assert_close(translation_to_weak_perspective(t, focal=1000.0, size=256.0), cam)


def test_weak_perspective_matches_perspective_for_planar_points():
    """For points at depth tz (Z = 0 in the model frame) weak and full perspective agree exactly."""
    f, size = 600.0, 224.0
    cam = torch.tensor([5.0, 0.02, -0.03], dtype=torch.float64)
    t = weak_perspective_to_translation(cam, f, size)
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.05, -0.04, 0.0], [-0.08, 0.02, 0.0]], dtype=torch.float64)
    k_crop = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], dtype=torch.float64)
    uv_persp = project_points(pts + t, k_crop)
    uv_weak = normalized_to_pixels(weak_perspective_project(pts, cam), size)
    torch.testing.assert_close(uv_persp, uv_weak)


def test_crop_to_full_image_translation():
    k_full = torch.tensor([[800.0, 0, 640.0], [0, 800.0, 360.0], [0, 0, 1]], dtype=torch.float64)
    center = torch.tensor([900.0, 200.0], dtype=torch.float64)
    box = 300.0
    out = 256.0
    cam = torch.tensor([6.0, 0.01, 0.02], dtype=torch.float64)
    t_full = crop_weak_perspective_to_full_translation(cam, center, box, k_full)
    # tz = 2 f / (s * box) = 1600 / 1800
    torch.testing.assert_close(t_full[2], torch.tensor(1600.0 / 1800.0, dtype=torch.float64))
    # Planar points projected with the full camera land where the crop prediction puts them.
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.03, -0.05, 0.0]], dtype=torch.float64)
    uv_full = project_points(pts + t_full, k_full)
    uv_crop = normalized_to_pixels(weak_perspective_project(pts, cam), out)
    uv_from_crop = center + (uv_crop - out / 2) * (box / out)
    torch.testing.assert_close(uv_full, uv_from_crop)
    # Same answer through the crop intrinsics and the crop-camera conversion.
    k_crop = crop_intrinsics(k_full, center, box, out)
    torch.testing.assert_close(project_points(pts + t_full, k_crop), uv_crop)


def test_crop_intrinsics_values():
    k_full = torch.tensor([[800.0, 0, 640.0], [0, 800.0, 360.0], [0, 0, 1]])
    k_crop = crop_intrinsics(k_full, torch.tensor([640.0, 360.0]), 400.0, 200.0)
    torch.testing.assert_close(k_crop, torch.tensor([[400.0, 0, 100.0], [0, 400.0, 100.0], [0, 0, 1]]))
