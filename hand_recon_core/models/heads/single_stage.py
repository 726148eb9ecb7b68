"""Network blocks of the single-stage multi-hand method (single-stage paper, Sec. III-A/B, Fig. 2).

* :class:`MultiScaleFusion`: "we concatenate the feature maps of three different layers before feeding into the
  decoder" — ResNet ``c3`` (stride 8), ``c4`` (16) and ``c5`` (32) resized to stride 8, concatenated, fused by
  a 1x1 and a 3x3 convolution.
* :class:`KeypointBranch`: the optional 2D keypoint heatmap branch (``delta_kp``, 21 channels) at stride 4 from
  the fused features and the first ResNet stage ``c2``.
* :class:`PerCellHead`: a per-cell regressor (a stack of 1x1 convolutions, i.e. the same small MLP applied to
  every cell's feature vector). It can run on the whole map (:meth:`PerCellHead.forward`, used for the exported
  network) or only on gathered cells (:meth:`PerCellHead.forward_cells`, used in training and decoding so that
  the large per-vertex texture head is evaluated only where there are hands); both give identical numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBNReLU", "MultiScaleFusion", "KeypointBranch", "PerCellHead", "focal_bias"]


def focal_bias(prior: float = 0.1) -> float:
    """Initial logit bias of a heatmap so that every cell starts at probability ``prior`` (CenterNet/RetinaNet
    initialisation for focal losses): ``-log((1 - prior) / prior)``."""
    return -math.log((1.0 - prior) / prior)


class ConvBNReLU(nn.Sequential):
    """``Conv2d(k x k, no bias) -> BatchNorm2d -> ReLU`` with 'same' padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class MultiScaleFusion(nn.Module):
    """Concatenate ResNet ``c3, c4, c5`` at stride 8 and fuse them.

    Args:
        in_channels: channels of ``c3``, ``c4``, ``c5``.
        out_channels: fused channels.

    Shapes: ``c3 (B, C3, H/8, W/8)``, ``c4 (B, C4, H/16, W/16)``, ``c5 (B, C5, H/32, W/32)`` ->
    ``(B, out_channels, H/8, W/8)``.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.reduce = ConvBNReLU(sum(in_channels), out_channels, 1)
        self.fuse = ConvBNReLU(out_channels, out_channels, 3)

    def forward(self, c3: torch.Tensor, c4: torch.Tensor, c5: torch.Tensor) -> torch.Tensor:
        size = c3.shape[-2:]
        up4 = F.interpolate(c4, size=size, mode="bilinear", align_corners=False)
        up5 = F.interpolate(c5, size=size, mode="bilinear", align_corners=False)
        return self.fuse(self.reduce(torch.cat([c3, up4, up5], dim=1)))


class KeypointBranch(nn.Module):
    """2D keypoint heatmaps (logits) at stride 4 from the fused stride-8 features and ``c2``.

    Args:
        fused_channels: channels of the fused stride-8 map.
        c2_channels: channels of ResNet ``c2``.
        hidden: channels of the branch.
        num_joints: heatmap channels (21).

    Shapes: ``fused (B, Cf, H/8, W/8)``, ``c2 (B, C2, H/4, W/4)`` -> ``(B, num_joints, H/4, W/4)``.
    """

    def __init__(self, fused_channels: int, c2_channels: int, hidden: int, num_joints: int) -> None:
        super().__init__()
        self.block = nn.Sequential(ConvBNReLU(fused_channels + c2_channels, hidden, 3), ConvBNReLU(hidden, hidden, 3))
        self.out = nn.Conv2d(hidden, num_joints, 1)
        nn.init.normal_(self.out.weight, std=0.001)
        nn.init.constant_(self.out.bias, focal_bias())

    def forward(self, fused: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(fused, size=c2.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(self.block(torch.cat([up, c2], dim=1)))


class PerCellHead(nn.Module):
    """A per-cell MLP implemented with 1x1 convolutions.

    Args:
        in_channels: feature channels per cell.
        out_channels: outputs per cell.
        hidden: hidden widths (empty: a single linear layer).
        init_std: standard deviation of the last layer's weights (small: predictions start near the bias).
        init_bias: initial bias of the last layer (a float or a sequence of ``out_channels`` values).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: Sequence[int] = (),
                 init_std: float = 0.001, init_bias: float | Sequence[float] = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for h in hidden:
            layers += [nn.Conv2d(c, h, 1), nn.ReLU(inplace=True)]
            c = h
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Conv2d(c, out_channels, 1)
        nn.init.normal_(self.out.weight, std=init_std)
        with torch.no_grad():
            self.out.bias.copy_(torch.as_tensor(init_bias, dtype=torch.float32).expand(out_channels))
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dense map: ``(B, in_channels, h, w) -> (B, out_channels, h, w)``."""
        return self.out(self.hidden(x))

    def forward_cells(self, v: torch.Tensor) -> torch.Tensor:
        """Gathered cells: ``(M, in_channels) -> (M, out_channels)``, the same numbers as :meth:`forward`."""
        for m in self.hidden:
            if isinstance(m, nn.Conv2d):
                v = F.linear(v, m.weight.flatten(1), m.bias)
            else:
                v = m(v)
        return F.linear(v, self.out.weight.flatten(1), self.out.bias)
