"""Closed triangle meshes of simple shapes (occluders, props, test scenes).

Every mesh is closed (each edge is shared by exactly two faces), wound counter-clockwise seen from outside
(``cross(v1 - v0, v2 - v0)`` points outward, as everywhere in hand_recon) and expressed in its own object frame,
metres, centred on ``center``. Place it in the camera frame with ``vertices @ R.T + t``.

Per-vertex colours for these meshes come from :mod:`hand_recon_core.render.textures` (checker / value noise on
the returned UVs or directly on the 3D vertex positions). Because vertices are shared between faces, the
renderer's interpolated vertex normals round the box / cylinder edges; :func:`split_vertices` gives every face its
own vertices for flat shading.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["box_mesh", "cylinder_mesh", "sphere_mesh", "split_vertices"]


def _finish(v: np.ndarray, f: np.ndarray, uv: np.ndarray, center: Sequence[float], return_uv: bool):
    v = (v + np.asarray(center, dtype=np.float64).reshape(1, 3)).astype(np.float32)
    f = f.astype(np.int32)
    if return_uv:
        return v, f, uv.astype(np.float32)
    return v, f


def _grid_faces(rows: int, cols: int, offset: int = 0) -> np.ndarray:
    """Faces of a (rows + 1) x (cols + 1) vertex grid (row-major), two triangles per cell."""
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a = (r * (cols + 1) + c).reshape(-1) + offset
    b, cc, d = a + 1, a + cols + 1, a + cols + 2
    return np.concatenate([np.stack([a, cc, b], 1), np.stack([b, cc, d], 1)])


def sphere_mesh(radius: float = 1.0, rings: int = 16, segments: int = 32,
                center: Sequence[float] = (0.0, 0.0, 0.0), return_uv: bool = False):
    """UV sphere with poles on the z axis.

    Args:
        radius: radius in metres.
        rings: number of latitude bands (>= 2).
        segments: number of longitude segments (>= 3).
        center: (3,) centre in metres.
        return_uv: also return per-vertex UVs: ``u`` = longitude / (2 pi) in [0, 1), ``v`` = colatitude / pi in
            [0, 1]. Vertices are shared across the ``u = 0`` seam, so the faces touching the seam interpolate u
            across the whole range; use the 3D positions for seam-free procedural textures.

    Returns:
        ``(vertices (V, 3) float32, faces (F, 3) int32)`` and, if requested, ``uv (V, 2) float32``, with
        ``V = (rings - 1) * segments + 2`` and ``F = 2 * segments * (rings - 1)``.
    """
    if rings < 2 or segments < 3:
        raise ValueError("sphere_mesh needs rings >= 2 and segments >= 3")
    theta = np.pi * np.arange(1, rings) / rings
    phi = 2.0 * np.pi * np.arange(segments) / segments
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1).reshape(-1, 3)
    v = np.concatenate([[[0.0, 0.0, 1.0]], ring, [[0.0, 0.0, -1.0]]]) * radius
    south = v.shape[0] - 1
    j = np.arange(segments)
    jn = (j + 1) % segments
    faces = [np.stack([np.zeros(segments, np.int64), 1 + j, 1 + jn], axis=1)]
    for i in range(rings - 2):
        a, b = 1 + i * segments + j, 1 + i * segments + jn
        c, d = a + segments, b + segments
        faces += [np.stack([a, c, d], 1), np.stack([a, d, b], 1)]
    last = 1 + (rings - 2) * segments
    faces.append(np.stack([np.full(segments, south), last + jn, last + j], axis=1))
    f = np.concatenate(faces)
    uv = np.concatenate([[[0.5, 0.0]], np.stack([p / (2 * np.pi), t / np.pi], -1).reshape(-1, 2), [[0.5, 1.0]]])
    return _finish(v, f, uv, center, return_uv)


def box_mesh(size: Sequence[float] = (1.0, 1.0, 1.0), center: Sequence[float] = (0.0, 0.0, 0.0),
             segments: int = 1, return_uv: bool = False):
    """Axis-aligned box, each side a ``segments x segments`` grid, vertices welded along the box edges.

    Args:
        size: (3,) side lengths (x, y, z) in metres.
        center: (3,) centre in metres.
        segments: grid cells per side edge (>= 1); more segments confine the edge rounding of the smooth vertex
            normals to a thinner band.
        return_uv: also return per-vertex UVs in [0, 1]^2: the side-local grid coordinates of the side that
            created the vertex (vertices on box edges keep the first side's UV).

    Returns:
        ``(vertices (V, 3) float32, faces (F, 3) int32)`` [+ ``uv (V, 2) float32``], ``F = 12 * segments^2``.
    """
    if segments < 1:
        raise ValueError("box_mesh needs segments >= 1")
    n = segments
    s = np.linspace(-0.5, 0.5, n + 1)
    a, b = np.meshgrid(s, s, indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    one = np.full_like(a, 0.5)
    # (normal axis, sign): grid axes chosen so the grid faces of _grid_faces are CCW seen from outside
    sides = [
        np.stack([one, a, b], 1), np.stack([-one, b, a], 1),
        np.stack([b, one, a], 1), np.stack([a, -one, b], 1),
        np.stack([a, b, one], 1), np.stack([b, a, -one], 1),
    ]
    grid_uv = np.stack([a + 0.5, b + 0.5], 1)
    v_all = np.concatenate(sides)
    uv_all = np.tile(grid_uv, (6, 1))
    f_all = np.concatenate([_grid_faces(n, n, k * (n + 1) ** 2) for k in range(6)])
    # weld coincident vertices (exact on the +-0.5 grid)
    key = np.round(v_all * 2 * n).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep vertices in creation order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    v = v_all[first[order]] * np.asarray(size, dtype=np.float64).reshape(1, 3)
    uv = uv_all[first[order]]
    f = rank[inverse.reshape(-1)][f_all]
    return _finish(v, f, uv, center, return_uv)


def cylinder_mesh(radius: float = 0.5, height: float = 1.0, segments: int = 32, rings: int = 1,
                  center: Sequence[float] = (0.0, 0.0, 0.0), return_uv: bool = False):
    """Closed cylinder along the z axis (from ``-height / 2`` to ``+height / 2``) with flat caps.

    Args:
        radius: radius in metres.
        height: length along z in metres.
        segments: vertices around the circumference (>= 3).
        rings: grid cells along the height (>= 1).
        center: (3,) centre in metres.
        return_uv: also return per-vertex UVs: side ``(angle / (2 pi), (z + h / 2) / h)``; the two cap centres
            get ``(0.5, 0)`` and ``(0.5, 1)`` (the caps share the rim vertices of the side).

    Returns:
        ``(vertices (V, 3) float32, faces (F, 3) int32)`` [+ ``uv (V, 2) float32``] with
        ``V = segments * (rings + 1) + 2`` and ``F = 2 * segments * (rings + 1)``.
    """
    if segments < 3 or rings < 1:
        raise ValueError("cylinder_mesh needs segments >= 3 and rings >= 1")
    phi = 2.0 * np.pi * np.arange(segments) / segments
    zs = np.linspace(-0.5 * height, 0.5 * height, rings + 1)
    zz, pp = np.meshgrid(zs, phi, indexing="ij")
    side = np.stack([radius * np.cos(pp), radius * np.sin(pp), zz], -1).reshape(-1, 3)
    v = np.concatenate([side, [[0.0, 0.0, -0.5 * height], [0.0, 0.0, 0.5 * height]]])
    bottom, top = v.shape[0] - 2, v.shape[0] - 1
    j = np.arange(segments)
    jn = (j + 1) % segments
    faces = []
    for i in range(rings):
        a, b = i * segments + j, i * segments + jn
        c, d = a + segments, b + segments
        faces += [np.stack([a, b, d], 1), np.stack([a, d, c], 1)]
    top_ring = rings * segments
    faces.append(np.stack([np.full(segments, bottom), jn, j], 1))
    faces.append(np.stack([np.full(segments, top), top_ring + j, top_ring + jn], 1))
    f = np.concatenate(faces)
    uv = np.concatenate([np.stack([pp / (2 * np.pi), (zz + 0.5 * height) / height], -1).reshape(-1, 2),
                         [[0.5, 0.0], [0.5, 1.0]]])
    return _finish(v, f, uv, center, return_uv)


def split_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give every face its own three vertices (flat shading with the renderer's vertex normals).

    Args:
        vertices: (V, 3) float vertex positions.
        faces: (F, 3) int faces.

    Returns:
        ``(vertices (3F, 3), faces (F, 3) int32, source (3F,) int64)`` where ``source`` maps every new vertex to
        the old one (gather per-vertex colours / UVs with it). The result is no longer topologically closed.
    """
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    source = f.reshape(-1)
    return (np.asarray(vertices)[source], np.arange(source.size, dtype=np.int32).reshape(-1, 3), source)
