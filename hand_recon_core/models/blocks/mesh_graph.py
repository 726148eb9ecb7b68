"""Graph matrices of a triangle mesh: adjacency, Laplacians, and a deterministic coarse-to-fine hierarchy.

Used by the graph decoders (Chebyshev spectral GCN, graph U-Net) that regress hand-model vertices. Everything is
computed from the hand layer's ``faces`` (and, for the coarsening, its rest vertices), never from hard-coded
vertex counts, so the same code serves MANO (778 vertices) and the project's open model.

Definitions (``A`` the symmetric 0/1 vertex adjacency without self-loops, ``D = diag(A 1)`` the degrees):

* combinatorial Laplacian ``L = D - A`` (rows sum to 0, symmetric positive semi-definite);
* normalised Laplacian ``L_n = I - D^-1/2 A D^-1/2`` (eigenvalues in ``[0, 2]``; an isolated vertex gets
  ``L_n[i, i] = 1``);
* scaled Laplacian ``L~ = 2 L_n / lambda_max - I`` (eigenvalues in ``[-1, 1]``), the argument of the Chebyshev
  polynomials of Defferrard et al., "Convolutional neural networks on graphs with fast localized spectral
  filtering" (NeurIPS 2016; HandDGCL's GCN reference [29], Sec. 2), computed with the exact ``lambda_max``.

Coarsening (:func:`coarsen_once`, :func:`build_mesh_hierarchy`): **heavy-edge matching** in the spirit of the
Graclus/Metis coarsening Defferrard et al. use, made deterministic and geometric: vertices are visited in order of
increasing degree (ties: lower index); an unmatched vertex is merged with its unmatched neighbour joined by the
shortest edge in the rest pose (ties: lower index), or stays a singleton when all neighbours are taken. Each
level therefore has about half the vertices of the one below (806 -> 405 -> 204 -> 103 -> 53 for the open
model; MANO's 778 gives a similar ladder). Clusters are numbered by their smallest member index, so the result
is a pure function of ``(faces, vertices)``. Per level:

* ``down`` ``(N_coarse, N_fine)``: mean pooling, ``down[c, v] = 1 / |c|`` for ``v`` in cluster ``c``;
* ``up`` ``(N_fine, N_coarse)``: copy unpooling, ``up[v, c] = 1`` for the cluster ``c`` of ``v``;
* coarse adjacency: clusters are adjacent when any of their members are; coarse positions: member means.

Both matrices have rows summing to 1, so ``up @ down`` maps a constant field to the same constant. For the final
"upsample layer" of a decoder, :func:`interpolation_matrix` gives a smoother map from any level to the full mesh
(inverse-distance weights over the ``k`` nearest coarse nodes in the rest pose; rows sum to 1).

Results are cached per process (:func:`build_mesh_hierarchy` is keyed by a hash of the arrays), and are plain
numpy / scipy objects; :meth:`MeshHierarchy.dense` converts what a module needs to torch buffers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "MeshLevel",
    "MeshHierarchy",
    "edges_from_faces",
    "adjacency_from_faces",
    "adjacency_from_edges",
    "combinatorial_laplacian",
    "normalized_laplacian",
    "largest_eigenvalue",
    "scaled_laplacian",
    "heavy_edge_matching",
    "coarsen_once",
    "build_mesh_hierarchy",
    "interpolation_matrix",
    "to_dense_tensor",
]

#: Largest graph for which eigenvalues are computed densely (``numpy.linalg.eigvalsh``); above it, ARPACK.
_DENSE_EIG_MAX = 3000


def edges_from_faces(faces: np.ndarray) -> np.ndarray:
    """Unique undirected edges of a triangle mesh.

    Args:
        faces: ``(F, 3)`` int vertex indices (any winding).

    Returns:
        ``(E, 2)`` int64 array, each row ``(i, j)`` with ``i < j``, rows sorted lexicographically.
    """
    f = np.asarray(faces, dtype=np.int64)
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {f.shape}")
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=0)
    e = np.sort(e, axis=1)
    e = e[e[:, 0] != e[:, 1]]
    return np.unique(e, axis=0)


def adjacency_from_edges(edges: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """Symmetric 0/1 adjacency (no self-loops) of an undirected edge list.

    Args:
        edges: ``(E, 2)`` int vertex indices.
        num_vertices: ``N``.

    Returns:
        ``(N, N)`` float64 CSR matrix.
    """
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    e = e[e[:, 0] != e[:, 1]]
    if e.size and (e.min() < 0 or e.max() >= num_vertices):
        raise ValueError(f"edge indices must be in [0, {num_vertices})")
    rows = np.concatenate([e[:, 0], e[:, 1]])
    cols = np.concatenate([e[:, 1], e[:, 0]])
    a = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(num_vertices, num_vertices)).tocsr()
    a.data[:] = 1.0  # duplicates summed above
    a.eliminate_zeros()
    return a


def adjacency_from_faces(faces: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """Vertex adjacency of a triangle mesh (see :func:`adjacency_from_edges`)."""
    return adjacency_from_edges(edges_from_faces(faces), num_vertices)


def combinatorial_laplacian(adj: sp.spmatrix) -> sp.csr_matrix:
    """``L = D - A``.

    Args:
        adj: ``(N, N)`` symmetric non-negative adjacency.

    Returns:
        ``(N, N)`` float64 CSR matrix; symmetric, PSD, rows summing to 0.
    """
    a = sp.csr_matrix(adj, dtype=np.float64)
    deg = np.asarray(a.sum(axis=1)).ravel()
    return (sp.diags(deg) - a).tocsr()


def normalized_laplacian(adj: sp.spmatrix) -> sp.csr_matrix:
    """``L_n = I - D^-1/2 A D^-1/2`` (isolated vertices: ``D^-1/2 = 0``, so their diagonal is 1).

    Args:
        adj: ``(N, N)`` symmetric non-negative adjacency.

    Returns:
        ``(N, N)`` float64 CSR matrix; symmetric, eigenvalues in ``[0, 2]``.
    """
    a = sp.csr_matrix(adj, dtype=np.float64)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(deg)
    inv_sqrt[deg > 0] = 1.0 / np.sqrt(deg[deg > 0])
    d = sp.diags(inv_sqrt)
    return (sp.identity(a.shape[0], format="csr") - d @ a @ d).tocsr()


def largest_eigenvalue(lap: sp.spmatrix | np.ndarray) -> float:
    """Largest eigenvalue of a symmetric matrix (dense ``eigvalsh`` up to 3000 nodes, else ARPACK).

    Args:
        lap: ``(N, N)`` symmetric matrix.

    Returns:
        ``lambda_max`` as a Python float.
    """
    n = lap.shape[0]
    if n == 0:
        return 0.0
    if n <= _DENSE_EIG_MAX:
        dense = lap.toarray() if sp.issparse(lap) else np.asarray(lap, dtype=np.float64)
        return float(np.linalg.eigvalsh(dense)[-1])
    from scipy.sparse.linalg import eigsh

    return float(eigsh(sp.csr_matrix(lap), k=1, which="LA", return_eigenvectors=False)[0])


def scaled_laplacian(lap: sp.spmatrix, lambda_max: float | None = None) -> sp.csr_matrix:
    """``L~ = 2 L / lambda_max - I``, the Chebyshev-polynomial argument (Defferrard et al. 2016, Eq. 4).

    Args:
        lap: ``(N, N)`` Laplacian (normally :func:`normalized_laplacian`).
        lambda_max: its largest eigenvalue (computed when None; 0 is treated as 2 so an edgeless graph maps to
            ``-I`` rather than dividing by zero).

    Returns:
        ``(N, N)`` float64 CSR matrix with eigenvalues in ``[-1, 1]``.
    """
    lmax = largest_eigenvalue(lap) if lambda_max is None else float(lambda_max)
    if lmax <= 1e-12:
        lmax = 2.0
    return (2.0 / lmax * sp.csr_matrix(lap, dtype=np.float64) - sp.identity(lap.shape[0], format="csr")).tocsr()


def heavy_edge_matching(adj: sp.spmatrix, positions: np.ndarray | None = None) -> np.ndarray:
    """Deterministic heavy-edge matching (module docstring): a cluster id per vertex.

    Args:
        adj: ``(N, N)`` symmetric adjacency.
        positions: ``(N, 3)`` rest positions (metres); the "heaviest" edge is the shortest one. Without positions
            every edge weighs the same and the lowest-index free neighbour is taken.

    Returns:
        ``(N,)`` int64 cluster ids in ``[0, C)``, clusters of 1 or 2 vertices, numbered by smallest member.
    """
    a = sp.csr_matrix(adj)
    n = a.shape[0]
    deg = np.diff(a.indptr)
    order = np.lexsort((np.arange(n), deg))  # increasing degree, ties by index
    mate = np.full(n, -1, dtype=np.int64)
    for v in order:
        if mate[v] >= 0:
            continue
        nbrs = a.indices[a.indptr[v]:a.indptr[v + 1]]
        nbrs = nbrs[(mate[nbrs] < 0) & (nbrs != v)]
        if len(nbrs) == 0:
            mate[v] = v
            continue
        if positions is not None:
            lengths = np.linalg.norm(positions[nbrs] - positions[v], axis=1)
            best = nbrs[np.lexsort((nbrs, lengths))[0]]
        else:
            best = nbrs.min()
        mate[v], mate[best] = best, v
    rep = np.minimum(np.arange(n), mate)  # smallest member represents the cluster
    _, cluster = np.unique(rep, return_inverse=True)
    return cluster.astype(np.int64)


def _pooling_matrices(cluster: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    n = len(cluster)
    c = int(cluster.max()) + 1 if n else 0
    membership = sp.csr_matrix((np.ones(n), (np.arange(n), cluster)), shape=(n, c))  # (N, C) = up
    sizes = np.asarray(membership.sum(axis=0)).ravel()
    down = (sp.diags(1.0 / sizes) @ membership.T).tocsr()
    return down, membership.tocsr()


@dataclass
class MeshLevel:
    """One level of a :class:`MeshHierarchy` (level 0 is the full mesh).

    Attributes:
        adjacency: ``(N, N)`` symmetric 0/1 CSR adjacency.
        positions: ``(N, 3)`` float64 rest positions, metres (cluster means for coarse levels).
        cluster: ``(N_prev,)`` cluster id of each vertex of the finer level (None for level 0).
        down: ``(N, N_prev)`` mean pooling from the finer level (None for level 0).
        up: ``(N_prev, N)`` copy unpooling to the finer level (None for level 0).
    """

    adjacency: sp.csr_matrix
    positions: np.ndarray
    cluster: np.ndarray | None = None
    down: sp.csr_matrix | None = None
    up: sp.csr_matrix | None = None

    @property
    def num_nodes(self) -> int:
        """Number of nodes ``N``."""
        return int(self.adjacency.shape[0])

    def scaled_laplacian(self) -> sp.csr_matrix:
        """The Chebyshev argument ``L~`` of this level's normalised Laplacian (exact ``lambda_max``)."""
        return scaled_laplacian(normalized_laplacian(self.adjacency))


