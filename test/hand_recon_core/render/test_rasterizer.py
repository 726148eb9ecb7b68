"""Tests of hand_recon_core.render.rasterizer on hand-computed scenes and a brute-force reference."""

import numpy as np
import pytest

from hand_recon_core.render.primitives import sphere_mesh
from hand_recon_core.render.rasterizer import (
    AA_SAMPLE_OFFSETS,
    compute_vertex_normals,
    default_sh,
    sh_basis,
    sh_from_directional_light,
    sh_shading,
)
from hand_recon_core.render.rasterizer import render_meshes as render_project_convention


def render_meshes(vertices, faces, colors, K, *args, **kw):
    """The tests below reason in corner-origin pixel coordinates (pixel (i, j) centred at (j + 0.5, i + 0.5)):
    shift their K into the project convention (centres at integers) before calling the renderer."""
    K = np.array(K, dtype=np.float64)
    K[0, 2] -= 0.5
    K[1, 2] -= 0.5
    return render_project_convention(vertices, faces, colors, K, *args, **kw)


def test_project_convention_samples_pixel_centres_at_integer_coordinates():
    # pixel (i, j) is sampled at (u, v) = (j, i): a triangle around (3, 2) +- 0.3 covers exactly pixel (2, 3)
    K = np.array([[50.0, 0.0, 3.5], [0.0, 50.0, 3.5], [0.0, 0.0, 1.0]])
    tri = lift([(2.7, 1.7), (3.3, 1.7), (3.0, 2.3)], 1.0, K)
    res = render_project_convention([tri], [np.array([[0, 1, 2]])], [white(tri)], K, (8, 8), antialias=False)
    assert list(zip(*np.nonzero(res.mesh_id >= 0))) == [(2, 3)]

F = 10.0
K0 = np.array([[F, 0.0, 0.0], [0.0, F, 0.0], [0.0, 0.0, 1.0]])  # principal point at the image corner


def lift(uv, z, K=K0):
    """Camera-frame points (N, 3) that project to pixel coordinates ``uv`` (N, 2) at depths ``z``."""
    uv = np.asarray(uv, dtype=np.float64)
    z = np.broadcast_to(np.asarray(z, dtype=np.float64), (uv.shape[0],))
    rays = np.concatenate([uv, np.ones((uv.shape[0], 1))], axis=1) @ np.linalg.inv(K).T
    return rays * z[:, None]


def white(v):
    return np.ones((len(v), 3))


def brute_force(verts, faces, K, size, z_near):
    """Per-pixel ray / triangle intersection (float64): global face index (-1) and depth (inf) per pixel."""
    h, w = size
    v = np.concatenate(verts).astype(np.float64)
    offsets = np.cumsum([0] + [len(x) for x in verts[:-1]])
    f = np.concatenate([np.asarray(fi) + o for fi, o in zip(faces, offsets)])
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([jj, ii, np.ones_like(jj)], -1).reshape(-1, 3) @ np.linalg.inv(K).T
    best = np.full(h * w, np.inf)
    face = np.full(h * w, -1)
    for fi, tri in enumerate(f):
        m = v[tri].T
        g = np.linalg.solve(m, rays.T).T  # m @ g = ray
        z = 1.0 / g.sum(axis=1)
        hit = (g >= 0).all(axis=1) & (z >= z_near) & (z < best)
        best[hit], face[hit] = z[hit], fi
    return face.reshape(h, w), best.reshape(h, w)


def test_single_triangle_pixel_coverage_and_labels():
    # screen triangle (0.2, 0.2), (6.7, 0.2), (0.2, 6.7): centre (j + .5, i + .5) inside <=> i + j <= 5
    tri = lift([(0.2, 0.2), (6.7, 0.2), (0.2, 6.7)], 2.0)
    res = render_meshes([tri], [np.array([[0, 1, 2]])], [white(tri)], K0, (8, 8), antialias=False)
    i, j = np.mgrid[0:8, 0:8]
    inside = i + j <= 5
    assert inside.sum() == 21
    np.testing.assert_array_equal(res.mesh_id >= 0, inside)
    np.testing.assert_array_equal(res.mesh_id[inside], 0)
    np.testing.assert_array_equal(res.face_id[inside], 0)
    np.testing.assert_array_equal(res.face_id[~inside], -1)
    np.testing.assert_allclose(res.depth[inside], 2.0, rtol=1e-6)
    assert np.isinf(res.depth[~inside]).all()
    np.testing.assert_array_equal(res.bary[~inside], 0.0)
    assert res.image.dtype == np.float32 and res.image.shape == (8, 8, 3)
    assert res.depth.dtype == np.float32 and res.mesh_id.dtype == np.int32 and res.face_id.dtype == np.int32
    # both windings render (no back-face culling)
    back = render_meshes([tri], [np.array([[0, 2, 1]])], [white(tri)], K0, (8, 8), antialias=False)
    np.testing.assert_array_equal(back.mesh_id >= 0, inside)


