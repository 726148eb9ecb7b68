"""Graph U-Net blocks (Gao and Ji, "Graph U-Nets", ICML 2019): gPool, gUnpool, a dense GCN layer, the U-Net.

HandDGCL (Sec. 3.2, Eq. 1) uses a graph U-Net as the generator ``F_gen`` of its disturbing graph contrastive
network: the bottleneck makes its output ``G^ = F_gen(G)`` a "disturbed" copy of the graph features ``G``.

Operators (dense, batched: features ``(B, N, C)``, adjacency ``(B, N, N)`` or a shared ``(N, N)``):

* **gPool** (:class:`GPool`): a learnable projection ``p`` scores every node, ``y = X p / ||p||``; the ``k``
  highest-scoring nodes are kept (``torch.topk``, so the kept nodes are ordered by decreasing score), their
  features gated ``X' = X[idx] * sigmoid(y[idx])`` (which also lets gradients reach ``p``), and the adjacency
  restricted to them ``A' = A[idx, idx]``. With ``augment_connectivity`` the restriction is taken from the
  2-hop graph ``(A + I)^2`` (binarised, diagonal cleared), Gao and Ji's graph-connectivity augmentation, so
  pooled graphs stay connected.
* **gUnpool** (:class:`GUnpool`): the inverse placement ``X_up = 0 (N x C); X_up[idx] = X'``.
* **GCN layer** (:class:`DenseGCNLayer`): ``X' = D^-1/2 (A + s I) D^-1/2 X W + b`` (Kipf and Welling's propagation;
  the self-loop weight ``s = 2`` follows Gao and Ji's improved GCN layer).
* **U-Net** (:class:`GraphUNet`): GCN, then per level gPool + GCN down to the bottom, and back up with gUnpool +
  skip addition + GCN. ``top_skip=False`` (the default) drops the skip connection of the input level, so every
  node's output has passed through the first gPool: dropped nodes are re-synthesised from their neighbours. That
  is the "bottleneck structure" which keeps ``G^`` from being identical to ``G`` (HandDGCL Sec. 3.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["normalize_adjacency", "two_hop", "DenseGCNLayer", "GPool", "GUnpool", "GraphUNet"]


def normalize_adjacency(adj: torch.Tensor, self_loop_weight: float = 1.0) -> torch.Tensor:
    """Symmetric normalisation ``D^-1/2 (A + s I) D^-1/2`` (``D`` the degrees of ``A + s I``).

    Args:
        adj: ``(..., N, N)`` non-negative adjacency (no self-loops expected).
        self_loop_weight: ``s``.

    Returns:
        ``(..., N, N)`` normalised propagation matrix (rows of isolated nodes with ``s = 0`` are zero).
    """
    n = adj.shape[-1]
    a = adj + self_loop_weight * torch.eye(n, dtype=adj.dtype, device=adj.device)
    deg = a.sum(-1)
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=1e-12).rsqrt(), torch.zeros_like(deg))
    return inv_sqrt[..., :, None] * a * inv_sqrt[..., None, :]


def two_hop(adj: torch.Tensor) -> torch.Tensor:
    """Binarised 2-hop adjacency ``[(A + I)^2 > 0]`` with a zero diagonal (graph-connectivity augmentation).

    Args:
        adj: ``(..., N, N)`` 0/1 adjacency.

    Returns:
        ``(..., N, N)`` 0/1 tensor of the same dtype.
    """
    n = adj.shape[-1]
    eye = torch.eye(n, dtype=adj.dtype, device=adj.device)
    a = adj + eye
    reach = (torch.matmul(a, a) > 0).to(adj.dtype)
    return reach * (1.0 - eye)


class DenseGCNLayer(nn.Module):
    """``X' = D^-1/2 (A + s I) D^-1/2 X W + b`` on dense adjacencies.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        self_loop_weight: ``s`` (2 as in Gao and Ji's improved GCN layer).
    """

    def __init__(self, in_channels: int, out_channels: int, self_loop_weight: float = 2.0) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)
        self.self_loop_weight = float(self_loop_weight)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Args: ``x (B, N, C_in)``, ``adj (B, N, N)`` or ``(N, N)`` 0/1. Returns ``(B, N, C_out)``."""
        return torch.matmul(normalize_adjacency(adj, self.self_loop_weight), self.linear(x))


