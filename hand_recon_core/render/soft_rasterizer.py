"""Differentiable soft rasterizer (SoftRas-style) for silhouette and photometric losses.

Model (Liu et al., "Soft Rasterizer", ICCV 2019), evaluated at pixel centres ``(j, i)`` (the project's integer-centre
convention, as :mod:`.rasterizer`; camera frame x right, y down, z forward, metres):

* every face ``f`` covers pixel ``p`` with probability ``D_f(p) = sigmoid(delta * d^2 / sigma)``, ``d`` the
  screen distance (pixels) from the pixel centre to the triangle's boundary, ``delta = +1`` inside, ``-1``
  outside, ``sigma`` in pixels^2;
* silhouette ``S(p) = 1 - prod_f (1 - D_f(p))`` (computed as ``1 - exp(-sum_f softplus(delta d^2 / sigma))``);
* colour ``I(p) = sum_f w_f C_f(p) + w_b C_b`` with ``w_f = D_f exp(z_f / gamma) / (sum_k D_k exp(z_k / gamma) +
  exp(eps / gamma))``, ``w_b = exp(eps / gamma) / (...)``. ``z_f`` is the normalised inverse depth of the face
  at the pixel, ``(1 / z - 1 / z_far) / (1 / z_near - 1 / z_far)`` (1 at the near plane, 0 at the far plane,
  nearer is larger); ``C_f(p)`` the perspective-correct interpolation of the vertex colours at the pixel,
  with the screen barycentrics clamped to the triangle for pixels outside it.

Memory: only (face, pixel) pairs inside each face's screen bounding box dilated by the distance at which
``D`` falls below ``prob_cutoff`` are evaluated (``r = sqrt(sigma * log(1 / prob_cutoff - 1))`` pixels), so the
cost is ``O(sum_f (bbox_f + 2 r)^2)`` rather than ``O(F H W)``; autograd keeps roughly 0.2 kB per pair.
Faces with a vertex in front of ``z_near`` (or behind the camera) are dropped.

The module also has torch versions of the vertex normals and the SH shading of :mod:`.rasterizer` (same basis,
order and coefficient layout) to build shaded vertex colours for a photometric loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hand_recon_core.render.rasterizer import _SH_C0, _SH_C1, _SH_C2, _SH_C3, _SH_C4, DEFAULT_Z_NEAR

__all__ = ["SoftRenderResult", "soft_rasterize", "sh_shading_torch", "vertex_normals_torch"]


@dataclass
class SoftRenderResult:
    """Output of :func:`soft_rasterize` (``B`` images of ``H x W`` pixels).

    Attributes:
        silhouette: (B, H, W) soft coverage in [0, 1].
        image: (B, H, W, 3) blended colour, or None when no vertex colours were given.
    """

    silhouette: torch.Tensor
    image: torch.Tensor | None


def vertex_normals_torch(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals (differentiable), as :func:`.rasterizer.compute_vertex_normals`.

    Args:
        vertices: (B, V, 3) float, any frame.
        faces: (F, 3) long, counter-clockwise seen from outside.

    Returns:
        (B, V, 3) unit normals (zero for unused vertices) in the frame of ``vertices``.
    """
    v0, v1, v2 = (vertices[:, faces[:, k]] for k in range(3))
    fn = torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)  # (B, F, 3), |fn| = 2 area
    out = torch.zeros_like(vertices)
    for k in range(3):
        out = out.index_add(1, faces[:, k], fn)
    return F.normalize(out, dim=-1, eps=1e-12)


