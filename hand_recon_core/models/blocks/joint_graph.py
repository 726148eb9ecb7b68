"""Hand-skeleton graphs and a semantic graph convolution over joints.

The skeleton graph of one hand connects every joint to its anatomical parent (``PARENTS`` of
:mod:`hand_recon_core.hand_model.joint_orders`: 20 bones for 21 joints); graphs of several hands are the
block-diagonal union (no edges between hands; cross-hand interaction is the transformer's job in DIR).

:class:`SemGraphConv` is the semantic graph convolution of Zhao et al., "Semantic Graph Convolutional Networks
for 3D Human Pose Regression" (CVPR 2019), the GCN that DIR (Ren et al., CVPR 2023, Sec. 3.2.2, ref. [60]) uses
for the intra-hand interaction::

    h_i = sum_{j in N(i) + {i}} a_ij W_{[i == j]} x_j + b,    a_i. = softmax_j(M_ij over the support of row i)

with one weight matrix for the node itself (``W_1``) and one for its neighbours (``W_0``), and a learnable
logit ``M_ij`` per edge of the adjacency (softmax over each row's edges and self-loop; zero logits start from
uniform averaging over the closed neighbourhood). A node only exchanges information with its graph neighbours,
so one layer moves a feature exactly one hop.

Shapes: node features are ``(B, N, C)`` (batch, nodes, channels), float.
"""

from __future__ import annotations

import torch
from torch import nn

from hand_recon_core.hand_model.joint_orders import PARENTS

__all__ = ["skeleton_edges", "skeleton_adjacency", "SemGraphConv", "JointGCN"]


def skeleton_edges(order: str = "mano21") -> list[tuple[int, int]]:
    """Bones of one hand as ``(parent, child)`` joint index pairs.

    Args:
        order: a joint order of :data:`hand_recon_core.hand_model.joint_orders.PARENTS` (canonical ``mano21``).

    Returns:
        20 pairs for the 21-joint orders, in child order.
    """
    return [(p, c) for c, p in enumerate(PARENTS[order]) if p >= 0]


def skeleton_adjacency(order: str = "mano21", num_hands: int = 1, self_loops: bool = False) -> torch.Tensor:
    """Symmetric 0/1 adjacency of ``num_hands`` hand skeletons (block diagonal, no edges between hands).

    Node ``h * J + j`` is joint ``j`` of hand ``h`` (``J = 21``).

    Args:
        order: joint order whose ``PARENTS`` define the bones.
        num_hands: number of skeletons.
        self_loops: put ones on the diagonal.

    Returns:
        ``(num_hands * J, num_hands * J)`` float32 tensor.
    """
    num_joints = len(PARENTS[order])
    adj = torch.zeros(num_hands * num_joints, num_hands * num_joints)
    for h in range(num_hands):
        for p, c in skeleton_edges(order):
            adj[h * num_joints + p, h * num_joints + c] = 1.0
            adj[h * num_joints + c, h * num_joints + p] = 1.0
    if self_loops:
        adj += torch.eye(adj.shape[0])
    return adj


class SemGraphConv(nn.Module):
    """Semantic graph convolution (module docstring) on a fixed graph.

    Args:
        in_channels: input channels ``C_in``.
        out_channels: output channels ``C_out``.
        adjacency: ``(N, N)`` 0/1 adjacency (self-loops are added here).
        bias: add a learnable bias.

    Shapes:
        ``forward(x)``: ``(B, N, C_in) -> (B, N, C_out)``.
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor, bias: bool = True) -> None:
        super().__init__()
        adj = torch.as_tensor(adjacency, dtype=torch.float32)
        if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
            raise ValueError(f"adjacency must be square (N, N), got {tuple(adj.shape)}")
        n = adj.shape[0]
        support = (adj > 0) | torch.eye(n, dtype=torch.bool)
        self.register_buffer("support", support, persistent=False)
        self.register_buffer("eye", torch.eye(n), persistent=False)
        self.weight_self = nn.Parameter(torch.empty(in_channels, out_channels))
        self.weight_neighbour = nn.Parameter(torch.empty(in_channels, out_channels))
        nn.init.xavier_uniform_(self.weight_self)
        nn.init.xavier_uniform_(self.weight_neighbour)
        #: Edge logits ``M`` (only entries on the support are used).
        self.edge_logits = nn.Parameter(torch.zeros(n, n))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def edge_weights(self) -> torch.Tensor:
        """Row-normalised edge weights ``a`` ``(N, N)``: softmax of the logits over each row's support."""
        logits = self.edge_logits.masked_fill(~self.support, float("-inf"))
        return torch.softmax(logits, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.edge_weights()
        h_self = x @ self.weight_self
        h_neigh = x @ self.weight_neighbour
        out = (a * self.eye) @ h_self + (a * (1.0 - self.eye)) @ h_neigh
        if self.bias is not None:
            out = out + self.bias
        return out


class JointGCN(nn.Module):
    """A residual stack of :class:`SemGraphConv` layers: ``x <- x + ReLU(LayerNorm(GraphConv(x)))``.

    Args:
        channels: feature channels ``C`` (kept through the stack).
        num_layers: number of graph convolutions (each moves information one hop).
        adjacency: ``(N, N)`` 0/1 adjacency, e.g. :func:`skeleton_adjacency`.

    Shapes:
        ``forward(x)``: ``(B, N, C) -> (B, N, C)``.
    """

    def __init__(self, channels: int, num_layers: int, adjacency: torch.Tensor) -> None:
        super().__init__()
        self.convs = nn.ModuleList(SemGraphConv(channels, channels, adjacency) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = x + torch.relu(norm(conv(x)))
        return x
