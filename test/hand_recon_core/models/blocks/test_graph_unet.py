"""Tests of hand_recon_core.models.blocks.graph_unet (gPool / gUnpool / graph U-Net)."""

from __future__ import annotations

import torch

from hand_recon_core.models.blocks.graph_unet import (
    DenseGCNLayer,
    GPool,
    GraphUNet,
    GUnpool,
    normalize_adjacency,
    two_hop,
)


def _path_adjacency(n: int) -> torch.Tensor:
    a = torch.zeros(n, n)
    idx = torch.arange(n - 1)
    a[idx, idx + 1] = 1.0
    a[idx + 1, idx] = 1.0
    return a


def test_gpool_keeps_top_k_nodes_by_score():
    pool = GPool(2, k=3, augment_connectivity=False)
    with torch.no_grad():
        pool.projection.copy_(torch.tensor([2.0, 0.0]))  # score = x[:, 0] (p is normalised)
    scores = torch.tensor([[0.1, 0.9, -0.5, 0.7, 0.3], [1.0, 0.0, 2.0, 3.0, -1.0]])
    x = torch.stack([scores, torch.arange(5.0).expand(2, 5)], dim=-1)  # (2, 5, 2)
    adj = _path_adjacency(5)
    xp, ap, idx = pool(x, adj)
    assert idx.tolist() == [[1, 3, 4], [3, 2, 0]]  # by decreasing score
    expected = torch.gather(x, 1, idx[..., None].expand(2, 3, 2)) * torch.sigmoid(
        torch.gather(scores, 1, idx))[..., None]
    torch.testing.assert_close(xp, expected)
    for b in range(2):
        torch.testing.assert_close(ap[b], adj[idx[b]][:, idx[b]])
    assert pool.num_kept(5) == 3 and GPool(2, ratio=0.5).num_kept(5) == 3


def test_gpool_gradients_reach_the_projection():
    pool = GPool(3, ratio=0.5)
    x = torch.randn(2, 6, 3)
    xp, _, _ = pool(x, _path_adjacency(6))
    xp.sum().backward()
    assert pool.projection.grad is not None and pool.projection.grad.abs().sum() > 0


def test_connectivity_augmentation_links_two_hop_neighbours():
    adj = _path_adjacency(3)  # 0 - 1 - 2
    torch.testing.assert_close(two_hop(adj), torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]]))
    pool = GPool(1, k=2, augment_connectivity=True)
    with torch.no_grad():
        pool.projection.fill_(1.0)
    x = torch.tensor([[[3.0], [-1.0], [2.0]]])  # node 1 dropped
    _, ap, idx = pool(x, adj)
    assert idx.tolist() == [[0, 2]]
    assert ap[0].tolist() == [[0.0, 1.0], [1.0, 0.0]]  # still connected through the dropped node


def test_gunpool_restores_positions_with_zeros_elsewhere():
    x = torch.tensor([[[1.0, 1.0], [2.0, 2.0]]])
    out = GUnpool()(x, torch.tensor([[3, 0]]), 4)
    assert out.tolist() == [[[2.0, 2.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]]


def test_normalize_adjacency_by_hand():
    adj = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # A + 2 I = [[2, 1], [1, 2]], degrees 3: every entry divided by 3
    torch.testing.assert_close(normalize_adjacency(adj, 2.0), torch.tensor([[2.0, 1.0], [1.0, 2.0]]) / 3.0)
    layer = DenseGCNLayer(2, 4)
    assert layer(torch.randn(3, 2, 2), adj).shape == (3, 2, 4)


def test_graph_unet_shapes_and_training_signal():
    torch.manual_seed(0)
    net = GraphUNet(8, 16, 8, pool_ratios=(0.8, 0.5))
    x = torch.randn(4, 10, 8)
    adj = _path_adjacency(10)
    y = net(x, adj)
    assert y.shape == (4, 10, 8)
    ((y - x) ** 2).mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    # batched adjacency gives the same result as the shared one
    torch.testing.assert_close(net(x, adj.expand(4, 10, 10)), net(x, adj))
