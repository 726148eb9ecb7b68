"""Tests of the mesh checks on small hand-built meshes."""

from __future__ import annotations

import numpy as np

from hand_recon_core.hand_model.mesh_checks import (
    face_normals,
    is_closed_manifold,
    non_manifold_vertices,
    penetration,
    self_intersections,
    signed_volume,
    vertex_normals,
)

# Unit cube, faces CCW seen from outside.
CUBE_V = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float)
CUBE_F = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5],
                   [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]])


def test_cube():
    assert is_closed_manifold(CUBE_F)
    assert len(non_manifold_vertices(CUBE_F, 8)) == 0
    assert np.isclose(signed_volume(CUBE_V, CUBE_F), 1.0)
    assert np.isclose(signed_volume(CUBE_V, CUBE_F[:, ::-1]), -1.0)
    n = face_normals(CUBE_V, CUBE_F)
    np.testing.assert_allclose(n[0], [0, 0, -1])
    np.testing.assert_allclose(np.linalg.norm(vertex_normals(CUBE_V, CUBE_F), axis=1), 1.0)
    assert len(self_intersections(CUBE_V, CUBE_F)) == 0


def test_open_or_inconsistent_meshes_are_not_closed():
    assert not is_closed_manifold(CUBE_F[:-1])
    flipped = CUBE_F.copy()
    flipped[0] = flipped[0, ::-1]
    assert not is_closed_manifold(flipped)


def test_two_crossing_triangles_intersect():
    v = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [0.5, 0.5, -1], [0.5, 0.5, 1], [1.5, 1.5, 0.5]], float)
    f = np.array([[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(self_intersections(v, f), [[0, 1]])
    far = v.copy()
    far[3:] += [5.0, 0, 0]
    assert len(self_intersections(far, f)) == 0


def test_penetration_sign():
    signed, _ = penetration(np.array([[0.5, 0.5, 0.9], [0.5, 0.5, 1.2]]), CUBE_V, CUBE_F)
    assert signed[0] < 0 < signed[1]


def test_penetration_search_radius_keeps_near_points_exact(open_right):
    v = open_right.v_template.astype(np.float64)
    f = open_right.faces
    rng = np.random.default_rng(0)
    pts = v[rng.integers(0, len(v), 300)] + rng.normal(scale=0.02, size=(300, 3))
    exact, idx = penetration(pts, v, f)
    cut, idx2 = penetration(pts, v, f, max_distance=0.01)
    near = np.linalg.norm(pts - v[idx], axis=1) <= 0.01
    assert 0 < near.sum() < len(pts) and np.array_equal(idx, idx2)
    np.testing.assert_array_equal(cut[near], exact[near])
    np.testing.assert_allclose(cut[~near], np.linalg.norm(pts - v[idx], axis=1)[~near])  # nearest-vertex distance
    assert np.all(cut[~near] >= exact[~near] - 1e-12)  # an upper bound of the surface distance


def test_inside_tests_on_the_open_hand(open_right):
    from hand_recon_core.hand_model.mesh_checks import points_inside

    v = open_right.v_template.astype(np.float64)
    f = open_right.faces
    n = vertex_normals(v, f)
    assert points_inside(v - 1e-3 * n, v, f).all()
    assert not points_inside(v + 2e-4 * n, v, f).any()
    signed, _ = penetration(v - 1e-3 * n, v, f)
    np.testing.assert_allclose(np.median(signed), -1e-3, atol=1e-4)
