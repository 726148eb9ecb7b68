"""Photometric loss through the differentiable soft rasterizer (single-stage paper, Sec. III-C, Eq. 9).

    L_pho = sum_n M_n ||I_n - I*_n||_2 / sum_n M_n,

``I`` the rendered and ``I*`` the input image, ``M`` "a binary mask ... determined by Hadamard product between the
rendered silhouette and ground truth skin mask". Each predicted hand is rendered as a textured mesh (per-vertex
albedo times the Lambertian shading of 27 spherical-harmonics coefficients, :func:`hand_recon_core.render.
soft_rasterizer.sh_shading_torch`, basis and order of :func:`hand_recon_core.render.rasterizer.sh_basis`).

Implementation choices (documented departures from rendering the whole image at once with PyTorch3D):

* **Per-hand crops.** Each hand is rendered alone into a ``P x P`` crop around its ground-truth box (the box made
  square and enlarged by a margin), and the input image and the skin mask are resampled into the same crop. The
  cost is then independent of the image size and of the hand's size in pixels.
* **Skin mask = the hand's instance.** The sample's ``mask`` holds, per pixel, the index of the visible hand, so
  the skin mask of hand ``n`` is ``mask == n``: pixels where another hand (or an object) occludes it are excluded,
  which a single whole-image skin mask could not do.
* **Binary, detached silhouette.** ``M`` uses ``silhouette > 0.5`` without gradient (the paper's "binary mask");
  the gradients reach the texture, the lighting and the geometry through the rendered colours.

Pixel conventions: the project's (samples, :mod:`hand_recon_core.render`): pixel centres at integer coordinates.
A ``P x P`` crop of the square ``[x1, x2] x [y1, y2]`` of an image has its pixel ``j`` centred at image coordinate
``x1 + (j + 0.5) L / P`` (``L = x2 - x1``); :func:`crop_images` samples there and :func:`crop_intrinsics` gives
the matching camera, so the rendered crop and the resampled image crop are aligned exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hand_recon_core.render.soft_rasterizer import sh_shading_torch, soft_rasterize, vertex_normals_torch

__all__ = [
    "square_boxes",
    "crop_intrinsics",
    "crop_images",
    "shade_vertices",
    "render_hands",
    "photometric_loss",
]


def square_boxes(boxes: torch.Tensor, margin: float = 1.2, min_side: float = 4.0) -> torch.Tensor:
    """Square boxes with the same centres, side ``margin`` times the longer side (at least ``min_side``).

    Args:
        boxes: (M, 4) xyxy, pixels.
        margin: enlargement factor.
        min_side: smallest side, pixels.

    Returns:
        (M, 4) float32 xyxy, pixels.
    """
    b = boxes.float()
    c = (b[:, :2] + b[:, 2:]) / 2
    half = (torch.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * margin).clamp_min(min_side)[:, None] / 2
    return torch.cat([c - half, c + half], dim=1)


def crop_intrinsics(K: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Intrinsics of ``size`` x ``size`` crops (project convention: pixel centres at integers).

    The crop spans the square ``[x1, x2] x [y1, y2]`` of the image's pixel coordinates; its pixel ``j`` is centred
    at image coordinate ``u = x1 + (j + 0.5) L / P`` (``L = x2 - x1``, ``P = size``), hence
    ``u_crop = (u - x1) P / L - 0.5``: ``K' = S (K - [0 0 x1; 0 0 y1; 0 0 0])`` with ``S = diag(P / L, P / L, 1)``,
    then ``cx', cy'`` minus 0.5.

    Args:
        K: (M, 3, 3) intrinsics of the full image, pixels.
        boxes: (M, 4) square xyxy crop boxes, pixels (:func:`square_boxes`).
        size: crop side P, pixels.

    Returns:
        (M, 3, 3) float32 intrinsics of the crops, pixels.
    """
    b = boxes.float()
    s = size / (b[:, 2] - b[:, 0]).clamp_min(1e-6)
    k = K.float().clone()
    k[:, 0, 2] = k[:, 0, 2] - b[:, 0]
    k[:, 1, 2] = k[:, 1, 2] - b[:, 1]
    k[:, :2] = k[:, :2] * s[:, None, None]
    k[:, 0, 2] = k[:, 0, 2] - 0.5
    k[:, 1, 2] = k[:, 1, 2] - 0.5
    return k