def test_pixel_centre_convention_with_principal_point():
    # a point on the optical axis projects to (cx, cy) = (W/2, H/2): the corner between the 4 central pixels
    K = np.array([[50.0, 0.0, 4.0], [0.0, 50.0, 4.0], [0.0, 0.0, 1.0]])
    tri = lift([(3.6, 3.6), (4.0, 3.6), (3.6, 4.0)], 1.0, K)  # between the centres 3.5 and 4.5: covers none
    res = render_meshes([tri], [np.array([[0, 1, 2]])], [white(tri)], K, (8, 8), antialias=False)
    assert (res.mesh_id >= 0).sum() == 0
    tri = lift([(3.4, 3.4), (4.0, 3.4), (3.4, 4.0)], 1.0, K)  # contains pixel (3, 3)'s centre only
    res = render_meshes([tri], [np.array([[0, 1, 2]])], [white(tri)], K, (8, 8), antialias=False)
    assert list(zip(*np.nonzero(res.mesh_id >= 0))) == [(3, 3)]


def test_depth_is_exact_on_a_tilted_plane_and_barycentrics_are_perspective_correct():
    K = np.array([[40.0, 0.0, 16.0], [0.0, 40.0, 16.0], [0.0, 0.0, 1.0]])
    # plane z = 1 + 0.25 x - 0.15 y: quad corners well outside the 32x32 view
    xy = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    quad = np.concatenate([xy, (1.0 + 0.25 * xy[:, 0] - 0.15 * xy[:, 1])[:, None]], axis=1)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    res = render_meshes([quad], [faces], [white(quad)], K, (32, 32), antialias=False)
    assert (res.mesh_id == 0).all()
    jj, ii = np.meshgrid(np.arange(32) + 0.5, np.arange(32) + 0.5)
    xn, yn = (jj - 16.0) / 40.0, (ii - 16.0) / 40.0  # ray (xn, yn, 1)
    z_expected = 1.0 / (1.0 - 0.25 * xn + 0.15 * yn)
    np.testing.assert_allclose(res.depth, z_expected, rtol=1e-6)
    np.testing.assert_allclose(res.bary.sum(axis=-1), 1.0, atol=1e-6)
    assert (res.bary >= 0).all()
    # the barycentric combination of the face's vertices is the 3D point seen through the pixel centre
    point = np.einsum("hwk,hwkc->hwc", res.bary.astype(np.float64), quad[faces[res.face_id]])
    np.testing.assert_allclose(point[..., 2], z_expected, rtol=1e-5)
    np.testing.assert_allclose(point[..., 0] / point[..., 2], xn, atol=1e-5)
    np.testing.assert_allclose(point[..., 1] / point[..., 2], yn, atol=1e-5)


@pytest.mark.parametrize("near_first", [True, False])
def test_z_buffer_keeps_the_nearest_triangle_in_either_order(near_first):
    near = lift([(0.0, 0.0), (8.3, 0.0), (0.0, 8.3)], 1.0)  # covers the centres with i + j <= 7
    far = lift([(-1.0, -1.0), (20.0, -1.0), (-1.0, 20.0)], 1.5)  # covers the whole 8x8 view
    far = np.concatenate([far, lift([(1.0, 1.0)], 1.5)])  # spare vertex, unused
    tri = np.array([[0, 1, 2]])
    meshes = [(near, tri), (far, tri)] if near_first else [(far, tri), (near, tri)]
    res = render_meshes([m[0] for m in meshes], [m[1] for m in meshes], [white(m[0]) for m in meshes], K0,
                        (8, 8), antialias=False)
    near_id = 0 if near_first else 1
    i, j = np.mgrid[0:8, 0:8]
    in_near = i + j <= 7
    np.testing.assert_array_equal(res.mesh_id[in_near], near_id)
    np.testing.assert_array_equal(res.mesh_id[~in_near], 1 - near_id)
    np.testing.assert_allclose(res.depth[in_near], 1.0, rtol=1e-6)
    np.testing.assert_allclose(res.depth[~in_near], 1.5, rtol=1e-6)


