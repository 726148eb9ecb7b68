"""Tests of hand_recon_core.models.blocks.mesh_graph: adjacency, Laplacians, deterministic coarsening."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from hand_recon_core.hand_model.loader import load_hand_model
from hand_recon_core.models.blocks.mesh_graph import (
    adjacency_from_edges,
    adjacency_from_faces,
    build_mesh_hierarchy,
    coarsen_once,
    combinatorial_laplacian,
    edges_from_faces,
    heavy_edge_matching,
    interpolation_matrix,
    largest_eigenvalue,
    normalized_laplacian,
    scaled_laplacian,
    to_dense_tensor,
)

# Two triangles sharing the edge 1-2 (a quad split along its diagonal).
QUAD_FACES = np.array([[0, 1, 2], [2, 1, 3]])


@pytest.fixture(scope="module")
def hand():
    return load_hand_model("open", side="right", flat_hand_mean=True)


def test_edges_from_faces_are_unique_sorted_pairs():
    assert edges_from_faces(QUAD_FACES).tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    # winding does not matter
    assert edges_from_faces(QUAD_FACES[:, ::-1]).tolist() == edges_from_faces(QUAD_FACES).tolist()


def test_adjacency_is_symmetric_binary_without_self_loops():
    a = adjacency_from_faces(QUAD_FACES, 4).toarray()
    expected = np.array([[0, 1, 1, 0], [1, 0, 1, 1], [1, 1, 0, 1], [0, 1, 1, 0]], dtype=float)
    np.testing.assert_array_equal(a, expected)
    with pytest.raises(ValueError):
        adjacency_from_edges(np.array([[0, 5]]), 4)


def test_laplacians_on_quad_by_hand():
    a = adjacency_from_faces(QUAD_FACES, 4)
    lap = combinatorial_laplacian(a).toarray()
    np.testing.assert_array_equal(np.diag(lap), [2, 3, 3, 2])
    np.testing.assert_array_equal(lap.sum(axis=1), 0)
    ln = normalized_laplacian(a).toarray()
    assert ln[0, 1] == pytest.approx(-1 / np.sqrt(2 * 3))
    np.testing.assert_allclose(np.diag(ln), 1.0)


def test_laplacian_properties_on_hand_mesh(hand):
    a = adjacency_from_faces(hand.faces.numpy(), hand.num_vertices)
    comb = combinatorial_laplacian(a).toarray()
    np.testing.assert_allclose(comb.sum(axis=1), 0.0, atol=1e-12)  # rows sum to 0
    norm = normalized_laplacian(a).toarray()
    for dense in (comb, norm):
        np.testing.assert_allclose(dense, dense.T)  # symmetric
    assert np.linalg.eigvalsh(comb)[0] > -1e-9  # positive semi-definite
    eig = np.linalg.eigvalsh(norm)
    assert eig[0] > -1e-9 and eig[-1] <= 2.0 + 1e-9


def test_scaled_laplacian_spectrum_on_a_coarse_level(hand):
    level = build_mesh_hierarchy(hand.faces, hand.v_template, 2).levels[2]
    lap = normalized_laplacian(level.adjacency)
    assert largest_eigenvalue(lap) == pytest.approx(np.linalg.eigvalsh(lap.toarray())[-1])
    # the scaled Laplacian's spectrum is [-1, 1] with the top eigenvalue exactly 1
    scaled_eig = np.linalg.eigvalsh(level.scaled_laplacian().toarray())
    assert scaled_eig.min() >= -1.0 - 1e-9
    assert scaled_eig.max() == pytest.approx(1.0, abs=1e-9)


def test_isolated_vertex_gets_unit_diagonal():
    a = adjacency_from_edges(np.array([[0, 1]]), 3)  # vertex 2 isolated
    ln = normalized_laplacian(a).toarray()
    assert ln[2, 2] == 1.0
    assert scaled_laplacian(sp.csr_matrix((2, 2))).toarray().tolist() == [[-1.0, 0.0], [0.0, -1.0]]


def test_heavy_edge_matching_prefers_short_edges_and_is_deterministic():
    # path 0 - 1 - 2 - 3 with a long middle edge: the matching pairs the short edges
    adj = adjacency_from_edges(np.array([[0, 1], [1, 2], [2, 3]]), 4)
    pos = np.array([[0.0, 0, 0], [0.01, 0, 0], [0.05, 0, 0], [0.06, 0, 0]])
    np.testing.assert_array_equal(heavy_edge_matching(adj, pos), [0, 0, 1, 1])
    # a triangle: one pair and one singleton, numbered by smallest member
    tri = adjacency_from_faces(np.array([[0, 1, 2]]), 3)
    cl = heavy_edge_matching(tri, np.array([[0.0, 0, 0], [1.0, 0, 0], [0.1, 0, 0]]))
    np.testing.assert_array_equal(cl, [0, 1, 0])


def test_coarsening_shapes_and_constant_field(hand):
    adj = adjacency_from_faces(hand.faces.numpy(), hand.num_vertices)
    level = coarsen_once(adj, hand.v_template.numpy())
    n, c = hand.num_vertices, level.num_nodes
    assert level.down.shape == (c, n) and level.up.shape == (n, c)
    assert n / 2 <= c < n  # pairs and singletons
    assert np.bincount(level.cluster).max() <= 2
    np.testing.assert_allclose(np.asarray(level.down.sum(axis=1)).ravel(), 1.0)
    np.testing.assert_allclose(np.asarray(level.up.sum(axis=1)).ravel(), 1.0)
    field = np.full((n, 3), 2.5)
    np.testing.assert_allclose(level.up @ (level.down @ field), field)
    # coarse positions are cluster means
    np.testing.assert_allclose(level.positions, level.down @ hand.v_template.numpy().astype(np.float64))


def test_hierarchy_is_cached_connected_and_mirror_invariant(hand):
    h = build_mesh_hierarchy(hand.faces, hand.v_template, 4)
    assert h is build_mesh_hierarchy(hand.faces, hand.v_template, 4)
    sizes = h.sizes()
    assert sizes[0] == hand.num_vertices and len(sizes) == 5
    assert all(sizes[i + 1] < sizes[i] for i in range(4))
    for lvl in h.levels:
        assert connected_components(lvl.adjacency)[0] == 1
    # composite matrices
    down, up = h.down_matrix(0, 3), h.up_matrix(3, 0)
    assert down.shape == (sizes[3], sizes[0]) and up.shape == (sizes[0], sizes[3])
    field = np.ones(sizes[0])
    np.testing.assert_allclose(up @ (down @ field), field)
    with pytest.raises(ValueError):
        h.down_matrix(2, 1)
    # the left (mirrored) mesh coarsens identically
    left = load_hand_model("open", side="left", flat_hand_mean=True)
    hl = build_mesh_hierarchy(left.faces, left.v_template, 4)
    assert hl.sizes() == sizes
    for a, b in zip(h.levels[1:], hl.levels[1:]):
        np.testing.assert_array_equal(a.cluster, b.cluster)


def test_interpolation_matrix_rows_sum_to_one_and_hits_nodes():
    coarse = np.array([[0.0, 0, 0], [1.0, 0, 0], [0.0, 1, 0]])
    fine = np.array([[0.0, 0, 0], [0.5, 0, 0], [0.2, 0.2, 0]])
    w = interpolation_matrix(fine, coarse, k=2)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert w[0, 0] > 0.999  # a vertex on a node copies it
    np.testing.assert_allclose(w[1, :2], [0.5, 0.5])  # the midpoint averages its two nodes
    assert (w > 0).sum(axis=1).max() == 2
    t = to_dense_tensor(sp.csr_matrix(w))
    assert t.shape == (3, 3) and str(t.dtype) == "torch.float32"
