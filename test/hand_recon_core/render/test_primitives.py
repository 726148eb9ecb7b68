"""Tests of hand_recon_core.render.primitives: closed, outward, sized meshes."""

import numpy as np
import pytest

from hand_recon_core.render.primitives import box_mesh, cylinder_mesh, sphere_mesh, split_vertices


def signed_volume(v, f):
    v = v.astype(np.float64)
    return np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6.0


def assert_closed_and_outward(v, f):
    assert v.dtype == np.float32 and f.dtype == np.int32 and v.shape[1] == 3 and f.shape[1] == 3
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    # each undirected edge is shared by exactly two faces, traversed once in each direction (consistent winding)
    _, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert (counts == 2).all()
    assert len(np.unique(directed, axis=0)) == len(directed)
    assert signed_volume(v, f) > 0
    # every face normal points away from the centroid (all primitives are convex)
    centre = v.astype(np.float64).mean(0)
    vf = v.astype(np.float64)[f]
    n = np.cross(vf[:, 1] - vf[:, 0], vf[:, 2] - vf[:, 0])
    assert (np.einsum("ij,ij->i", n, vf.mean(1) - centre) > 0).all()


@pytest.mark.parametrize("segments", [1, 3])
def test_box(segments):
    v, f = box_mesh((0.1, 0.2, 0.3), center=(1.0, 2.0, 3.0), segments=segments)
    assert_closed_and_outward(v, f)
    assert f.shape[0] == 12 * segments**2
    assert len(v) == 6 * segments**2 + 2  # Euler: V = F / 2 + 2
    np.testing.assert_allclose(v.min(0), [0.95, 1.9, 2.85], atol=1e-6)
    np.testing.assert_allclose(v.max(0), [1.05, 2.1, 3.15], atol=1e-6)
    np.testing.assert_allclose(signed_volume(v - v.mean(0), f), 0.1 * 0.2 * 0.3, rtol=1e-4)
    v2, f2, uv = box_mesh(segments=segments, return_uv=True)
    assert uv.shape == (len(v2), 2) and uv.min() >= 0 and uv.max() <= 1


def test_cylinder():
    v, f, uv = cylinder_mesh(0.05, 0.2, segments=16, rings=3, return_uv=True)
    assert_closed_and_outward(v, f)
    assert len(v) == 16 * 4 + 2 and len(f) == 2 * 16 * 4
    np.testing.assert_allclose(v[:, 2].min(), -0.1, atol=1e-6)
    np.testing.assert_allclose(np.hypot(v[:-2, 0], v[:-2, 1]), 0.05, rtol=1e-5)
    assert uv.shape == (len(v), 2)
    # the inscribed 16-gon prism volume
    np.testing.assert_allclose(signed_volume(v, f), 0.5 * 16 * np.sin(2 * np.pi / 16) * 0.05**2 * 0.2, rtol=1e-4)


def test_sphere():
    v, f, uv = sphere_mesh(0.3, rings=8, segments=12, center=(0.0, 0.0, 1.0), return_uv=True)
    assert_closed_and_outward(v, f)
    assert len(v) == 7 * 12 + 2 and len(f) == 2 * 12 * 7
    np.testing.assert_allclose(np.linalg.norm(v - [0.0, 0.0, 1.0], axis=1), 0.3, rtol=1e-5)
    assert 0.8 * 4 / 3 * np.pi * 0.3**3 < signed_volume(v, f) < 4 / 3 * np.pi * 0.3**3
    assert uv.min() >= 0 and uv.max() <= 1


def test_split_vertices_keeps_geometry():
    v, f = box_mesh()
    v2, f2, src = split_vertices(v, f)
    assert len(v2) == 3 * len(f) and (v2 == v[src]).all()
    np.testing.assert_array_equal(v2[f2], v[f])
