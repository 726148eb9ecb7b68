"""Tests of hand_recon_core.render.soft_rasterizer: gradients, optimisation, limit to the hard rasterizer."""

import numpy as np
import pytest
import torch

from hand_recon_core.render.primitives import sphere_mesh
from hand_recon_core.render.rasterizer import compute_vertex_normals, default_sh, render_meshes, sh_shading
from hand_recon_core.render.soft_rasterizer import sh_shading_torch, soft_rasterize, vertex_normals_torch


@pytest.fixture(autouse=True)
def one_thread():
    """The scenes are tiny: intra-op threads only add overhead (and stall on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


K8 = torch.tensor([[8.0, 0.0, 4.0], [0.0, 8.0, 4.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def test_gradcheck_two_triangles_silhouette_and_colour():
    torch.manual_seed(0)
    verts = torch.tensor([[[-0.3, -0.35, 1.0], [0.35, -0.2, 1.1], [-0.1, 0.4, 0.9],
                           [0.2, 0.1, 1.3], [0.5, 0.45, 1.2], [-0.2, 0.3, 1.4]]], dtype=torch.float64,
                         requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    colors = torch.rand(1, 6, 3, dtype=torch.float64, requires_grad=True)

    def render(v, c):
        out = soft_rasterize(v, faces, K8, (8, 8), c, sigma=0.5, gamma=0.05, background=(0.2, 0.3, 0.4))
        return out.silhouette, out.image

    # all outputs, through random projections of the Jacobian (one backward pass per output tensor)
    assert torch.autograd.gradcheck(render, (verts, colors), eps=1e-6, atol=1e-5, fast_mode=True)

    def silhouette(v):
        k6 = torch.tensor([[8.0, 0.0, 3.0], [0.0, 8.0, 3.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        return soft_rasterize(v, faces[:1], k6, (6, 6), sigma=0.5).silhouette

    # the full Jacobian of one triangle's silhouette
    assert torch.autograd.gradcheck(silhouette, (verts[:, :3].detach().requires_grad_(),), eps=1e-6, atol=1e-5)


def test_silhouette_only_and_shapes():
    verts = torch.tensor([[[-0.3, -0.35, 1.0], [0.35, -0.2, 1.1], [-0.1, 0.4, 0.9]]] * 2, dtype=torch.float32)
    out = soft_rasterize(verts, torch.tensor([[0, 1, 2]]), K8.float(), (8, 6))
    assert out.image is None and out.silhouette.shape == (2, 8, 6)
    assert out.silhouette.min() >= 0 and out.silhouette.max() <= 1
    torch.testing.assert_close(out.silhouette[0], out.silhouette[1])
    # a face behind the near plane is dropped; an empty image is background
    colors = torch.ones(2, 3, 3)
    behind = soft_rasterize(-verts, torch.tensor([[0, 1, 2]]), K8.float(), (8, 6), colors, background=0.25)
    assert behind.silhouette.abs().max() == 0
    torch.testing.assert_close(behind.image, torch.full((2, 8, 6, 3), 0.25))


def test_soft_silhouette_approaches_the_hard_one_as_sigma_shrinks():
    v, f = sphere_mesh(0.2, rings=12, segments=24, center=(0.02, 0.01, 1.0))
    K = np.array([[60.0, 0.0, 32.0], [0.0, 60.0, 32.0], [0.0, 0.0, 1.0]])
    hard = (render_meshes([v], [f], [np.ones_like(v)], K, (64, 64), antialias=False).mesh_id >= 0).astype(float)
    errors = []
    for sigma in (1.0, 0.1, 1e-3):
        soft = soft_rasterize(torch.tensor(v, dtype=torch.float64)[None], torch.tensor(f), torch.tensor(K),
                              (64, 64), sigma=sigma).silhouette[0].numpy()
        errors.append(np.abs(soft - hard).mean())
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 2e-3
    # colour with a sharp depth blend: the front surface's colour, background outside
    colors = torch.tensor([[0.9, 0.5, 0.1]], dtype=torch.float64).expand(1, len(v), 3)
    img = soft_rasterize(torch.tensor(v, dtype=torch.float64)[None], torch.tensor(f), torch.tensor(K), (64, 64),
                         colors, sigma=1e-3, gamma=1e-4, background=(0.0, 0.0, 1.0)).image[0].numpy()
    np.testing.assert_allclose(img[32, 32], [0.9, 0.5, 0.1], atol=1e-6)
    np.testing.assert_allclose(img[1, 1], [0.0, 0.0, 1.0], atol=1e-6)


def test_gradient_descent_moves_a_triangle_onto_the_target_silhouette():
    K = torch.tensor([[16.0, 0.0, 8.0], [0.0, 16.0, 8.0], [0.0, 0.0, 1.0]])
    base = torch.tensor([[-0.25, -0.2, 1.0], [0.3, -0.15, 1.0], [0.0, 0.3, 1.0]])
    faces = torch.tensor([[0, 1, 2]])
    target_shift = torch.tensor([0.12, 0.08, 0.0])
    with torch.no_grad():
        target = soft_rasterize((base + target_shift)[None], faces, K, (16, 16), sigma=0.3).silhouette
    shift = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([shift], lr=0.02)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        sil = soft_rasterize((base + shift * torch.tensor([1.0, 1.0, 0.0]))[None], faces, K, (16, 16),
                             sigma=0.3).silhouette
        loss = ((sil - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    torch.testing.assert_close(shift.detach()[:2], target_shift[:2], atol=0.01, rtol=0)


def test_torch_normals_and_sh_match_numpy():
    v, f = sphere_mesh(1.0, rings=6, segments=8)
    v = v * np.array([1.0, 0.5, 0.8], dtype=np.float32)
    n_np = compute_vertex_normals(v, f)
    n_t = vertex_normals_torch(torch.tensor(v)[None], torch.tensor(f, dtype=torch.long))[0]
    np.testing.assert_allclose(n_t.numpy(), n_np, atol=1e-5)
    sh = default_sh() + np.random.default_rng(0).normal(0, 0.1, 27)
    np.testing.assert_allclose(sh_shading_torch(torch.tensor(n_np, dtype=torch.float64), torch.tensor(sh)).numpy(),
                               sh_shading(n_np, sh), rtol=1e-5, atol=1e-6)


def test_colour_stays_finite_far_from_a_sliver_and_for_a_degenerate_face():
    """A long diagonal sliver: the corners of its pixel box are far outside the sharp coverage (D underflows to 0)
    and a deep face (z ~ 0.4 m, gamma 1e-4) makes the background weight underflow too: the log-domain blend must
    still give the background there, with finite gradients. A zero-area face must not produce NaN either."""
    K = torch.tensor([[180.0, 0.0, 0.0], [0.0, 180.0, 0.0], [0.0, 0.0, 1.0]])
    z = 0.4
    pix = torch.tensor([[1.0, 1.0], [30.0, 29.0], [30.0, 30.5], [10.0, 10.0], [20.0, 20.0], [15.0, 15.0]])
    verts = torch.cat([pix * z / 180.0, torch.full((6, 1), z)], dim=1)[None].requires_grad_(True)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])  # the second face is collinear: zero area
    colors = torch.full((1, 6, 3), 0.7)
    out = soft_rasterize(verts, faces, K, (32, 32), vertex_colors=colors, sigma=0.25, gamma=1e-4, background=0.2)
    assert torch.isfinite(out.image).all()
    assert out.image[0, 28, 2].allclose(torch.tensor(0.2), atol=1e-4)  # far corner of the sliver's box
    assert out.image[0, 29, 29].allclose(torch.tensor(0.7), atol=1e-3)  # on the sliver
    out.image.sum().backward()
    assert torch.isfinite(verts.grad).all()