def test_face_and_mesh_ids_match_brute_force_on_random_scenes():
    rng = np.random.default_rng(0)
    K = np.array([[30.0, 0.5, 12.0], [0.0, 28.0, 9.0], [0.0, 0.0, 1.0]])
    for _ in range(4):
        verts, faces, cols = [], [], []
        for _m in range(3):
            v = rng.normal(size=(18, 3)) * 0.4 + [0.0, 0.0, rng.uniform(0.8, 1.6)]
            verts.append(v)
            faces.append(rng.permutation(18).reshape(6, 3))  # 6 random, mutually intersecting triangles
            cols.append(rng.random((18, 3)))
        res = render_meshes(verts, faces, cols, K, (18, 24), antialias=False)
        face, depth = brute_force(verts, faces, K, (18, 24), 0.01)
        offsets = np.cumsum([0, 6, 6])
        got = np.where(res.mesh_id >= 0, offsets[res.mesh_id] + res.face_id, -1)
        np.testing.assert_array_equal(got, face)
        hit = face >= 0
        np.testing.assert_allclose(res.depth[hit], depth[hit], rtol=1e-6)
        np.testing.assert_allclose(res.bary[hit].sum(axis=-1), 1.0, atol=1e-6)


def test_near_plane_clips_triangles_partly_behind_the_camera():
    K = np.array([[40.0, 0.0, 32.0], [0.0, 40.0, 32.0], [0.0, 0.0, 1.0]])
    tri = np.array([[-1.0, -1.0, -0.5], [1.01, -0.23, 2.03], [0.2, 1.0, 0.3]])  # first vertex behind the camera
    f = np.array([[0, 1, 2]])
    for z_near in (0.01, 0.5, 1.0):
        res = render_meshes([tri], [f], [white(tri)], K, (64, 64), antialias=False, z_near=z_near)
        face, _ = brute_force([tri], [f], K, (64, 64), z_near)
        np.testing.assert_array_equal(res.face_id, face)
        assert face.max() == 0  # something stays visible
        assert res.depth[res.face_id >= 0].min() >= z_near * (1 - 1e-6)
    behind = tri.copy()
    behind[:, 2] = -1.0
    res = render_meshes([behind], [f], [white(tri)], K, (64, 64))
    assert (res.mesh_id == -1).all() and np.isfinite(res.image).all()


def test_closed_mesh_and_jittered_grid_have_no_cracks():
    # a plane of 2 * 16 * 16 jittered triangles filling the view (some vertices exactly on pixel centres)
    rng = np.random.default_rng(1)
    g = np.stack(np.meshgrid(np.linspace(-2, 34, 17), np.linspace(-2, 34, 17)), -1).reshape(-1, 2)
    inner = (g > 0).all(1) & (g < 32).all(1)
    g[inner] += rng.uniform(-0.9, 0.9, size=(inner.sum(), 2))
    on_centre = np.flatnonzero(inner)[::3]
    g[on_centre] = np.floor(g[on_centre]) + 0.5
    verts = lift(g, 1.0 + 0.1 * rng.random(len(g)))
    r, c = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    a = (r * 17 + c).reshape(-1)
    faces = np.concatenate([np.stack([a, a + 1, a + 18], 1), np.stack([a, a + 18, a + 17], 1)])
    res = render_meshes([verts], [faces], [white(verts)], K0, (32, 32), antialias=False)
    assert (res.mesh_id == 0).all()
    # a sphere seen from outside: its silhouette is filled
    v, f = sphere_mesh(0.2, rings=12, segments=20, center=(0.0, 0.0, 1.0))
    K = np.array([[60.0, 0.0, 16.0], [0.0, 60.0, 16.0], [0.0, 0.0, 1.0]])
    res = render_meshes([v], [f], [white(v)], K, (32, 32), antialias=False)
    jj, ii = np.meshgrid(np.arange(32) + 0.5, np.arange(32) + 0.5)
    radius = 60 * 0.2 / np.sqrt(1 - 0.04)  # projected silhouette radius (pixels)
    inside_disc = (jj - 16) ** 2 + (ii - 16) ** 2 < (0.93 * radius) ** 2
    assert (res.mesh_id[inside_disc] == 0).all()


def test_sh_basis_is_orthonormal():
    n = 200_000
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (1 + 5**0.5) * k
    r = np.sqrt(1 - z * z)
    dirs = np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)  # Fibonacci sphere (uniform)
    y = sh_basis(dirs)
    gram = 4 * np.pi * (y.T @ y) / n
    np.testing.assert_allclose(gram, np.eye(9), atol=2e-3)


