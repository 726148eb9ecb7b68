"""Building blocks of ACR (Yu et al., "ACR: Attention Collaboration-based Regressor for Arbitrary Two-Hand
Reconstruction", CVPR 2023; the spec is ``shared/papers/acr_attention_collaboration_regressor.txt``).

Pure, batched torch functions for the paper's equations, plus the small modules the network is made of:

* :func:`repel_centers` — collision-aware centre repulsion of the hand-centre targets (Sec. 3.3, Eq. 1);
* :func:`spatial_softmax`, :func:`attention_pool` — the attention aggregation of the global representation
  (Eq. 2), of the part representation (Eq. 3, ``F_p = sigma(A_p*)^T M_p*``) and of the cross-hand inverse query
  (Eq. 4);
* :func:`interaction_intensity` — the interaction field ``IF`` and the intensity coefficient ``lambda``
  (Sec. 3.4);
* :func:`coord_grid` / :class:`CoordConv` — CoordConv (Sec. 4, "Implementation details": the backbone features
  get 2 coordinate channels, ``f in R^{(C+2) x H x W}``);
* :class:`MapHead` — one of the "four Conv blocks" producing the four maps; :class:`PointwiseMLP` — the
  point-wise MLPs ``f_g``, ``f_c``, ``f_out`` of Eqs. 2, 4, 5.

Units: centres, radii (the paper's kernel sizes ``k``) and distances are in heatmap cells (one cell = ``stride``
input pixels); the cell ``(y, x)`` has its centre at input pixel ``stride * x + (stride - 1) / 2``
(:func:`hand_recon_core.models.heads.center.cell_to_pixel`), so continuous cell coordinates are
``x = (u + 0.5) / stride - 0.5`` for an input pixel ``u``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CoordConv",
    "MapHead",
    "PointwiseMLP",
    "attention_pool",
    "coord_grid",
    "interaction_intensity",
    "pixel_to_cell_coords",
    "cell_to_pixel_coords",
    "repel_centers",
    "spatial_softmax",
]

#: Floor on centre distances (cells) before dividing by them (coincident centres).
_EPS_DISTANCE = 1e-6


def pixel_to_cell_coords(uv: torch.Tensor, stride: int) -> torch.Tensor:
    """Continuous cell coordinates of input pixels: ``x = (u + 0.5) / stride - 0.5`` (cell centres at integers).

    Args:
        uv: (..., 2) input-image pixel coordinates (pixel centres at integers).
        stride: input pixels per cell.

    Returns:
        (..., 2) float cell coordinates ``(x, y)``.
    """
    return (uv + 0.5) / stride - 0.5


def cell_to_pixel_coords(xy: torch.Tensor, stride: int) -> torch.Tensor:
    """Inverse of :func:`pixel_to_cell_coords`: ``u = stride * x + (stride - 1) / 2``.

    Args:
        xy: (..., 2) continuous cell coordinates.
        stride: input pixels per cell.

    Returns:
        (..., 2) float input pixel coordinates.
    """
    return xy * stride + (stride - 1) / 2.0


def repel_centers(c_left: torch.Tensor, c_right: torch.Tensor, k_left: torch.Tensor, k_right: torch.Tensor,
                  alpha: float = 0.5, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Collision-aware centre repulsion (ACR Sec. 3.3, Eq. 1).

    When two hand centres are closer than ``k_L + k_R + 1`` (Euclidean distance ``d``), both are pushed apart
    along the line joining them::

        R     = (k_L + k_R + 1 - d) / d * (C_L - C_R)
        C_L' = C_L + alpha R,        C_R' = C_R - alpha R

    so the distance grows by ``2 alpha (k_L + k_R + 1 - d)``; with the default ``alpha = 0.5`` (the paper does
    not report its value) the new distance is exactly ``k_L + k_R + 1``: the two Gaussian kernels just stop
    overlapping. Centres farther apart are returned unchanged. Coincident centres (``d = 0``) have no direction;
    they are separated along the image x axis (left hand towards +x, i.e. to the right of the image, where a
    left hand seen from the front usually is). Units: cells (any consistent unit works).

    Args:
        c_left: (..., 2) left-hand centre ``C_L``.
        c_right: (..., 2) right-hand centre ``C_R``.
        k_left: (...) left kernel radius ``k_L`` (the Gaussian radius of the centre target).
        k_right: (...) right kernel radius ``k_R``.
        alpha: intensity coefficient of the repulsion.
        valid: optional (...) bool, pairs to consider (e.g. both hands present); others are unchanged.

    Returns:
        ``(C_L', C_R')``, each (..., 2), same dtype as the inputs.
    """
    diff = c_left - c_right
    d = torch.linalg.vector_norm(diff, dim=-1)
    reach = k_left + k_right + 1.0
    direction_fallback = torch.zeros_like(diff)
    direction_fallback[..., 0] = 1.0
    coincident = d < _EPS_DISTANCE
    diff = torch.where(coincident[..., None], direction_fallback * _EPS_DISTANCE, diff)
    d = d.clamp_min(_EPS_DISTANCE)
    push = (reach - d).clamp_min(0.0) / d  # 0 outside the collision distance
    if valid is not None:
        push = torch.where(valid.to(torch.bool), push, torch.zeros_like(push))
    r = push[..., None] * diff
    return c_left + alpha * r, c_right - alpha * r


