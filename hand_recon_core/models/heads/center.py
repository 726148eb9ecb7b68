"""Centre-heatmap utilities shared by the centre-based methods (single-stage, ACR).

A hand is represented by a peak of a low-resolution heatmap ("centre map", one cell per ``stride`` x ``stride``
input pixels); the cell under the peak indexes the per-cell parameter maps (single-stage paper, Sec. III-B/C;
CenterNet [23] of that paper). This module holds the pieces every such method needs, as pure batched torch:

* :func:`gaussian_radius` / :func:`encode_center_heatmap`: the Gaussian target (CornerNet/CenterNet radius rule),
* :func:`center_focal_loss`: the penalty-reduced focal loss of CenterNet (the paper's Eq. 3 localisation loss),
* :func:`decode_peaks`: 3x3 max-pool NMS, score threshold and top-k, returning (batch, channel, y, x, score),
* :func:`gather_cells`, :func:`pixel_to_cell`, :func:`cell_to_pixel`: indexing helpers.

Coordinate convention (the project's, :mod:`hand_recon_core.data.sample`): input-image pixel centres are at integer
coordinates, the top-left pixel's centre is (0, 0). Heatmap cell ``(y, x)`` at stride ``s`` covers the input
pixels ``[s*x - 0.5, s*(x+1) - 0.5)`` horizontally (likewise vertically), so its centre is at input pixel
``s*x + (s-1)/2`` and the input pixel ``u`` falls in cell ``floor((u + 0.5) / s)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = [
    "FOCAL_ALPHA",
    "FOCAL_BETA",
    "DEFAULT_MIN_OVERLAP",
    "Peaks",
    "gaussian_radius",
    "pixel_to_cell",
    "cell_to_pixel",
    "encode_center_heatmap",
    "center_focal_loss",
    "decode_peaks",
    "gather_cells",
]

#: Focal exponent on the prediction, ``(1 - p)^alpha`` / ``p^alpha``: the paper's gamma = 2 (Eq. 3) and CenterNet's
#: alpha = 2.
FOCAL_ALPHA = 2.0
#: Penalty reduction near a centre, ``(1 - y)^beta`` on negatives: CenterNet's beta = 4.
FOCAL_BETA = 4.0
#: Minimum IoU a box shifted by the radius must keep with the true box (CornerNet/CenterNet default 0.7).
DEFAULT_MIN_OVERLAP = 0.7


class Peaks(NamedTuple):
    """Decoded heatmap peaks, ``M`` of them over the whole batch, sorted by image then by descending score.

    Attributes:
        batch: (M,) int64, image index in the batch.
        channel: (M,) int64, heatmap channel (e.g. the handedness code for a per-handedness centre map).
        y: (M,) int64, cell row.
        x: (M,) int64, cell column.
        score: (M,) float, heatmap value at the peak (a probability when the input was).
    """

    batch: torch.Tensor
    channel: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor
    score: torch.Tensor


def gaussian_radius(height: float | torch.Tensor, width: float | torch.Tensor,
                    min_overlap: float = DEFAULT_MIN_OVERLAP) -> torch.Tensor:
    """Gaussian radius for an object of size ``height`` x ``width`` (CornerNet rule, used by CenterNet [23]).

    The radius ``r`` bounds the corner displacement such that a box whose corners moved by up to ``r`` keeps
    IoU >= ``o = min_overlap`` with the true box; CornerNet considers three cases, each a quadratic
    ``a r^2 + b r + c = 0`` in ``r``:

    * one corner in, one out: ``a = 1``, ``b = -(h + w)``, ``c = h w (1 - o) / (1 + o)``
    * both corners inside:    ``a = 4``, ``b = -2 (h + w)``, ``c = (1 - o) h w``
    * both corners outside:   ``a = 4 o``, ``b = 2 o (h + w)``, ``c = (o - 1) h w``

    and takes the minimum of ``(|b| +- sqrt(b^2 - 4ac)) / 2`` as CornerNet's and CenterNet's reference
    implementations do (they divide by 2, not by ``2a``; we keep that convention so that radii, and hence
    trained heatmaps, match the literature's; it over-estimates cases 2 and 3, so case 1 usually wins).
    Units are whatever ``height``/``width`` are in (heatmap cells for the encoders here).

    Args:
        height: object height(s), scalar or tensor of any shape.
        width: object width(s), same shape as ``height``.
        min_overlap: IoU to keep, in (0, 1).

    Returns:
        float tensor of the broadcast shape, radius >= 0.
    """
    h = torch.as_tensor(height, dtype=torch.float32)
    w = torch.as_tensor(width, dtype=torch.float32)
    o = float(min_overlap)
    b1 = h + w
    c1 = w * h * (1 - o) / (1 + o)
    r1 = (b1 + torch.sqrt((b1 * b1 - 4 * c1).clamp_min(0))) / 2
    b2 = 2 * (h + w)
    c2 = (1 - o) * w * h
    r2 = (b2 + torch.sqrt((b2 * b2 - 16 * c2).clamp_min(0))) / 2
    a3 = 4 * o
    b3 = -2 * o * (h + w)
    c3 = (o - 1) * w * h
    r3 = (b3 + torch.sqrt((b3 * b3 - 4 * a3 * c3).clamp_min(0))) / 2
    return torch.minimum(torch.minimum(r1, r2), r3).clamp_min(0)


def pixel_to_cell(uv: torch.Tensor, stride: int) -> torch.Tensor:
    """Heatmap cell containing each input pixel position.

    Args:
        uv: (..., 2) float, input-image pixel coordinates ``(u, v)`` (x right, y down; pixel centres at integers).
        stride: heatmap stride in input pixels.

    Returns:
        (..., 2) int64 cell coordinates ``(x, y)`` (not clamped to the map).
    """
    return torch.floor((uv + 0.5) / stride).long()


def cell_to_pixel(xy: torch.Tensor, stride: int) -> torch.Tensor:
    """Input-image pixel coordinate of the centre of each heatmap cell.

    Args:
        xy: (..., 2) cell coordinates ``(x, y)`` (int or float).
        stride: heatmap stride in input pixels.

    Returns:
        (..., 2) float32 input pixel coordinates ``(u, v)``: ``stride * x + (stride - 1) / 2``.
    """
    return xy.to(torch.float32) * stride + (stride - 1) / 2.0


def encode_center_heatmap(centers: torch.Tensor, sizes: torch.Tensor, channels: torch.Tensor | None,
                          num_channels: int, out_hw: tuple[int, int], stride: int,
                          min_overlap: float = DEFAULT_MIN_OVERLAP, min_radius: int = 0,
                          valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian centre targets for the objects of one image (CenterNet encoding).

    Each object ``i`` gets a 2D Gaussian on channel ``channels[i]``, centred on the *integer* cell containing its
    centre (so exactly one cell per object holds 1.0, the positive of :func:`center_focal_loss`), with standard
    deviation ``sigma = (2 r + 1) / 6`` where ``r = max(min_radius, floor(gaussian_radius(h/stride, w/stride)))``
    (the radius rule of :func:`gaussian_radius` on the box size in cells; the Gaussian is truncated at ``r``).
    Overlapping Gaussians combine by element-wise maximum.

    Args:
        centers: (N, 2) float, object centres in input pixels ``(u, v)``.
        sizes: (N, 2) float, object box sizes ``(width, height)`` in input pixels (the hand's scale).
        channels: (N,) int64 channel of each object (e.g. handedness code), or None for channel 0.
        num_channels: C, channels of the output map.
        out_hw: (h, w) heatmap size in cells.
        stride: input pixels per cell.
        min_overlap: IoU parameter of the radius rule.
        min_radius: lower bound on the radius, cells.
        valid: (N,) bool, objects to encode (others are skipped and get ``in_map`` False); None = all.

    Returns:
        heatmap: (C, h, w) float32 in [0, 1].
        cells: (N, 2) int64 cell ``(x, y)`` of each object's peak, clamped into the map.
        in_map: (N,) bool, the object was valid and its centre fell inside the map (only those are drawn).
    """
    h_out, w_out = int(out_hw[0]), int(out_hw[1])
    centers = torch.as_tensor(centers, dtype=torch.float32).reshape(-1, 2)
    sizes = torch.as_tensor(sizes, dtype=torch.float32).reshape(-1, 2)
    n = centers.shape[0]
    if channels is None:
        channels = torch.zeros(n, dtype=torch.long)
    channels = torch.as_tensor(channels, dtype=torch.long).reshape(-1)
    heatmap = torch.zeros(num_channels, h_out, w_out, dtype=torch.float32)
    cells = pixel_to_cell(centers, stride)
    in_map = (cells[:, 0] >= 0) & (cells[:, 0] < w_out) & (cells[:, 1] >= 0) & (cells[:, 1] < h_out)
    in_map &= torch.isfinite(centers).all(dim=1)
    if valid is not None:
        in_map &= torch.as_tensor(valid, dtype=torch.bool).reshape(-1)
    cells = torch.stack([cells[:, 0].clamp(0, w_out - 1), cells[:, 1].clamp(0, h_out - 1)], dim=1)
    radii = gaussian_radius(sizes[:, 1] / stride, sizes[:, 0] / stride, min_overlap).floor().long()
    radii = radii.clamp_min(int(min_radius))
    for i in range(n):
        if not bool(in_map[i]):
            continue
        c = int(channels[i])
        if not 0 <= c < num_channels:
            raise ValueError(f"object {i}: channel {c} outside [0, {num_channels})")
        r = int(radii[i])
        sigma = (2 * r + 1) / 6.0
        cx, cy = int(cells[i, 0]), int(cells[i, 1])
        x0, x1 = max(cx - r, 0), min(cx + r, w_out - 1)
        y0, y1 = max(cy - r, 0), min(cy + r, h_out - 1)
        dx = torch.arange(x0 - cx, x1 - cx + 1, dtype=torch.float32)[None, :]
        dy = torch.arange(y0 - cy, y1 - cy + 1, dtype=torch.float32)[:, None]
        g = torch.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
        window = heatmap[c, y0:y1 + 1, x0:x1 + 1]
        torch.maximum(window, g, out=window)
    return heatmap, cells, in_map


def center_focal_loss(pred: torch.Tensor, target: torch.Tensor, *, logits: bool = True,
                      alpha: float = FOCAL_ALPHA, beta: float = FOCAL_BETA, weight: torch.Tensor | None = None,
                      eps: float = 1e-6) -> torch.Tensor:
    """Penalty-reduced pixel-wise focal loss of CenterNet (the paper's localisation loss, Eq. 3).

    With ``p`` the predicted probability and ``y`` the Gaussian target of a cell::

        loss = -1/k * sum_cells { (1 - p)^alpha log(p)                  if y == 1  (the k centres)
                                { (1 - y)^beta p^alpha log(1 - p)       otherwise

    ``alpha`` (the paper's gamma = 2) down-weights well-classified cells; ``beta`` = 4 reduces the penalty of
    negatives close to a centre, where ``y`` is near 1. ``k`` is the number of positives over the whole batch
    (at least 1), so an image without hands still contributes its negatives. Computed in float32.

    Args:
        pred: (B, C, h, w) logits (``logits=True``, numerically stable via ``logsigmoid``) or probabilities.
        target: (B, C, h, w) float targets in [0, 1], positives exactly 1 (see :func:`encode_center_heatmap`).
        logits: whether ``pred`` holds logits.
        alpha: focal exponent on the prediction.
        beta: penalty-reduction exponent on ``1 - y``.
        weight: optional (B, 1 or C, h, w) or (B,) per-cell / per-image weights (0 = ignore); positives are
            counted with their weights.
        eps: clamp for probabilities when ``logits=False``.

    Returns:
        scalar float32 tensor.
    """
    pred = pred.float()
    target = target.float()
    if logits:
        log_p = F.logsigmoid(pred)
        log_1mp = F.logsigmoid(-pred)
        p = torch.sigmoid(pred)
    else:
        p = pred.clamp(eps, 1 - eps)
        log_p = torch.log(p)
        log_1mp = torch.log1p(-p)
    pos = target.ge(1.0 - 1e-4).float()
    neg = 1.0 - pos
    pos_term = pos * (1 - p).pow(alpha) * log_p
    neg_term = neg * (1 - target).pow(beta) * p.pow(alpha) * log_1mp
    if weight is not None:
        w = weight.float()
        if w.ndim == 1:
            w = w.view(-1, 1, 1, 1)
        pos_term = pos_term * w
        neg_term = neg_term * w
        num_pos = (pos * w).sum()
    else:
        num_pos = pos.sum()
    return -(pos_term.sum() + neg_term.sum()) / num_pos.clamp_min(1.0)


def decode_peaks(heatmap: torch.Tensor, *, threshold: float = 0.3, top_k: int = 20, kernel: int = 3,
                 channel_agnostic: bool = False) -> Peaks:
    """Local maxima of a centre heatmap: max-pool NMS, score threshold, top-k per image.

    A cell is a peak when it equals the maximum of its ``kernel`` x ``kernel`` neighbourhood on its channel
    (CenterNet's 3x3 max-pool NMS) and its score is >= ``threshold``. Per image at most ``top_k`` peaks are kept
    (highest scores over all channels). Ties on a plateau keep every tied cell (rare with real-valued outputs).

    Args:
        heatmap: (B, C, h, w) scores, usually probabilities (apply ``sigmoid`` to logits first).
        threshold: minimum score of a peak.
        top_k: maximum peaks per image.
        kernel: odd NMS window size, cells.
        channel_agnostic: if True, NMS is done on the channel-wise maximum (one peak per location over all
            channels, reported on the arg-max channel); otherwise each channel independently.

    Returns:
        :class:`Peaks` with ``M`` entries, sorted by image, then descending score.
    """
    if heatmap.ndim != 4:
        raise ValueError(f"heatmap must be (B, C, h, w), got {tuple(heatmap.shape)}")
    if kernel % 2 != 1:
        raise ValueError(f"kernel must be odd, got {kernel}")
    b, c, h, w = heatmap.shape
    scores = heatmap.detach()
    if channel_agnostic:
        best, best_c = scores.max(dim=1, keepdim=True)
        pooled = F.max_pool2d(best, kernel, stride=1, padding=kernel // 2)
        keep = (best == pooled).to(scores.dtype)
        scores = torch.zeros_like(scores).scatter_(1, best_c, best * keep)
        scores = torch.where(scores > 0, scores, torch.full_like(scores, -math.inf))
        # cells whose best score is exactly 0 can never pass a positive threshold; threshold <= 0 keeps them out.
    else:
        pooled = F.max_pool2d(scores, kernel, stride=1, padding=kernel // 2)
        scores = torch.where(scores == pooled, scores, torch.full_like(scores, -math.inf))
    flat = scores.reshape(b, c * h * w)
    k = min(int(top_k), c * h * w)
    if k <= 0 or b == 0:
        empty = torch.zeros(0, dtype=torch.long, device=heatmap.device)
        return Peaks(empty, empty, empty, empty, torch.zeros(0, dtype=heatmap.dtype, device=heatmap.device))
    top_scores, top_idx = flat.topk(k, dim=1)  # sorted descending per image
    keep = top_scores >= threshold
    batch = torch.arange(b, device=heatmap.device)[:, None].expand(b, k)[keep]
    idx = top_idx[keep]
    score = top_scores[keep]
    channel = idx // (h * w)
    rem = idx % (h * w)
    return Peaks(batch, channel, rem // w, rem % w, score)


def gather_cells(feature_map: torch.Tensor, batch: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-cell vectors of a dense map at the given cells (differentiable).

    Args:
        feature_map: (B, D, h, w).
        batch: (M,) int64 image indices.
        y: (M,) int64 cell rows.
        x: (M,) int64 cell columns.

    Returns:
        (M, D) the vectors ``feature_map[batch, :, y, x]``.
    """
    return feature_map[batch.long(), :, y.long(), x.long()]