def sh_shading_torch(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """Lambertian SH shading, torch version of :func:`.rasterizer.sh_shading` (same basis and layout).

    Args:
        normals: (..., N, 3) unit normals, camera frame.
        sh: (..., 27) coefficients, channel-major (``reshape(3, 9)``: red, green, blue), broadcast against the
            leading dimensions of ``normals``.

    Returns:
        (..., N, 3) shading factor per RGB channel (multiply by the albedo).
    """
    x, y, z = normals.unbind(-1)
    basis = torch.stack([torch.full_like(x, _SH_C0), _SH_C1 * y, _SH_C1 * z, _SH_C1 * x, _SH_C2 * x * y,
                         _SH_C2 * y * z, _SH_C3 * (3.0 * z * z - 1.0), _SH_C2 * x * z, _SH_C4 * (x * x - y * y)],
                        dim=-1)  # (..., N, 9)
    coef = sh.reshape(*sh.shape[:-1], 3, 9).transpose(-1, -2)  # (..., 9, 3)
    return basis @ coef


def _cross2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _segment_dist2(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance (N,) from points p (N, 2) to segments [a, b] (N, 2)."""
    ab = b - a
    t = ((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)
    closest = a + t.clamp(0.0, 1.0).unsqueeze(-1) * ab
    return ((p - closest) ** 2).sum(-1)


def soft_rasterize(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, size: tuple[int, int],
                   vertex_colors: torch.Tensor | None = None, sigma: float = 1.0, gamma: float = 1e-4,
                   background: torch.Tensor | float | tuple[float, float, float] = 0.0,
                   z_near: float = DEFAULT_Z_NEAR, z_far: float = 100.0, eps: float = 1e-3,
                   prob_cutoff: float = 1e-4) -> SoftRenderResult:
    """Soft silhouettes and colour images of a batch of meshes (differentiable w.r.t. vertices and colours).

    Args:
        vertices: (B, V, 3) float, camera frame (x right, y down, z forward), metres.
        faces: (F, 3) long vertex indices shared by the batch.
        K: (3, 3) or (B, 3, 3) intrinsics in pixels, ``[[fx, skew, cx], [0, fy, cy], [0, 0, 1]]`` (pixel
            centres at integers, the project convention).
        size: (H, W) in pixels.
        vertex_colors: optional (B, V, 3) RGB per vertex (e.g. albedo * SH shading); None renders only the
            silhouette.
        sigma: sharpness of the coverage, pixels^2 (smaller is sharper; the hard silhouette as sigma -> 0).
        gamma: sharpness of the depth blending (smaller is closer to a z-buffer).
        background: background colour: a float, (3,), or (B, H, W, 3) tensor.
        z_near: near plane (metres); faces with a vertex nearer than this are dropped.
        z_far: far plane (metres) of the depth normalisation.
        eps: background "depth" in the blending (normalised inverse-depth units).
        prob_cutoff: coverage below which a (face, pixel) pair is not evaluated (sets the bbox dilation).

    Returns:
        :class:`SoftRenderResult` with silhouette (B, H, W) and image (B, H, W, 3) (or None).
    """
    h, w = int(size[0]), int(size[1])
    bsz, n_verts = vertices.shape[:2]
    dev, dt = vertices.device, vertices.dtype
    faces = faces.to(device=dev, dtype=torch.long)
    n_faces = faces.shape[0]
    K = torch.as_tensor(K, device=dev, dtype=dt).expand(bsz, 3, 3)

    z = vertices[..., 2]
    zs = z.clamp_min(z_near)  # safe division; faces with z < z_near are dropped below
    u = (K[:, None, 0, 0] * vertices[..., 0] + K[:, None, 0, 1] * vertices[..., 1]) / zs + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * vertices[..., 1] / zs + K[:, None, 1, 2]
    uv = torch.stack([u, v], dim=-1)  # (B, V, 2)
    tri = uv[:, faces]  # (B, F, 3, 2)
    tri_iz = (1.0 / zs)[:, faces]  # (B, F, 3)

    radius = math.sqrt(sigma * math.log(1.0 / prob_cutoff - 1.0))
    with torch.no_grad():
        area = _cross2(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
        valid = (z[:, faces] >= z_near).all(-1) & (area.abs() > 1e-10) & torch.isfinite(tri).all(-1).all(-1)
        lo = tri.amin(2) - radius  # (B, F, 2): first / last pixel index whose centre is in range
        hi = tri.amax(2) + radius
        x0 = lo[..., 0].ceil().clamp(0, w).long()
        x1 = hi[..., 0].floor().clamp(-1, w - 1).long()
        y0 = lo[..., 1].ceil().clamp(0, h).long()
        y1 = hi[..., 1].floor().clamp(-1, h - 1).long()
        bw = (x1 - x0 + 1).clamp_min(0)
        counts = (bw * (y1 - y0 + 1).clamp_min(0) * valid).reshape(-1)
        flat = torch.arange(bsz * n_faces, device=dev).repeat_interleave(counts)  # (N,) b * F + f
        start = torch.cumsum(counts, 0) - counts
        k = torch.arange(flat.numel(), device=dev) - start[flat]
        bw_f = bw.reshape(-1)[flat]
        row = torch.div(k, bw_f, rounding_mode="floor") + y0.reshape(-1)[flat]
        col = k % bw_f + x0.reshape(-1)[flat]
        batch = torch.div(flat, n_faces, rounding_mode="floor")
        pix = (batch * h + row) * w + col  # (N,) into B * H * W
        centre = torch.stack([col, row], dim=-1).to(dt)  # (N, 2), pixel centres at integers

    t = tri.reshape(-1, 3, 2)[flat]  # (N, 3, 2), differentiable
    a, b, c = t[:, 0], t[:, 1], t[:, 2]
    area = _cross2(b - a, c - a)
    # a face projecting to (almost) a segment or a point has no barycentrics: give it a tiny signed area so its
    # colour stays finite (its coverage comes from the edge distances alone)
    tiny = torch.finfo(dt).tiny ** 0.5
    area = torch.where(area.abs() < tiny, torch.where(area < 0, -tiny, tiny), area)
    w0 = _cross2(c - b, centre - b) / area
    w1 = _cross2(a - c, centre - c) / area
    w2 = _cross2(b - a, centre - a) / area
    bary = torch.stack([w0, w1, w2], dim=-1)  # (N, 3) screen-space barycentrics
    inside = (bary >= 0).all(-1)
    d2 = torch.minimum(torch.minimum(_segment_dist2(centre, a, b), _segment_dist2(centre, b, c)),
                       _segment_dist2(centre, c, a))
    x = torch.where(inside, d2, -d2) / sigma
    n_pix = bsz * h * w
    # silhouette: 1 - prod (1 - D) = 1 - exp(-sum softplus(x))
    log_empty = torch.zeros(n_pix, device=dev, dtype=dt).index_add(0, pix, F.softplus(x))
    silhouette = (1.0 - torch.exp(-log_empty)).reshape(bsz, h, w)
    if vertex_colors is None:
        return SoftRenderResult(silhouette, None)

    # clamp the barycentrics to the triangle for outside pixels, then perspective-correct
    bc = bary.clamp_min(0.0)
    bc = bc / bc.sum(-1, keepdim=True).clamp_min(1e-12)
    iz = (bc * tri_iz.reshape(-1, 3)[flat]).sum(-1).clamp_min(1.0 / z_far)  # 1 / z at the pixel
    persp = bc * tri_iz.reshape(-1, 3)[flat] / iz.unsqueeze(-1)
    cols = vertex_colors[:, faces].reshape(-1, 3, 3)[flat]  # (N, 3 corners, 3 channels)
    color = (persp.unsqueeze(-1) * cols).sum(1)  # (N, 3)
    zn = (iz - 1.0 / z_far) / (1.0 / z_near - 1.0 / z_far)
    # blending weights D * exp(zn / gamma) (background: exp(eps / gamma)) in the log domain, shifted by their
    # per-pixel maximum: far-from-face pixels (D underflows) and deep pixels stay finite, the ratio is unchanged
    log_w = F.logsigmoid(x) + zn / gamma
    with torch.no_grad():
        shift = torch.full((n_pix,), eps / gamma, device=dev, dtype=dt).scatter_reduce(0, pix, log_w, reduce="amax")
    wgt = torch.exp(log_w - shift[pix])
    bg_w = torch.exp(eps / gamma - shift)
    denom = bg_w.index_add(0, pix, wgt)  # background weight + sum of face weights (>= 1: the maximum is 1)
    num = torch.zeros(n_pix, 3, device=dev, dtype=dt).index_add(0, pix, wgt.unsqueeze(-1) * color)
    bg = torch.as_tensor(background, device=dev, dtype=dt)
    bg = bg.expand(bsz, h, w, 3).reshape(n_pix, 3) if bg.dim() == 4 else bg.expand(n_pix, 3)
    image = (num + bg_w.unsqueeze(-1) * bg) / denom.unsqueeze(-1)
    return SoftRenderResult(silhouette, image.reshape(bsz, h, w, 3))
