"""Quad control cage of the open hand, Catmull-Clark subdivision and quad utilities (anatomical mm coordinates).

The cage is built like a box-modelled hand: a palm tube of rings (9 columns dorsally and palmarly, one cell
thick) closed at the wrist; its distal face is split into four pairs of quads from which the four fingers are
extruded (adjacent fingers share the edge between their pairs, which becomes the web); the thumb is extruded
from an L-shaped pair of quads on the radial-palmar corner of the palm. Every digit is a tube of hexagonal
loops closed by two quads at the tip. The cage is a closed genus-0 quad mesh, so one Catmull-Clark step gives
``4 F + 2`` vertices and ``8 F`` triangles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_recon_core.hand_model.constants import FINGER_JOINTS, FINGER_NAMES
from hand_recon_core.hand_model.open_model import anatomy
from hand_recon_core.hand_model.open_model.sdf import mcp_line, palm_sections

#: u (mm) of the palm rings proximal of the knuckle ring.
PALM_RING_U = (-11.0, 20.0, 52.0)
#: Finger loops: fractions along (proximal, middle, distal) segments where hexagonal loops are placed.
FINGER_LOOPS = ((0, 0.5), (1, 0.0), (2, 0.0), (2, 0.68))
#: Thumb loops: (segment, fraction) along metacarpal, proximal, distal.
THUMB_LOOPS = ((0, 0.62), (1, 0.0), (1, 0.5), (2, 0.0), (2, 0.68))
#: Cage inflation so that the subdivided surface starts near the implicit surface.
INFLATE = 1.12
FINGERS4 = ("index", "middle", "ring", "pinky")


@dataclass
class QuadMesh:
    """Vertices (N, 3) and quads (M, 4) (vertex indices, consistently oriented once built).

    ``tip_ids`` (5,) are the pole vertices of the digit caps (thumb, index, middle, ring, pinky); Catmull-Clark
    keeps original vertices first, so the ids stay valid after subdivision. ``cap_quads`` (15,) are the indices
    of the cage quads closing the digits (three per digit).
    """

    vertices: np.ndarray
    quads: np.ndarray
    tip_ids: np.ndarray | None = None
    cap_quads: np.ndarray | None = None


def _column_w_knuckle(skel: anatomy.Skeleton) -> np.ndarray:
    """w (mm) of the 9 palm columns at the knuckle ring (radial edge, index, web, middle, ..., ulnar edge)."""
    w = [skel.joints[FINGER_JOINTS[f][0], 1] for f in FINGERS4]
    a_idx = skel.radii[FINGER_JOINTS["index"][0], 0, 0]
    a_pky = skel.radii[FINGER_JOINTS["pinky"][0], 0, 0]
    return np.array([w[0] + a_idx, w[0], (w[0] + w[1]) / 2, w[1], (w[1] + w[2]) / 2, w[2], (w[2] + w[3]) / 2,
                     w[3], w[3] - a_pky])


#: Relative thickness of the outermost palm columns (c0, c8): they sit on the rounded sides of the palm.
_SIDE_COLUMN_THICKNESS = 0.72


def _palm_ring(u: float, cols_w: np.ndarray, knuckle: bool) -> np.ndarray:
    """18 ring vertices (dorsal c0..c8, then palmar c8..c0) of the palm tube at station ``u`` (mm).

    Column positions follow the knuckle columns scaled to the palm breadth at ``u``; the knuckle ring sits on
    the MCP line (dorsal and palmar rows moved distally by the palm overhangs). Vertices are placed
    ``INFLATE`` times outside the palm section because subdivision pulls a cage inwards.
    """
    u_col = mcp_line(cols_w) if knuckle else np.full(9, float(u))
    a, b, wc, hc = palm_sections(u_col)
    a_k, _, wc_k, _ = palm_sections(mcp_line(cols_w))
    w = cols_w if knuckle else wc + (cols_w - wc_k) * (a / a_k)
    is_side = np.zeros(9, dtype=bool)
    is_side[[0, 8]] = True
    thick = np.where(is_side, _SIDE_COLUMN_THICKNESS, 1.0)
    dors = hc + b * thick * INFLATE
    palm = hc - b * thick * INFLATE
    w = wc + (w - wc) * np.where(is_side, INFLATE, 1.0)
    du, pu = anatomy.PALM_DISTAL_OVERHANG if knuckle else (0.0, 0.0)
    top = np.stack([u_col + du, w, dors], axis=1)
    bot = np.stack([u_col + 0.5 * pu, w, palm], axis=1)
    return np.concatenate([top, bot[::-1]], axis=0)


def _tube_frame(d: np.ndarray, dorsal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lat = np.cross(dorsal, d)
    lat /= np.linalg.norm(lat)
    dor = np.cross(d, lat)
    return lat, dor


def _loop_angles(base: np.ndarray, centre: np.ndarray, lat: np.ndarray, dor: np.ndarray) -> np.ndarray:
    q = base - centre
    return np.arctan2(q @ dor, q @ lat)


def build_cage(skel: anatomy.Skeleton) -> QuadMesh:
    """Build the quad cage of the right hand around ``skel``.

    Args:
        skel: the rest skeleton (anatomical mm).

    Returns:
        A closed quad mesh (orientation made consistent and outward).
    """
    verts: list[np.ndarray] = []
    quads: list[tuple[int, int, int, int]] = []
    poles: dict[str, int] = {}
    caps: list[int] = []

    def add(points: np.ndarray) -> np.ndarray:
        start = sum(len(v) for v in verts)
        verts.append(np.asarray(points, dtype=np.float64))
        return np.arange(start, start + len(points))

    cols = _column_w_knuckle(skel)
    rings = [add(_palm_ring(u, cols, knuckle=False)) for u in PALM_RING_U]
    rings.append(add(_palm_ring(0.0, cols, knuckle=True)))
    n = 18

    def dorsal(r: int, c: int) -> int:
        return int(rings[r][c])

    def palmar(r: int, c: int) -> int:
        return int(rings[r][17 - c])

    # Thumb base: radial side face and the radial palmar face between rings 1 and 2.
    thumb_faces = {
        (dorsal(1, 0), dorsal(2, 0), palmar(2, 0), palmar(1, 0)),
        (palmar(1, 0), palmar(2, 0), palmar(2, 1), palmar(1, 1)),
    }
    for r in range(len(rings) - 1):
        for k in range(n):
            q = (int(rings[r][k]), int(rings[r + 1][k]), int(rings[r + 1][(k + 1) % n]), int(rings[r][(k + 1) % n]))
            if not any(set(q) == set(t) for t in thumb_faces):
                quads.append(q)
    # Wrist cap.
    for c in range(8):
        quads.append((dorsal(0, c), dorsal(0, c + 1), palmar(0, c + 1), palmar(0, c)))

    def extrude(base: list[int], stations: list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]],
                ideal_angles: np.ndarray | None, tip: np.ndarray, digit: str) -> None:
        base_pts = np.concatenate(verts, axis=0)[base]
        c0, d0, dor0, _ = stations[0]
        lat0, dorv0 = _tube_frame(d0, dor0)
        angles = ideal_angles if ideal_angles is not None else _loop_angles(base_pts, base_pts.mean(0), lat0, dorv0)
        prev = list(base)
        for centre, d, dor, (a, b) in stations:
            lat, dorv = _tube_frame(d, dor)
            pts = centre + INFLATE * (a * np.cos(angles)[:, None] * lat + b * np.sin(angles)[:, None] * dorv)
            cur = [int(i) for i in add(pts)]
            for k in range(6):
                quads.append((prev[k], cur[k], cur[(k + 1) % 6], prev[(k + 1) % 6]))
            prev = cur
        # Tip cap: a pole vertex at the digit's tip and three quads (the pole gets valence 3), which keeps
        # enough vertices on the rounded fingertip after subdivision.
        pole = int(add(tip[None, :])[0])
        poles[digit] = pole
        for k in (0, 2, 4):
            caps.append(len(quads))
            quads.append((prev[k], prev[k + 1], prev[(k + 2) % 6], pole))

    def station(j_chain: tuple[int, ...], seg: int, frac: float) -> tuple:
        j = j_chain[seg]
        p0, p1 = skel.joints[j], skel.segment_end(j)
        centre = p0 + frac * (p1 - p0)
        r = (1 - frac) * skel.radii[j, 0] + frac * skel.radii[j, 1]
        return centre, skel.dirs[j], skel.dorsal[j], (float(r[0]), float(r[1]))

    ideal = np.radians([45.0, 90.0, 135.0, 225.0, 270.0, 315.0])
    for k, f in enumerate(FINGERS4):
        c = 2 * k
        base = [dorsal(3, c), dorsal(3, c + 1), dorsal(3, c + 2), palmar(3, c + 2), palmar(3, c + 1), palmar(3, c)]
        chain = FINGER_JOINTS[f]
        tip = skel.tips[FINGER_NAMES.index(f)] + 6.0 * skel.dirs[chain[2]]
        extrude(base, [station(chain, s, t) for s, t in FINGER_LOOPS], ideal, tip, f)
    base = [dorsal(1, 0), dorsal(2, 0), palmar(2, 0), palmar(2, 1), palmar(1, 1), palmar(1, 0)]
    tip = skel.tips[0] + 6.0 * skel.dirs[15]
    extrude(base, [station(FINGER_JOINTS["thumb"], s, t) for s, t in THUMB_LOOPS], None, tip, "thumb")

    mesh = QuadMesh(vertices=np.concatenate(verts, axis=0), quads=np.asarray(quads, dtype=np.int64),
                    tip_ids=np.array([poles[f] for f in FINGER_NAMES], dtype=np.int64),
                    cap_quads=np.array(caps, dtype=np.int64))
    mesh.quads = orient_consistently(mesh.quads)
    if signed_volume_quads(mesh.vertices, mesh.quads) < 0:
        mesh.quads = mesh.quads[:, ::-1].copy()
    return mesh


def orient_consistently(polys: np.ndarray) -> np.ndarray:
    """Flip polygons so that every shared edge is traversed in opposite directions (BFS from polygon 0).

    Args:
        polys: (M, k) vertex indices of a connected, orientable, closed polygon mesh.

    Returns:
        (M, k) consistently oriented copy (the global sign is that of polygon 0).
    """
    polys = np.asarray(polys, dtype=np.int64).copy()
    m, k = polys.shape
    edge_faces: dict[tuple[int, int], list[int]] = {}
    for i in range(m):
        for j in range(k):
            a, b = int(polys[i, j]), int(polys[i, (j + 1) % k])
            edge_faces.setdefault((min(a, b), max(a, b)), []).append(i)
    done = np.zeros(m, dtype=bool)
    done[0] = True
    stack = [0]
    while stack:
        i = stack.pop()
        directed = {(int(polys[i, j]), int(polys[i, (j + 1) % k])) for j in range(k)}
        for a, b in directed:
            for nb in edge_faces[(min(a, b), max(a, b))]:
                if nb == i or done[nb]:
                    continue
                nb_dir = {(int(polys[nb, j]), int(polys[nb, (j + 1) % k])) for j in range(k)}
                if (a, b) in nb_dir:
                    polys[nb] = polys[nb, ::-1]
                done[nb] = True
                stack.append(nb)
    if not done.all():
        raise ValueError("polygon mesh is not connected")
    return polys


def quads_to_triangles(vertices: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Split each quad along its shorter diagonal, keeping the orientation.

    Args:
        vertices: (N, 3).
        quads: (M, 4).

    Returns:
        (2M, 3) int64 triangles.
    """
    q = np.asarray(quads, dtype=np.int64)
    v = np.asarray(vertices, dtype=np.float64)
    d02 = np.linalg.norm(v[q[:, 0]] - v[q[:, 2]], axis=1)
    d13 = np.linalg.norm(v[q[:, 1]] - v[q[:, 3]], axis=1)
    use02 = d02 <= d13 + 1e-12
    t_a = np.where(use02[:, None], q[:, [0, 1, 2]], q[:, [0, 1, 3]])
    t_b = np.where(use02[:, None], q[:, [0, 2, 3]], q[:, [1, 2, 3]])
    out = np.empty((2 * len(q), 3), dtype=np.int64)
    out[0::2] = t_a
    out[1::2] = t_b
    return out


