"""Tests for hand_recon_core.metrics.surface."""

import numpy as np
import pytest
import torch

from hand_recon_core.metrics.surface import (
    f_score,
    interpenetration_volume,
    precision_recall,
    winding_numbers,
)

# Unit cube [0, 1]^3: 8 corners (bit i of the index = coordinate i), 12 triangles counter-clockwise seen from
# outside, so cross(v1 - v0, v2 - v0) points outward.
CUBE_VERTS = np.array([[(i >> 0) & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)], dtype=np.float64)
CUBE_FACES = np.array(
    [
        [0, 2, 1], [1, 2, 3],  # z = 0, normal -z
        [4, 5, 6], [5, 7, 6],  # z = 1, normal +z
        [0, 1, 4], [1, 5, 4],  # y = 0, normal -y
        [2, 6, 3], [3, 6, 7],  # y = 1, normal +y
        [0, 4, 2], [2, 4, 6],  # x = 0, normal -x
        [1, 3, 5], [3, 7, 5],  # x = 1, normal +x
    ],
    dtype=np.int64,
)  # fmt: skip


def _cube(side, origin):
    return CUBE_VERTS * side + np.asarray(origin, dtype=np.float64)


def test_cube_faces_point_outward():
    tri = CUBE_VERTS[CUBE_FACES]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    outward = tri.mean(1) - 0.5
    assert np.all(np.einsum("fi,fi->f", normals, outward) > 0)


def test_winding_numbers_inside_outside():
    pts = np.array([[0.5, 0.5, 0.5], [0.1, 0.9, 0.2], [1.5, 0.5, 0.5], [-3.0, 2.0, 0.0]])
    w = winding_numbers(pts, CUBE_VERTS, CUBE_FACES)
    np.testing.assert_allclose(w, [1.0, 1.0, 0.0, 0.0], atol=1e-9)
    flipped = winding_numbers(pts, CUBE_VERTS, CUBE_FACES[:, ::-1])
    np.testing.assert_allclose(flipped, -w, atol=1e-9)
    # Open box (top removed): the centre sees 5/6 of the full solid angle.
    w_open = winding_numbers(pts[:1], CUBE_VERTS, CUBE_FACES[[0, 1, 4, 5, 6, 7, 8, 9, 10, 11]])
    np.testing.assert_allclose(w_open, [5.0 / 6.0], atol=1e-9)


def test_interpenetration_of_overlapping_cubes_matches_analytic():
    side, voxel = 0.1, 0.005
    a = _cube(side, [0.0, 0.0, 0.0])
    b = _cube(side, [0.05, 0.02, 0.03])
    expected = 0.05 * 0.08 * 0.07  # overlap box, m^3
    vol = interpenetration_volume(a, CUBE_FACES, b, CUBE_FACES, voxel_size=voxel)
    assert vol == pytest.approx(expected, rel=1e-9)  # grid aligned with the overlap box: exact
    # Offsets that are not multiples of the voxel: within one voxel layer per face of the overlap box.
    b2 = _cube(side, [0.0437, 0.0213, -0.0371])
    expected2 = (side - 0.0437) * (side - 0.0213) * (side - 0.0371)
    vol2 = interpenetration_volume(torch.tensor(a), CUBE_FACES, b2, torch.tensor(CUBE_FACES), voxel_size=voxel)
    dims = np.array([side - 0.0437, side - 0.0213, side - 0.0371])
    tolerance = voxel * (dims[0] * dims[1] + dims[1] * dims[2] + dims[0] * dims[2])
    assert abs(vol2 - expected2) <= tolerance
    # Symmetric in its arguments.
    assert interpenetration_volume(b, CUBE_FACES, a, CUBE_FACES, voxel_size=voxel) == pytest.approx(vol)


def test_interpenetration_zero_for_separated_or_touching_cubes():
    a = _cube(0.1, [0.0, 0.0, 0.0])
    assert interpenetration_volume(a, CUBE_FACES, _cube(0.1, [0.2, 0.0, 0.0]), CUBE_FACES) == 0.0
    assert interpenetration_volume(a, CUBE_FACES, _cube(0.1, [0.1, 0.0, 0.0]), CUBE_FACES) == 0.0
    # Bounding boxes overlap but the meshes do not: a small cube in the empty corner of a tetrahedron's box.
    tet_v = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]])
    tet_f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    far_corner = _cube(0.03, [0.07, 0.07, 0.07])
    assert interpenetration_volume(tet_v, tet_f, far_corner, CUBE_FACES) == 0.0


def test_interpenetration_guards():
    a = _cube(1.0, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        interpenetration_volume(a, CUBE_FACES, a, CUBE_FACES, voxel_size=0.001)
    with pytest.raises(ValueError):
        interpenetration_volume(a, CUBE_FACES.astype(float), a, CUBE_FACES)


def test_f_score_hand_computed():
    gt = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    pred = np.array([[0.003, 0.0, 0.0], [1.01, 0.0, 0.0], [5.0, 5.0, 5.0]])
    # pred->gt distances 0.003, 0.01, far; gt->pred 0.003, 0.01
    assert precision_recall(pred, gt, 0.005) == pytest.approx((1 / 3, 1 / 2))
    assert f_score(pred, gt, 0.005) == pytest.approx(0.4)
    assert precision_recall(pred, gt, 0.015) == pytest.approx((2 / 3, 1.0))
    assert f_score(pred, gt, 0.015) == pytest.approx(0.8)
    assert f_score(pred + 100.0, gt, 0.015) == 0.0


def test_f_score_batched_and_procrustes():
    rng = np.random.default_rng(0)
    gt = rng.normal(scale=0.05, size=(2, 40, 3))
    pred = 1.2 * gt + 0.1
    assert f_score(pred, gt, 0.005) < 0.5
    assert f_score(pred, gt, 0.005, procrustes=True) == pytest.approx(1.0)