def interaction_intensity(c_left: torch.Tensor, c_right: torch.Tensor, k_left: torch.Tensor,
                          k_right: torch.Tensor, gamma: float = 2.0,
                          present: torch.Tensor | None = None) -> torch.Tensor:
    """Interaction intensity coefficient ``lambda`` of the interaction field (ACR Sec. 3.4).

    ``IF = gamma (k_L + k_R + 1)`` and, with ``d = |C_L - C_R|_2``::

        lambda = 0                              if d > IF
        lambda = (IF - d) / d * |C_L - C_R|_1   if d <= IF

    i.e. ``relu(IF - d) * |C_L - C_R|_1 / d``, which is continuous at ``d = IF`` and bounded by
    ``sqrt(2) IF`` as ``d -> 0`` (the L1/L2 ratio lies in ``[1, sqrt(2)]``). Units: cells, so ``lambda`` is in
    cells too (the paper uses 64 x 64 maps). ``gamma`` (the "field sensitivity scale") is not reported; the
    default 2 makes the field reach about one hand width for the Gaussian radii of
    :func:`hand_recon_core.models.heads.center.gaussian_radius` (radius ~ a quarter of the hand box).

    ``present`` implements the paper's "for ... a single hand, the correlation should be eliminated": pairs
    where one hand is absent get ``lambda = 0``.

    Args:
        c_left: (..., 2) left-hand centre.
        c_right: (..., 2) right-hand centre.
        k_left: (...) left kernel radius.
        k_right: (...) right kernel radius.
        gamma: field sensitivity scale.
        present: optional (..., 2) bool/0-1 presence of (slot 0, slot 1); any absent hand zeroes ``lambda``.

    Returns:
        (...) float ``lambda >= 0``.
    """
    diff = c_left - c_right
    d = torch.linalg.vector_norm(diff, dim=-1)
    l1 = diff.abs().sum(-1)
    field = gamma * (k_left + k_right + 1.0)
    lam = (field - d).clamp_min(0.0) * l1 / d.clamp_min(_EPS_DISTANCE)
    lam = torch.where(d < _EPS_DISTANCE, field * torch.ones_like(lam), lam)  # limit L1/L2 -> 1 along an axis
    if present is not None:
        both = present.to(lam.dtype).prod(-1)
        lam = lam * both
    return lam


def spatial_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the spatial positions of each channel (the ``sigma`` of Eqs. 2-4).

    Args:
        logits: (B, K, h, w) attention logits.

    Returns:
        (B, K, h, w) non-negative weights summing to 1 over ``h x w`` for every (image, channel); computed in
        float32 and returned in float32.
    """
    b, k, h, w = logits.shape
    return torch.softmax(logits.float().reshape(b, k, h * w), dim=-1).reshape(b, k, h, w)


def attention_pool(weights: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Attention-weighted pooling ``out[b, k, :] = sum_{y,x} weights[b, k, y, x] * features[b, :, y, x]``.

    This is the pixel-wise multiply-and-sum of Eq. 2 (``sigma(A_c^h) (x) M_p^h``) and Eq. 4, and the dot product
    ``F_p = sigma(A_p*)^T M_p*`` of Eq. 3 (``A_p* in R^{HW x J}``, ``M_p* in R^{HW x C}``). With spatially
    softmax-normalised weights it is a weighted mean of the feature vectors.

    Args:
        weights: (B, K, h, w) attention maps (usually from :func:`spatial_softmax`).
        features: (B, D, h, w) dense feature / parameter map.

    Returns:
        (B, K, D) pooled vectors, float32.
    """
    b, k, h, w = weights.shape
    d = features.shape[1]
    a = weights.float().reshape(b, k, h * w)
    m = features.float().reshape(b, d, h * w)
    return torch.bmm(a, m.transpose(1, 2))


