"""Tests of hand_recon_core.models.blocks.joint_graph (hand-computed graphs, one-hop propagation)."""

from __future__ import annotations

import torch

from hand_recon_core.hand_model.joint_orders import PARENTS
from hand_recon_core.models.blocks.joint_graph import JointGCN, SemGraphConv, skeleton_adjacency, skeleton_edges


def test_skeleton_edges_and_adjacency_follow_parents():
    edges = skeleton_edges("mano21")
    assert len(edges) == 20
    # mano21: index MCP (1) hangs on the wrist, the thumb tip (16) on the thumb IP (15), the pinky tip (20) on 9
    assert (0, 1) in edges and (15, 16) in edges and (9, 20) in edges
    adj = skeleton_adjacency("mano21")
    assert adj.shape == (21, 21) and torch.equal(adj, adj.T) and adj.diagonal().sum() == 0
    assert adj.sum() == 40
    # the wrist touches the 5 finger bases (index, middle, pinky, ring MCP and thumb CMC)
    assert sorted(torch.nonzero(adj[0]).flatten().tolist()) == [1, 4, 7, 10, 13]
    two = skeleton_adjacency("mano21", num_hands=2, self_loops=True)
    assert two.shape == (42, 42) and two[:21, 21:].sum() == 0 and two.diagonal().sum() == 42
    assert torch.equal(two[21:, 21:] - torch.eye(21), adj)


def test_edge_weights_start_uniform_over_the_closed_neighbourhood():
    conv = SemGraphConv(4, 4, skeleton_adjacency())
    a = conv.edge_weights()
    assert torch.allclose(a.sum(-1), torch.ones(21))
    assert torch.allclose(a[0, [0, 1, 4, 7, 10, 13]], torch.full((6,), 1 / 6))
    assert a[0, 2] == 0 and a[16, 16] == 0.5 and a[16, 15] == 0.5  # a tip: itself and its parent


def test_one_layer_moves_a_feature_exactly_one_hop():
    torch.manual_seed(0)
    adj = skeleton_adjacency()
    conv = SemGraphConv(8, 8, adj)
    with torch.no_grad():
        conv.edge_logits.normal_()  # learnt-looking, non-uniform weights
    for joint in (0, 5, 16):
        x = torch.zeros(1, 21, 8)
        x[0, joint] = torch.randn(8)
        delta = conv(x) - conv(torch.zeros(1, 21, 8))  # removes the bias
        reached = set(torch.nonzero(delta[0].abs().sum(-1) > 1e-7).flatten().tolist())
        expected = {joint} | {int(j) for j in torch.nonzero(adj[joint]).flatten()}
        assert reached == expected


def test_hand_computed_output_with_uniform_weights():
    adj = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # a 3-node chain
    conv = SemGraphConv(1, 1, adj, bias=False)
    with torch.no_grad():
        conv.weight_self.fill_(2.0)
        conv.weight_neighbour.fill_(3.0)
    x = torch.tensor([[[1.0], [10.0], [100.0]]])
    out = conv(x)[0, :, 0]
    # node 0: (2*1 + 3*10) / 2; node 1: (3*1 + 2*10 + 3*100) / 3; node 2: (3*10 + 2*100) / 2
    assert torch.allclose(out, torch.tensor([16.0, 323.0 / 3.0, 115.0]))


def test_joint_gcn_receptive_field_grows_one_hop_per_layer_and_never_crosses_hands():
    torch.manual_seed(1)
    gcn = JointGCN(8, num_layers=2, adjacency=skeleton_adjacency(num_hands=2))
    x0 = torch.randn(1, 42, 8)
    x = x0.clone()
    x[0, 0] += torch.randn(8)  # perturb the right wrist
    diff = (gcn(x) - gcn(x0))[0].abs().sum(-1) > 1e-6
    reached = set(torch.nonzero(diff).flatten().tolist())
    parents = PARENTS["mano21"]
    hop1 = {j for j in range(21) if parents[j] == 0} | {0}
    hop2 = hop1 | {j for j in range(21) if parents[j] in hop1}
    assert reached == hop2  # two layers: two hops, and nothing on the left hand (nodes 21-41)