class GPool(nn.Module):
    """gPool: keep the top-``k`` nodes by a learned projection score (module docstring).

    Args:
        in_channels: ``C``.
        ratio: fraction of nodes kept, ``k = max(1, ceil(ratio * N))`` (used when ``k`` is None).
        k: fixed number of kept nodes (overrides ``ratio``; clipped to ``N``).
        augment_connectivity: restrict the 2-hop graph ``(A + I)^2`` instead of ``A``.

    Attributes:
        projection: ``(C,)`` learnable vector ``p``.
    """

    def __init__(self, in_channels: int, ratio: float = 0.5, k: int | None = None,
                 augment_connectivity: bool = True) -> None:
        super().__init__()
        if k is None and not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        self.ratio, self.k = float(ratio), k
        self.augment_connectivity = bool(augment_connectivity)
        self.projection = nn.Parameter(torch.empty(in_channels).uniform_(-1.0, 1.0) / math.sqrt(in_channels))

    def num_kept(self, num_nodes: int) -> int:
        """``k`` for a graph of ``num_nodes`` nodes."""
        if self.k is not None:
            return max(1, min(int(self.k), num_nodes))
        return max(1, min(num_nodes, math.ceil(self.ratio * num_nodes)))

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """``y = X p / ||p||``: ``(B, N, C) -> (B, N)``."""
        return torch.matmul(x, self.projection) / self.projection.norm().clamp(min=1e-12)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pool.

        Args:
            x: ``(B, N, C)`` node features.
            adj: ``(B, N, N)`` or ``(N, N)`` 0/1 adjacency.

        Returns:
            ``(x_pooled (B, k, C), adj_pooled (B, k, k), idx (B, k) int64)``; ``idx`` lists the kept nodes by
            decreasing score.
        """
        bsz, n, c = x.shape
        y = self.scores(x)
        k = self.num_kept(n)
        top, idx = torch.topk(y, k, dim=1, sorted=True)
        x_kept = torch.gather(x, 1, idx[..., None].expand(bsz, k, c)) * torch.sigmoid(top)[..., None]
        a = two_hop(adj) if self.augment_connectivity else adj
        if a.dim() == 2:
            a = a.expand(bsz, n, n)
        a_rows = torch.gather(a, 1, idx[..., None].expand(bsz, k, n))
        a_kept = torch.gather(a_rows, 2, idx[:, None, :].expand(bsz, k, k))
        return x_kept, a_kept, idx


class GUnpool(nn.Module):
    """gUnpool: put pooled node features back at their original indices, zeros elsewhere."""

    def forward(self, x: torch.Tensor, idx: torch.Tensor, num_nodes: int) -> torch.Tensor:
        """Args: ``x (B, k, C)``, ``idx (B, k)`` from :class:`GPool`, ``num_nodes`` N. Returns ``(B, N, C)``."""
        bsz, k, c = x.shape
        out = x.new_zeros(bsz, num_nodes, c)
        return out.scatter(1, idx[..., None].expand(bsz, k, c), x)


class GraphUNet(nn.Module):
    """Graph U-Net ``(B, N, C_in) -> (B, N, C_out)`` on a dense graph (module docstring).

    Args:
        in_channels: ``C_in``.
        hidden_channels: width of every inner GCN layer.
        out_channels: ``C_out``.
        pool_ratios: kept fraction of each gPool (one pooling level per entry).
        top_skip: add the skip connection of the input level (False keeps a true bottleneck).
        augment_connectivity: 2-hop graphs inside the pools.
        self_loop_weight: ``s`` of every GCN layer.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 pool_ratios: Sequence[float] = (0.8, 0.6), top_skip: bool = False,
                 augment_connectivity: bool = True, self_loop_weight: float = 2.0) -> None:
        super().__init__()
        if len(pool_ratios) < 1:
            raise ValueError("GraphUNet needs at least one pooling level")
        self.top_skip = bool(top_skip)
        self.start = DenseGCNLayer(in_channels, hidden_channels, self_loop_weight)
        self.pools = nn.ModuleList([GPool(hidden_channels, r, augment_connectivity=augment_connectivity)
                                    for r in pool_ratios])
        self.down = nn.ModuleList([DenseGCNLayer(hidden_channels, hidden_channels, self_loop_weight)
                                   for _ in pool_ratios])
        self.unpool = GUnpool()
        self.up = nn.ModuleList([DenseGCNLayer(hidden_channels, hidden_channels, self_loop_weight)
                                 for _ in pool_ratios])
        self.end = DenseGCNLayer(hidden_channels, out_channels, self_loop_weight)
        self.act = nn.ELU()

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Args: ``x (B, N, C_in)``, ``adj (N, N)`` or ``(B, N, N)`` 0/1. Returns ``(B, N, C_out)``."""
        h = self.act(self.start(x, adj))
        skips: list[torch.Tensor] = []  # features entering each pooling level
        adjs: list[torch.Tensor] = []  # adjacency of each pooling level's input graph
        indices: list[torch.Tensor] = []  # kept nodes of each pooling
        a = adj
        for pool, conv in zip(self.pools, self.down):
            skips.append(h)
            adjs.append(a)
            h, a, idx = pool(h, a)
            indices.append(idx)
            h = self.act(conv(h, a))
        for level in range(len(self.pools) - 1, -1, -1):
            h = self.unpool(h, indices[level], skips[level].shape[1])
            if level > 0 or self.top_skip:
                h = h + skips[level]
            h = self.act(self.up[level](h, adjs[level]))
        return self.end(h, adj)
