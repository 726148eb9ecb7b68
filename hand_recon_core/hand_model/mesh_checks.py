"""Mesh sanity checks used by the open-model generator, its tests and the pose sampler (numpy).

All functions take ``vertices (V, 3)`` float (any units; metres in this project) and ``faces (F, 3)`` int
triangles wound counter-clockwise seen from outside.
"""

from __future__ import annotations

import numpy as np


def edge_face_counts(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges and the number of faces using each.

    Args:
        faces: (F, 3) int triangles.

    Returns:
        ``(edges, counts)``: (E, 2) int64 sorted vertex pairs and (E,) int64 face counts.
    """
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=0)
    e = np.sort(e, axis=1)
    edges, counts = np.unique(e, axis=0, return_counts=True)
    return edges, counts


def is_closed_manifold(faces: np.ndarray) -> bool:
    """True when every edge is shared by exactly two faces that traverse it in opposite directions.

    This is the "closed, consistently oriented, edge-manifold" condition (watertight). Degenerate faces (a
    repeated vertex) make it False.

    Args:
        faces: (F, 3) int triangles.
    """
    f = np.asarray(faces, dtype=np.int64)
    if np.any((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])):
        return False
    _, counts = edge_face_counts(f)
    if not np.all(counts == 2):
        return False
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=0)
    # Each directed edge must appear once (its opposite comes from the neighbour).
    return np.unique(directed, axis=0).shape[0] == directed.shape[0]


def non_manifold_vertices(faces: np.ndarray, num_vertices: int) -> np.ndarray:
    """Vertices whose incident faces do not form a single closed fan (pinched vertices).

    Args:
        faces: (F, 3) int triangles of an edge-manifold closed mesh.
        num_vertices: V.

    Returns:
        (K,) int64 indices of non-manifold (or unused) vertices; empty for a clean mesh.
    """
    f = np.asarray(faces, dtype=np.int64)
    bad = []
    # For vertex v, each incident face (a=v, b, c) contributes the link edge b -> c; a single cycle is manifold.
    nxt: list[dict[int, int]] = [dict() for _ in range(num_vertices)]
    for tri in f:
        for k in range(3):
            a, b, c = tri[k], tri[(k + 1) % 3], tri[(k + 2) % 3]
            nxt[a][int(b)] = int(c)
    for v in range(num_vertices):
        link = nxt[v]
        if not link:
            bad.append(v)
            continue
        start = next(iter(link))
        cur, steps = start, 0
        while True:
            cur = link.get(cur)
            steps += 1
            if cur is None or cur == start or steps > len(link):
                break
        if cur != start or steps != len(link):
            bad.append(v)
    return np.asarray(bad, dtype=np.int64)


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume enclosed by a closed mesh (positive when faces are wound CCW seen from outside).

    Args:
        vertices: (V, 3) positions.
        faces: (F, 3) triangles.

    Returns:
        Volume in cubed units of ``vertices``.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def face_normals(vertices: np.ndarray, faces: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Per-face normals ``cross(v1 - v0, v2 - v0)`` (outward for CCW faces).

    Args:
        vertices: (V, 3).
        faces: (F, 3).
        normalize: return unit normals (else twice the face area times the unit normal).

    Returns:
        (F, 3) float64.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    if normalize:
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    return n


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
        vertices: (V, 3).
        faces: (F, 3).

    Returns:
        (V, 3) float64 unit normals (outward for CCW faces).
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    fn = face_normals(v, f, normalize=False)
    out = np.zeros_like(v)
    for k in range(3):
        np.add.at(out, f[:, k], fn)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-30)


def _segments_hit_triangles(p0: np.ndarray, p1: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray,
                            eps: float) -> np.ndarray:
    """Vectorised Moller-Trumbore: does segment p0->p1 cross triangle (a, b, c) (strict interior)?"""
    d = p1 - p0
    e1, e2 = b - a, c - a
    h = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, h)
    ok = np.abs(det) > 1e-30
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = p0 - a
    u = inv * np.einsum("ij,ij->i", s, h)
    q = np.cross(s, e1)
    v = inv * np.einsum("ij,ij->i", d, q)
    t = inv * np.einsum("ij,ij->i", e2, q)
    return ok & (u > eps) & (v > eps) & (u + v < 1 - eps) & (t > eps) & (t < 1 - eps)


def self_intersections(vertices: np.ndarray, faces: np.ndarray, eps: float = 1e-9,
                       chunk: int = 2_000_000) -> np.ndarray:
    """Pairs of non-adjacent triangles that intersect.

    Broad phase: axis-aligned bounding boxes of all pairs (chunked, vectorised). Narrow phase: each of the six
    edges of a candidate pair is tested against the other triangle (segment-triangle intersection), which
    detects every transversal intersection; coplanar touching pairs are not reported. Pairs sharing a vertex
    are skipped (they always touch).

    Args:
        vertices: (V, 3) positions.
        faces: (F, 3) triangles.
        eps: barycentric/segment tolerance (relative).
        chunk: number of pairs examined per vectorised batch.

    Returns:
        (K, 2) int64 face index pairs ``i < j`` that intersect; empty for a clean mesh.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    tri = v[f]  # (F, 3, 3)
    lo, hi = tri.min(axis=1), tri.max(axis=1)
    nf = f.shape[0]
    # Sort by min x and only pair faces whose x intervals overlap (sweep), then test the other axes.
    order = np.argsort(lo[:, 0], kind="stable")
    lo_s, hi_s = lo[order], hi[order]
    ends = np.searchsorted(lo_s[:, 0], hi_s[:, 0], side="right")
    counts = ends - np.arange(nf) - 1
    counts = np.maximum(counts, 0)
    out = []
    starts = np.arange(nf)
    total = int(counts.sum())
    if total == 0:
        return np.zeros((0, 2), dtype=np.int64)
    first = np.repeat(starts, counts)
    offs = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    second = first + 1 + offs
    for s0 in range(0, total, chunk):
        i_s, j_s = first[s0:s0 + chunk], second[s0:s0 + chunk]
        overlap = np.all((lo_s[i_s] <= hi_s[j_s]) & (lo_s[j_s] <= hi_s[i_s]), axis=1)
        i, j = order[i_s[overlap]], order[j_s[overlap]]
        fi, fj = f[i], f[j]
        share = (fi[:, :, None] == fj[:, None, :]).any(axis=(1, 2))
        i, j = i[~share], j[~share]
        if i.size == 0:
            continue
        hit = np.zeros(i.size, dtype=bool)
        for (ta, tb) in ((i, j), (j, i)):
            t_edges = tri[ta]
            other = tri[tb]
            for k in range(3):
                hit |= _segments_hit_triangles(t_edges[:, k], t_edges[:, (k + 1) % 3], other[:, 0], other[:, 1],
                                               other[:, 2], eps)
        pairs = np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1)[hit]
        out.append(pairs)
    if not out:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(out, axis=0), axis=0)