def signed_volume_quads(vertices: np.ndarray, quads: np.ndarray) -> float:
    """Signed volume of a closed quad mesh (fan-triangulated)."""
    v = np.asarray(vertices, dtype=np.float64)
    q = np.asarray(quads, dtype=np.int64)
    vol = 0.0
    for tri in (q[:, [0, 1, 2]], q[:, [0, 2, 3]]):
        vol += np.einsum("ij,ij->i", v[tri[:, 0]], np.cross(v[tri[:, 1]], v[tri[:, 2]])).sum() / 6.0
    return float(vol)


def quad_edges(quads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges of a quad mesh and, for every quad corner k, the edge (k, k+1) index.

    Returns:
        ``(edges (E, 2), corner_edge (M, 4))``.
    """
    q = np.asarray(quads, dtype=np.int64)
    e = np.stack([q, np.roll(q, -1, axis=1)], axis=-1).reshape(-1, 2)
    es = np.sort(e, axis=1)
    edges, inv = np.unique(es, axis=0, return_inverse=True)
    return edges, inv.reshape(q.shape)


def catmull_clark(mesh: QuadMesh) -> QuadMesh:
    """One Catmull-Clark subdivision step of a closed quad mesh.

    New vertex order: the N moved original vertices, then the E edge points, then the M face points.

    Args:
        mesh: closed quad mesh.

    Returns:
        The subdivided quad mesh (4 M quads, same orientation).
    """
    v = mesh.vertices
    q = mesh.quads
    nv, nq = len(v), len(q)
    fp = v[q].mean(axis=1)
    edges, corner_edge = quad_edges(q)
    ne = len(edges)
    edge_face_sum = np.zeros((ne, 3))
    edge_face_cnt = np.zeros(ne)
    np.add.at(edge_face_sum, corner_edge.reshape(-1), np.repeat(fp, 4, axis=0))
    np.add.at(edge_face_cnt, corner_edge.reshape(-1), 1.0)
    if not np.all(edge_face_cnt == 2):
        raise ValueError("Catmull-Clark needs a closed manifold quad mesh")
    ep = (v[edges[:, 0]] + v[edges[:, 1]] + edge_face_sum) / 4.0
    # Vertex points: (Q + 2 R + (n - 3) P) / n.
    valence = np.zeros(nv)
    np.add.at(valence, edges.reshape(-1), 1.0)
    face_sum = np.zeros((nv, 3))
    face_cnt = np.zeros(nv)
    np.add.at(face_sum, q.reshape(-1), np.repeat(fp, 4, axis=0))
    np.add.at(face_cnt, q.reshape(-1), 1.0)
    mid = (v[edges[:, 0]] + v[edges[:, 1]]) / 2.0
    mid_sum = np.zeros((nv, 3))
    np.add.at(mid_sum, edges[:, 0], mid)
    np.add.at(mid_sum, edges[:, 1], mid)
    n = valence[:, None]
    vp = (face_sum / face_cnt[:, None] + 2.0 * mid_sum / n + (n - 3.0) * v) / n
    new_v = np.concatenate([vp, ep, fp], axis=0)
    e_off, f_off = nv, nv + ne
    new_q = np.empty((4 * nq, 4), dtype=np.int64)
    for k in range(4):
        new_q[k::4] = np.stack([q[:, k], e_off + corner_edge[:, k], f_off + np.arange(nq),
                                e_off + corner_edge[:, (k - 1) % 4]], axis=1)
    return QuadMesh(vertices=new_v, quads=new_q, tip_ids=mesh.tip_ids)


def vertex_neighbours(num_vertices: int, quads: np.ndarray) -> list[np.ndarray]:
    """Edge-connected neighbours of every vertex of a quad mesh (sorted index arrays)."""
    edges, _ = quad_edges(quads)
    nbrs: list[list[int]] = [[] for _ in range(num_vertices)]
    for a, b in edges:
        nbrs[int(a)].append(int(b))
        nbrs[int(b)].append(int(a))
    return [np.array(sorted(x), dtype=np.int64) for x in nbrs]