def test_constant_sh_gives_uniform_shading():
    sh = np.zeros(27)
    sh[[0, 9, 18]] = [1.0, 2.0, 3.0]
    rng = np.random.default_rng(2)
    n = rng.normal(size=(100, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    shading = sh_shading(n, sh)
    np.testing.assert_allclose(shading, np.tile(np.array([1.0, 2.0, 3.0]) * 0.28209479, (100, 1)), rtol=1e-5)
    # rendered: a white sphere under that light is one flat colour
    v, f = sphere_mesh(0.2, center=(0.0, 0.0, 1.0))
    K = np.array([[60.0, 0.0, 16.0], [0.0, 60.0, 16.0], [0.0, 0.0, 1.0]])
    res = render_meshes([v], [f], [np.full((len(v), 3), 0.5)], K, (32, 32), sh_coeffs=sh, antialias=False)
    fg = res.mesh_id >= 0
    np.testing.assert_allclose(res.image[fg], np.tile(np.array([1.0, 2.0, 3.0]) * 0.5 * 0.28209479, (fg.sum(), 1)),
                               rtol=1e-5)


def test_directional_light_sh_approximates_the_clamped_cosine():
    rng = np.random.default_rng(3)
    n = rng.normal(size=(5000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    light = np.array([0.3, -0.5, -0.8])
    sh = sh_from_directional_light(light, intensity=0.8, ambient=0.2, color=(1.0, 0.5, 0.25))
    shading = sh_shading(n, sh)
    target = 0.2 + 0.8 * np.maximum(0.0, n @ (light / np.linalg.norm(light)))
    np.testing.assert_allclose(shading[:, 0], target, atol=0.08)  # order-2 SH error of the clamped cosine
    np.testing.assert_allclose(shading[:, 1], 0.5 * shading[:, 0], rtol=1e-5)
    # the default light is frontal: surfaces facing the camera are bright, shading stays positive
    facing = sh_shading(np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]]), default_sh())[:, 0]
    assert facing[0] > 0.9 and 0.2 < facing[1] < 0.5


def test_vertex_normals_are_area_weighted_and_outward():
    # vertex 0 shared by a big face with normal +z and a small face with normal +x
    v = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, 0.1], [0, 0.1, 0]], dtype=float)
    f = np.array([[0, 1, 2], [0, 4, 3]])
    n = compute_vertex_normals(v, f)
    big, small = 2.0, 0.005  # twice the areas
    expected = np.array([small, 0.0, big]) / np.hypot(small, big)
    np.testing.assert_allclose(n[0], expected, rtol=1e-5)
    vs, fs = sphere_mesh(1.0, rings=10, segments=16)
    ns = compute_vertex_normals(vs, fs)
    assert (np.einsum("ij,ij->i", ns, vs) > 0.98).all()
    unused = compute_vertex_normals(np.zeros((2, 3)), np.zeros((0, 3), dtype=int))
    np.testing.assert_array_equal(unused, 0.0)


def test_antialiasing_blends_edges_and_keeps_label_maps_exact():
    K = np.array([[40.0, 0.0, 16.0], [0.0, 40.0, 16.0], [0.0, 0.0, 1.0]])
    tri = lift([(3.3, 4.1), (29.2, 9.7), (11.6, 28.4)], 1.0, K)
    f = np.array([[0, 1, 2]])
    sh = np.zeros(27)
    sh[[0, 9, 18]] = 1.0 / 0.28209479177387814  # shading 1: colour = albedo
    bg = np.ones((32, 32, 3))
    args = ([tri], [f], [np.zeros((3, 3))], K, (32, 32), sh, bg)
    hard = render_meshes(*args, antialias=False)
    soft = render_meshes(*args, antialias=True)
    for name in ("depth", "mesh_id", "face_id", "bary"):
        np.testing.assert_array_equal(getattr(soft, name), getattr(hard, name))
    assert set(np.unique(hard.image)) == {0.0, 1.0}
    mid = (soft.image[..., 0] > 0.01) & (soft.image[..., 0] < 0.99)
    assert mid.sum() > 30  # edge pixels get intermediate values
    levels = np.unique(np.round(soft.image[..., 0] * (1 + len(AA_SAMPLE_OFFSETS))))
    assert set(levels) <= set(range(len(AA_SAMPLE_OFFSETS) + 2))
    # pixels whose 3x3 neighbourhood is all triangle or all background keep their centre sample
    pad = np.pad(hard.mesh_id, 1, mode="edge")
    win = np.stack([pad[1 + dy:33 + dy, 1 + dx:33 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    uniform = (win == win[0]).all(axis=0)
    np.testing.assert_array_equal(soft.image[uniform], hard.image[uniform])
    np.testing.assert_allclose(soft.image.mean(), hard.image.mean(), atol=0.02)


def test_background_and_empty_scene():
    bg = np.random.default_rng(4).random((6, 7, 3)).astype(np.float32)
    res = render_meshes([], [], [], K0, (6, 7), background=bg)
    np.testing.assert_array_equal(res.image, bg)
    assert (res.mesh_id == -1).all() and (res.face_id == -1).all() and np.isinf(res.depth).all()
    black = render_meshes([], [], [], K0, (6, 7))
    np.testing.assert_array_equal(black.image, 0.0)