def closest_points_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point to ``p`` on triangle (a, b, c), vectorised over the leading dimension (Ericson, 2005).

    Args:
        p, a, b, c: (N, 3) arrays.

    Returns:
        (N, 3) closest points.
    """
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    bp = p - b
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    cp = p - c
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = np.where(np.abs(va + vb + vc) > 0, va + vb + vc, 1.0)
    v = vb / denom
    w = vc / denom
    out = a + v[:, None] * ab + w[:, None] * ac  # interior
    # Edge regions (checked in reverse priority so vertex regions win).
    with np.errstate(divide="ignore", invalid="ignore"):
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        on_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
        out = np.where(on_bc[:, None], b + t_bc[:, None] * (c - b), out)
        t_ac = d2 / (d2 - d6)
        on_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        out = np.where(on_ac[:, None], a + t_ac[:, None] * ac, out)
        t_ab = d1 / (d1 - d3)
        on_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        out = np.where(on_ab[:, None], a + t_ab[:, None] * ab, out)
    out = np.where(((d6 >= 0) & (d5 <= d6))[:, None], c, out)
    out = np.where(((d3 >= 0) & (d4 <= d3))[:, None], b, out)
    out = np.where(((d1 <= 0) & (d2 <= 0))[:, None], a, out)
    return out


def penetration(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, max_distance: float | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Cheap signed distance of points to a closed mesh, searched around the nearest vertex.

    For each point the nearest mesh vertex is found (k-d tree); the distance is that to the closest point on
    the faces around that vertex, negative when the point lies behind the closest face (inside). Exact near
    the surface of a reasonably fine mesh (a few mm for hand meshes), which is what contact and penetration
    tests need; far inside, the sign can be wrong.

    Args:
        points: (N, 3) query points.
        vertices: (V, 3) mesh vertices (same units).
        faces: (F, 3) triangles (CCW, closed).
        max_distance: points whose nearest vertex is farther than this are taken as outside, at their
            nearest-vertex distance (an upper bound of the surface distance), without the face search: the
            cost then scales with the points near the mesh. Only for meshes thinner than ``2 * max_distance``.

    Returns:
        ``(signed, nearest)``: (N,) signed distances (negative inside) and (N,) nearest-vertex ids.
    """
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    p = np.asarray(points, dtype=np.float64)
    vertex_dist, idx = cKDTree(v).query(p)
    if max_distance is not None:
        near = vertex_dist <= max_distance
        signed = vertex_dist.astype(np.float64)
        if near.any():
            signed[near] = penetration(p[near], v, f)[0]
        return signed, idx
    # Vertex -> incident faces, padded with -1.
    order = np.argsort(f.reshape(-1), kind="stable")
    counts = np.bincount(f.reshape(-1), minlength=len(v))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    width = int(counts.max())
    slot = np.arange(width)[None, :]
    table_idx = starts[:, None] + slot
    valid = slot < counts[:, None]
    inc = np.where(valid, order[np.minimum(table_idx, len(order) - 1)] // 3, -1)
    cand = inc[idx]  # (N, width)
    ok = cand >= 0
    cf = f[np.where(ok, cand, 0)]  # (N, width, 3)
    pp = np.repeat(p[:, None, :], width, axis=1).reshape(-1, 3)
    tri = v[cf.reshape(-1, 3)]
    cp = closest_points_on_triangles(pp, tri[:, 0], tri[:, 1], tri[:, 2]).reshape(len(p), width, 3)
    diff = p[:, None, :] - cp
    dist = np.linalg.norm(diff, axis=2)
    dist = np.where(ok, dist, np.inf)
    best = dist.argmin(axis=1)
    rows = np.arange(len(p))
    n = face_normals(v, f)[cand[rows, best]]
    along = np.einsum("ij,ij->i", diff[rows, best], n)
    signed = np.where(along < 0.0, -dist[rows, best], dist[rows, best])
    return signed, idx



def points_inside(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                  chunk: int = 400_000) -> np.ndarray:
    """Exact inside test by ray parity: a point is inside a closed mesh when a ray from it crosses the surface
    an odd number of times.

    The ray direction is fixed and slightly oblique, so hits exactly on edges are (almost surely) avoided.
    Cost is O(N F), fine for a few thousand points against a hand mesh.

    Args:
        points: (N, 3) query points.
        vertices: (V, 3) vertices of a closed mesh.
        faces: (F, 3) triangles.
        chunk: point-face pairs per vectorised batch.

    Returns:
        (N,) bool, True inside.
    """
    p = np.asarray(points, dtype=np.float64)
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    # Points outside the mesh's bounding box are outside: only the others need the O(N F) ray test.
    in_box = np.all((p >= v.min(axis=0)) & (p <= v.max(axis=0)), axis=1)
    result = np.zeros(len(p), dtype=bool)
    if not in_box.any():
        return result
    p = p[in_box]
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    d = np.array([0.8660254, 0.3235, 0.3812])
    d /= np.linalg.norm(d)
    e1, e2 = b - a, c - a
    h = np.cross(d, e2)  # (F, 3)
    det = np.einsum("ij,ij->i", e1, h)
    ok = np.abs(det) > 1e-30
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    q_e1 = e1
    crossings = np.zeros(len(p), dtype=np.int64)
    rows = max(1, chunk // max(len(f), 1))
    for s0 in range(0, len(p), rows):
        s = p[s0:s0 + rows, None, :] - a[None]  # (n, F, 3)
        u = inv * np.einsum("nfj,fj->nf", s, h)
        q = np.cross(s, q_e1[None])
        w = inv * np.einsum("fj,nfj->nf", np.broadcast_to(d, e2.shape), q)
        t = inv * np.einsum("fj,nfj->nf", e2, q)
        hit = ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (t > 0)
        crossings[s0:s0 + rows] = hit.sum(axis=1)
    result[in_box] = (crossings % 2) == 1
    return result