def coarsen_once(adj: sp.spmatrix, positions: np.ndarray) -> MeshLevel:
    """One heavy-edge-matching coarsening step (module docstring).

    Args:
        adj: ``(N, N)`` symmetric adjacency of the finer level.
        positions: ``(N, 3)`` rest positions of the finer level, metres.

    Returns:
        The coarser :class:`MeshLevel` with ``cluster``, ``down`` and ``up`` relative to the finer level.
    """
    positions = np.asarray(positions, dtype=np.float64)
    cluster = heavy_edge_matching(adj, positions)
    down, up = _pooling_matrices(cluster)
    coarse = (up.T @ sp.csr_matrix(adj) @ up).tocsr()
    coarse.setdiag(0.0)
    coarse.eliminate_zeros()
    coarse.data[:] = 1.0
    return MeshLevel(adjacency=coarse, positions=np.asarray(down @ positions), cluster=cluster, down=down, up=up)


@dataclass
class MeshHierarchy:
    """A mesh and its coarsened levels (``levels[0]`` is the full mesh).

    Attributes:
        levels: the :class:`MeshLevel` list, finest first.
        faces: ``(F, 3)`` int64 faces of the full mesh.
    """

    levels: list[MeshLevel]
    faces: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def num_levels(self) -> int:
        """Number of levels including the full mesh."""
        return len(self.levels)

    def sizes(self) -> list[int]:
        """Node count of every level, finest first."""
        return [lvl.num_nodes for lvl in self.levels]

    def down_matrix(self, src: int, dst: int) -> sp.csr_matrix:
        """Composite mean pooling ``(N_dst, N_src)`` from level ``src`` to a coarser level ``dst >= src``."""
        if dst < src:
            raise ValueError(f"down_matrix needs dst >= src, got {src} -> {dst}")
        m = sp.identity(self.levels[src].num_nodes, format="csr")
        for lvl in range(src + 1, dst + 1):
            m = self.levels[lvl].down @ m
        return m.tocsr()

    def up_matrix(self, src: int, dst: int) -> sp.csr_matrix:
        """Composite copy unpooling ``(N_dst, N_src)`` from level ``src`` to a finer level ``dst <= src``."""
        if dst > src:
            raise ValueError(f"up_matrix needs dst <= src, got {src} -> {dst}")
        m = sp.identity(self.levels[src].num_nodes, format="csr")
        for lvl in range(src, dst, -1):
            m = self.levels[lvl].up @ m
        return m.tocsr()

    def scaled_laplacian(self, level: int) -> sp.csr_matrix:
        """``L~`` of a level (cached)."""
        key = ("lap", level)
        if key not in self._cache:
            self._cache[key] = self.levels[level].scaled_laplacian()
        return self._cache[key]


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


