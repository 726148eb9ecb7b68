"""Tests of hand_recon_core.models.blocks.chebyshev."""

from __future__ import annotations

import numpy as np
import torch

from hand_recon_core.models.blocks.chebyshev import ChebConv, ChebResBlock, chebyshev_basis
from hand_recon_core.models.blocks.mesh_graph import adjacency_from_edges, normalized_laplacian, scaled_laplacian


def _path_laplacian(n: int) -> torch.Tensor:
    edges = np.stack([np.arange(n - 1), np.arange(1, n)], axis=1)
    lap = scaled_laplacian(normalized_laplacian(adjacency_from_edges(edges, n)))
    return torch.as_tensor(lap.toarray(), dtype=torch.float64)


def test_k1_is_a_linear_layer():
    torch.manual_seed(0)
    conv = ChebConv(4, 3, order=1).double()
    with torch.no_grad():
        conv.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    lap = _path_laplacian(5)
    expected = x @ conv.weight[0] + conv.bias
    torch.testing.assert_close(conv(x, lap), expected)
    linear = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        linear.weight.copy_(conv.weight[0].T)
        linear.bias.copy_(conv.bias)
    torch.testing.assert_close(conv(x, lap), linear(x))


def test_k3_matches_the_chebyshev_polynomials():
    torch.manual_seed(1)
    lap = _path_laplacian(6)
    x = torch.randn(6, 2, dtype=torch.float64)
    terms = chebyshev_basis(x, lap, 3)
    eye = torch.eye(6, dtype=torch.float64)
    torch.testing.assert_close(terms[1], lap @ x)
    torch.testing.assert_close(terms[2], (2 * lap @ lap - eye) @ x)  # T_2(y) = 2 y^2 - 1
    conv = ChebConv(2, 1, order=3, bias=False).double()
    expected = sum(t @ conv.weight[k] for k, t in enumerate(terms))
    torch.testing.assert_close(conv(x, lap), expected)


def test_k_term_filter_is_k_minus_1_hop_localised():
    lap = _path_laplacian(8)
    impulse = torch.zeros(8, 1, dtype=torch.float64)
    impulse[0] = 1.0
    conv = ChebConv(1, 1, order=3, bias=False).double()
    with torch.no_grad():
        conv.weight.fill_(1.0)
    out = conv(impulse, lap).squeeze(-1)
    assert torch.all(out[3:] == 0)  # nodes 3+ are more than 2 hops away
    assert out[2] != 0


def test_batched_shapes_and_residual_block():
    lap = _path_laplacian(7).float()
    conv = ChebConv(5, 8, order=2)
    assert conv(torch.randn(3, 2, 7, 5), lap).shape == (3, 2, 7, 8)
    block = ChebResBlock(5, 8, order=3)
    y = block(torch.randn(4, 7, 5), lap)
    assert y.shape == (4, 7, 8) and torch.all(y >= 0)
    y.sum().backward()
    assert block.conv1.weight.grad is not None
    assert "K=3" in repr(block.conv1)
