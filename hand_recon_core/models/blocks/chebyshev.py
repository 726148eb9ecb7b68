"""Chebyshev spectral graph convolution (Defferrard et al., NeurIPS 2016) on fixed, dense graph matrices.

For node features ``X`` (``N`` nodes, ``C_in`` channels) and the scaled Laplacian ``L~ = 2 L_n / lambda_max - I``
(:func:`hand_recon_core.models.blocks.mesh_graph.scaled_laplacian`), a ``K``-term filter is::

    T_0 = X,   T_1 = L~ X,   T_k = 2 L~ T_{k-1} - T_{k-2}
    Y   = sum_{k < K} T_k W_k + b                                  W_k: (C_in, C_out)

so ``K = 1`` is a per-node linear layer and a ``K``-term filter mixes nodes up to ``K - 1`` hops away. This is
the "Chebyshev spectral graph CNN" decoder of HandDGCL (Sec. 4.1, implementation details; reference [29]) and of
Ge et al. [2]. The graph matrix is dense (hand meshes have at most a few hundred nodes per decoder level), which
keeps the layer a plain ``matmul`` chain: fast on GPU, and exportable to ONNX without sparse operators.

Shapes: features ``(..., N, C)`` (any leading batch dimensions), Laplacian ``(N, N)`` or ``(..., N, N)``
broadcastable against the features' batch dimensions.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["chebyshev_basis", "ChebConv", "ChebResBlock"]


def chebyshev_basis(x: torch.Tensor, laplacian: torch.Tensor, order: int) -> list[torch.Tensor]:
    """The Chebyshev terms ``[T_0 X, ..., T_{K-1} X]`` (module docstring).

    Args:
        x: ``(..., N, C)`` node features.
        laplacian: ``(N, N)`` or ``(..., N, N)`` scaled Laplacian.
        order: ``K >= 1``.

    Returns:
        ``K`` tensors shaped like ``x``.
    """
    if order < 1:
        raise ValueError(f"order K must be >= 1, got {order}")
    terms = [x]
    if order > 1:
        terms.append(torch.matmul(laplacian, x))
    for _ in range(2, order):
        terms.append(2.0 * torch.matmul(laplacian, terms[-1]) - terms[-2])
    return terms


class ChebConv(nn.Module):
    """Chebyshev graph convolution ``Y = sum_k T_k(L~) X W_k + b`` (module docstring).

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        order: number of Chebyshev terms ``K`` (``K = 1``: a per-node linear layer).
        bias: add a learnable bias.

    Attributes:
        weight: ``(K, C_in, C_out)`` parameter (Glorot-uniform initialised per term).
        bias: ``(C_out,)`` parameter or None.
    """

    def __init__(self, in_channels: int, out_channels: int, order: int = 3, bias: bool = True) -> None:
        super().__init__()
        if order < 1:
            raise ValueError(f"order K must be >= 1, got {order}")
        self.in_channels, self.out_channels, self.order = int(in_channels), int(out_channels), int(order)
        self.weight = nn.Parameter(torch.empty(self.order, self.in_channels, self.out_channels))
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights (per term), zero bias."""
        bound = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, K={self.order}, bias={self.bias is not None}"

    def forward(self, x: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
        """Apply the filter.

        Args:
            x: ``(..., N, C_in)`` node features.
            laplacian: ``(N, N)`` (or broadcastable ``(..., N, N)``) scaled Laplacian ``L~``.

        Returns:
            ``(..., N, C_out)``.
        """
        terms = chebyshev_basis(x, laplacian, self.order)
        out = torch.matmul(terms[0], self.weight[0])
        for k in range(1, self.order):
            out = out + torch.matmul(terms[k], self.weight[k])
        if self.bias is not None:
            out = out + self.bias
        return out


class ChebResBlock(nn.Module):
    """Two Chebyshev convolutions with LayerNorm and a residual connection (a decoder stage).

    ``y = relu(LN(cheb2(relu(LN(cheb1(x))))) + skip(x))`` with ``skip`` the identity when the channel counts
    agree, else a per-node linear layer.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        order: Chebyshev order ``K`` of both convolutions.
    """

    def __init__(self, in_channels: int, out_channels: int, order: int = 3) -> None:
        super().__init__()
        self.conv1 = ChebConv(in_channels, out_channels, order)
        self.norm1 = nn.LayerNorm(out_channels)
        self.conv2 = ChebConv(out_channels, out_channels, order)
        self.norm2 = nn.LayerNorm(out_channels)
        self.skip = nn.Identity() if in_channels == out_channels else nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
        """Args: ``x (..., N, C_in)``, ``laplacian (N, N)``. Returns ``(..., N, C_out)``."""
        h = torch.relu(self.norm1(self.conv1(x, laplacian)))
        h = self.norm2(self.conv2(h, laplacian))
        return torch.relu(h + self.skip(x))