_HIERARCHY_CACHE: dict[tuple[str, int], MeshHierarchy] = {}


def build_mesh_hierarchy(faces: np.ndarray | torch.Tensor, vertices: np.ndarray | torch.Tensor,
                         num_levels: int) -> MeshHierarchy:
    """The full mesh plus ``num_levels`` coarsened levels (module docstring); cached per process.

    Args:
        faces: ``(F, 3)`` int faces of the full mesh (e.g. ``HandLayer.faces``).
        vertices: ``(V, 3)`` rest vertices, metres (e.g. ``HandLayer.v_template``); only distances matter, so
            a mirrored (left) mesh gives the same hierarchy as its right counterpart.
        num_levels: number of coarsening steps (>= 0).

    Returns:
        A :class:`MeshHierarchy` with ``num_levels + 1`` levels. Treat it as read-only (it is shared).
    """
    if num_levels < 0:
        raise ValueError(f"num_levels must be >= 0, got {num_levels}")
    f = np.asarray(faces.detach().cpu() if isinstance(faces, torch.Tensor) else faces, dtype=np.int64)
    v = np.asarray(vertices.detach().cpu() if isinstance(vertices, torch.Tensor) else vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {v.shape}")
    key = (_digest(f, v.astype(np.float32)), int(num_levels))
    if key not in _HIERARCHY_CACHE:
        levels = [MeshLevel(adjacency=adjacency_from_faces(f, v.shape[0]), positions=v)]
        for _ in range(num_levels):
            levels.append(coarsen_once(levels[-1].adjacency, levels[-1].positions))
        _HIERARCHY_CACHE[key] = MeshHierarchy(levels=levels, faces=f)
    return _HIERARCHY_CACHE[key]


def interpolation_matrix(fine_positions: np.ndarray, coarse_positions: np.ndarray, k: int = 3,
                         eps: float = 1e-6) -> np.ndarray:
    """Inverse-distance interpolation from coarse nodes to fine vertices (rows sum to 1).

    Args:
        fine_positions: ``(N_fine, 3)`` rest positions, metres.
        coarse_positions: ``(N_coarse, 3)`` rest positions of the coarse nodes, metres.
        k: number of nearest coarse nodes per fine vertex (clipped to ``N_coarse``).
        eps: distance floor, metres (a fine vertex on a coarse node takes almost all of its weight).

    Returns:
        ``(N_fine, N_coarse)`` float64 dense matrix, weights ``1 / max(d, eps)`` normalised per row.
    """
    fine = np.asarray(fine_positions, np.float64)
    coarse = np.asarray(coarse_positions, np.float64)
    k = max(1, min(int(k), coarse.shape[0]))
    dist = np.linalg.norm(fine[:, None, :] - coarse[None, :, :], axis=-1)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    w = 1.0 / np.maximum(np.take_along_axis(dist, nearest, axis=1), eps)
    w /= w.sum(axis=1, keepdims=True)
    out = np.zeros_like(dist)
    np.put_along_axis(out, nearest, w, axis=1)
    return out


def to_dense_tensor(matrix: sp.spmatrix | np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A scipy sparse or numpy matrix as a dense torch tensor (for module buffers)."""
    dense = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
    return torch.as_tensor(np.ascontiguousarray(dense), dtype=dtype)