def coord_grid(height: int, width: int, stride: int, input_size: tuple[int, int], *,
               dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """Normalised image coordinates of every cell centre (the CoordConv channels).

    Cell ``(y, x)`` is centred at input pixel ``u = stride * x + (stride - 1) / 2`` and gets
    ``x_n = 2 u / W_in - 1`` (the normalised-coordinate convention of :mod:`hand_recon_core.geometry.cameras`,
    ``pixels_to_normalized``), likewise ``y_n`` with ``H_in``.

    Args:
        height: map rows ``h``.
        width: map columns ``w``.
        stride: input pixels per cell.
        input_size: ``(H_in, W_in)`` of the network input, pixels.
        dtype: output dtype.
        device: output device.

    Returns:
        (2, h, w): channel 0 ``x_n``, channel 1 ``y_n``.
    """
    h_in, w_in = input_size
    xs = (torch.arange(width, dtype=torch.float32, device=device) * stride + (stride - 1) / 2.0) * (2.0 / w_in) - 1
    ys = (torch.arange(height, dtype=torch.float32, device=device) * stride + (stride - 1) / 2.0) * (2.0 / h_in) - 1
    grid = torch.stack([xs[None, :].expand(height, width), ys[:, None].expand(height, width)])
    return grid.to(dtype)


class CoordConv(nn.Module):
    """Append the 2 normalised coordinate channels of :func:`coord_grid` to a feature map (CoordConv, [17]).

    Args:
        stride: input pixels per feature cell.
    """

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = int(stride)

    def forward(self, features: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
        """(B, C, h, w) features -> (B, C + 2, h, w) with ``x_n``, ``y_n`` appended."""
        b, _, h, w = features.shape
        grid = coord_grid(h, w, self.stride, input_size, dtype=features.dtype, device=features.device)
        return torch.cat([features, grid[None].expand(b, 2, h, w)], dim=1)


class MapHead(nn.Module):
    """One "Conv block" producing a dense map: two 3x3 conv-BN-ReLU layers and a 1x1 output convolution.

    Args:
        in_channels: input channels (backbone features + 2 CoordConv channels).
        hidden: channels of the two 3x3 layers.
        out_channels: channels of the map.
        bias_init: initial bias of the output convolution (e.g. the CenterNet prior -2.19 for centre logits).
        weight_std: if given, the output weights are drawn from N(0, weight_std^2) (small for parameter maps).
    """

    def __init__(self, in_channels: int, hidden: int, out_channels: int, bias_init: float = 0.0,
                 weight_std: float | None = None) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
        )
        self.out = nn.Conv2d(hidden, out_channels, 1)
        if weight_std is not None:
            nn.init.normal_(self.out.weight, std=weight_std)
        nn.init.constant_(self.out.bias, bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, h, w) -> (B, out_channels, h, w)."""
        return self.out(self.body(x))


class PointwiseMLP(nn.Module):
    """Point-wise MLP ``Linear -> ReLU -> Linear`` applied to the last dimension (``f_g``, ``f_c``, ``f_out``).

    Args:
        in_features: input size.
        hidden: hidden size.
        out_features: output size.
        residual: add the input to the output (``y = x + MLP(x)``; needs ``in_features == out_features``) and
            initialise the last layer to zero, so the module starts as the identity.
    """

    def __init__(self, in_features: int, hidden: int, out_features: int, residual: bool = False) -> None:
        super().__init__()
        if residual and in_features != out_features:
            raise ValueError(f"a residual MLP needs in_features == out_features, got {in_features}, {out_features}")
        self.residual = residual
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, out_features)
        if residual:
            nn.init.zeros_(self.fc2.weight)
            nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_features) -> (..., out_features)."""
        y = self.fc2(F.relu(self.fc1(x)))
        return x + y if self.residual else y