def crop_images(images: torch.Tensor, batch: torch.Tensor, boxes: torch.Tensor, size: int,
                mode: str = "bilinear") -> torch.Tensor:
    """Resample square crops of a batch of images (zeros outside the image).

    Crop pixel ``j`` samples the image at ``u = x1 + (j + 0.5) L / P`` (pixel centres at integers), consistent with
    :func:`crop_intrinsics`.

    Args:
        images: (B, C, H, W) float.
        batch: (M,) int64 image index of each crop.
        boxes: (M, 4) square xyxy boxes, pixels.
        size: crop side P.
        mode: ``"bilinear"`` (images) or ``"nearest"`` (masks).

    Returns:
        (M, C, P, P) float.
    """
    _, _, h, w = images.shape
    b = boxes.float()
    t = (torch.arange(size, device=images.device, dtype=torch.float32) + 0.5) / size  # (P,)
    u = b[:, 0:1] + t[None] * (b[:, 2:3] - b[:, 0:1])  # (M, P)
    v = b[:, 1:2] + t[None] * (b[:, 3:4] - b[:, 1:2])
    gx = (2 * u + 1) / w - 1
    gy = (2 * v + 1) / h - 1
    grid = torch.stack([gx[:, None, :].expand(-1, size, -1), gy[:, :, None].expand(-1, -1, size)], dim=-1)
    return F.grid_sample(images[batch.long()].float(), grid, mode=mode, padding_mode="zeros", align_corners=False)


def shade_vertices(vertices: torch.Tensor, faces: torch.Tensor, albedo: torch.Tensor, sh: torch.Tensor
                   ) -> torch.Tensor:
    """Per-vertex colours ``albedo * shading(normal)`` with SH lighting (camera-frame normals).

    Args:
        vertices: (M, V, 3) metres, camera frame.
        faces: (F, 3) int64, counter-clockwise seen from outside.
        albedo: (M, V, 3) RGB in [0, 1].
        sh: (M, 27) SH coefficients, channel-major (``reshape(3, 9)``).

    Returns:
        (M, V, 3) float colours (not clipped).
    """
    normals = vertex_normals_torch(vertices.float(), faces)
    return albedo.float() * sh_shading_torch(normals, sh.float())


def render_hands(vertices: torch.Tensor, faces: torch.Tensor, albedo: torch.Tensor, sh: torch.Tensor,
                 K_crop: torch.Tensor, size: int, sigma: float = 1.0, gamma: float = 1e-4
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-render shaded hands into their crops.

    Args:
        vertices: (M, V, 3) metres, camera frame.
        faces: (F, 3) int64 (the hands' side).
        albedo: (M, V, 3) RGB in [0, 1].
        sh: (M, 27) SH lighting.
        K_crop: (M, 3, 3) crop intrinsics (:func:`crop_intrinsics`).
        size: crop side P.
        sigma: soft-rasterizer coverage sharpness, pixels^2.
        gamma: depth-blending sharpness.

    Returns:
        ``(image, silhouette)``: (M, P, P, 3) colours and (M, P, P) soft coverage.
    """
    colors = shade_vertices(vertices, faces, albedo, sh)
    out = soft_rasterize(vertices.float(), faces, K_crop.float(), (size, size), vertex_colors=colors, sigma=sigma,
                         gamma=gamma)
    return out.image, out.silhouette


def photometric_loss(rendered: torch.Tensor, silhouette: torch.Tensor, target: torch.Tensor, skin: torch.Tensor,
                     threshold: float = 0.5, eps: float = 1e-8) -> torch.Tensor:
    """Eq. 9: mean RGB distance over pixels covered by both the rendered hand and the skin mask.

    Args:
        rendered: (M, P, P, 3) rendered colours.
        silhouette: (M, P, P) rendered coverage in [0, 1] (thresholded at ``threshold``, no gradient).
        target: (M, P, P, 3) input image crops, RGB in [0, 1].
        skin: (M, P, P) 0/1 skin mask of each hand (its instance in the sample's ``mask``).
        threshold: silhouette binarisation level.
        eps: inside the square root of the per-pixel distance (finite gradient at zero error).

    Returns:
        scalar float32 (RGB units); 0 when no pixel is selected.
    """
    m = (silhouette.detach() > threshold).float() * skin.float()
    dist = torch.sqrt(((rendered.float() - target.float()) ** 2).sum(-1) + eps) - eps**0.5
    return (m * dist).sum() / m.sum().clamp_min(1.0)
