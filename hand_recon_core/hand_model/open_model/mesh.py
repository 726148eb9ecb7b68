"""Surface mesh of the open hand: subdivided cage, relaxed on and projected onto the implicit surface."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_recon_core.hand_model.open_model import anatomy
from hand_recon_core.hand_model.open_model.cage import (
    build_cage,
    catmull_clark,
    quad_edges,
    quads_to_triangles,
    vertex_neighbours,
)
from hand_recon_core.hand_model.open_model.sdf import HandSurface

#: Relaxation iterations (tangential Laplacian smoothing + projection onto the implicit surface).
RELAX_ITERATIONS = 12
#: Tangential smoothing step (fraction of the way to the neighbour average).
RELAX_STEP = 0.3


@dataclass
class OpenMesh:
    """The rest mesh in anatomical millimetre coordinates (u, w, h).

    Attributes:
        vertices: (V, 3) float64 (u, w, h) mm.
        faces: (F, 3) int64, counter-clockwise seen from outside.
        quads: (F / 2, 4) int64, the quad mesh the triangles were split from.
        tip_ids: (5,) int64 fingertip pole vertices (thumb, index, middle, ring, pinky), exactly at the
            skeleton's fingertips.
        surface: the implicit surface the vertices lie on.
    """

    vertices: np.ndarray
    faces: np.ndarray
    quads: np.ndarray
    tip_ids: np.ndarray
    surface: HandSurface


def relax_on_surface(vertices: np.ndarray, quads: np.ndarray, surface: HandSurface,
                     pinned: dict[int, np.ndarray] | None = None, iterations: int = RELAX_ITERATIONS,
                     step: float = RELAX_STEP) -> np.ndarray:
    """Even out the vertex distribution while keeping the vertices on ``surface``.

    Each iteration moves every vertex a fraction ``step`` towards the average of its edge neighbours, keeping
    only the tangential part of the move (normal from the implicit gradient), then projects back.

    Args:
        vertices: (V, 3) mm.
        quads: (M, 4) quad connectivity.
        surface: implicit surface.
        pinned: vertex index -> fixed position (on the surface), e.g. the fingertip poles.
        iterations: number of smoothing/projection rounds.
        step: smoothing step in [0, 1].

    Returns:
        (V, 3) relaxed vertices on the surface.
    """
    nbrs = vertex_neighbours(len(vertices), quads)
    counts = np.array([len(n) for n in nbrs], dtype=np.float64)
    rows = np.repeat(np.arange(len(vertices)), counts.astype(np.int64))
    cols = np.concatenate(nbrs)
    pinned = pinned or {}
    pin_idx = np.array(sorted(pinned), dtype=np.int64)
    pin_pos = np.array([pinned[i] for i in pin_idx]).reshape(-1, 3)
    v = surface.project(vertices, steps=8)
    v[pin_idx] = pin_pos
    for _ in range(iterations):
        avg = np.zeros_like(v)
        np.add.at(avg, rows, v[cols])
        avg /= counts[:, None]
        move = avg - v
        _, n = surface.distance_and_gradient(v)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        move -= (move * n).sum(axis=1, keepdims=True) * n
        v = surface.project(v + step * move, steps=3)
        v[pin_idx] = pin_pos
    v = surface.project(v, steps=6)
    v[pin_idx] = pin_pos
    return v


def build_open_mesh(skel: anatomy.Skeleton | None = None) -> OpenMesh:
    """Cage -> one Catmull-Clark step -> relaxation on the implicit surface -> triangles.

    Args:
        skel: rest skeleton (default :func:`anatomy.build_skeleton`).

    Returns:
        The rest mesh (anatomical mm coordinates).
    """
    skel = anatomy.build_skeleton() if skel is None else skel
    surface = HandSurface.from_skeleton(skel)
    cage = build_cage(skel)
    sub = catmull_clark(cage)
    # Fingertip caps are only projected, never relaxed (relaxation would slide them down the digits): the
    # poles sit exactly on the skeleton's fingertips, the other cap vertices at their projected positions.
    edges, _ = quad_edges(cage.quads)
    n_cage = len(cage.vertices)
    cap_vertices = [n_cage + len(edges) + int(q) for q in cage.cap_quads]
    pole_edges = np.nonzero(np.isin(edges, cage.tip_ids).any(axis=1))[0]
    cap_vertices += [n_cage + int(e) for e in pole_edges]
    start = surface.project(sub.vertices, steps=8)
    pinned = {i: start[i] for i in cap_vertices}
    pinned.update({int(i): skel.tips[k] for k, i in enumerate(cage.tip_ids)})
    verts = relax_on_surface(start, sub.quads, surface, pinned)
    faces = quads_to_triangles(verts, sub.quads)
    return OpenMesh(vertices=verts, faces=faces, quads=sub.quads, tip_ids=cage.tip_ids, surface=surface)
