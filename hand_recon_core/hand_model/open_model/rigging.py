"""Rigging of the open hand mesh: skinning weights, part labels, joint regressor, shape and pose blend shapes.

All computations are in anatomical millimetre coordinates (u, w, h) (see :mod:`.anatomy`); the generator
converts the results to the model frame in metres.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from hand_recon_core.hand_model.constants import FINGER_JOINTS, FINGER_NAMES, NUM_KINEMATIC_JOINTS
from hand_recon_core.hand_model.open_model import anatomy
from hand_recon_core.hand_model.open_model.cage import vertex_neighbours
from hand_recon_core.hand_model.open_model.sdf import HandSurface, palm_body_distance, palm_sections

#: Neighbour-averaging rounds applied to the axial skinning weights at the seams between digits.
SKIN_SMOOTHING_ROUNDS = 2
#: Blend half-widths (mm) across the joint planes: (base joint, middle joint, distal joint).
BLEND_HALF_WIDTH_MM = {"finger": (8.0, 5.0, 4.0), "thumb": (10.0, 6.0, 4.0)}
#: Palm vertices closer than this (mm) to a digit's capsules blend with that digit (webs, knuckles).
PALM_BLEND_MM = 6.0
#: Joints (finger MCP/PIP and thumb MCP) that get a dorsal knuckle-bulge pose corrective.
BULGE_JOINTS = (1, 2, 4, 5, 7, 8, 10, 11, 14)
#: Knuckle bulge at 90 degrees of flexion (mm) and its axial half-width (mm).
BULGE_MM = 1.6
BULGE_WIDTH_MM = 7.0


def _digit_of_joint() -> dict[int, str]:
    return {j: f for f, chain in FINGER_JOINTS.items() for j in chain}


def _digit_membership(verts: np.ndarray, surface: HandSurface) -> tuple[np.ndarray, np.ndarray]:
    """Digit index (0..4 in FINGER_NAMES order, -1 = palm only) and whether the vertex lies on the digit.

    A vertex lies on a digit when that digit's capsules are nearer than the palm; palm vertices within
    ``PALM_BLEND_MM`` of a digit (webs, knuckles) and thenar vertices are attached to the nearest digit
    (thumb for the thenar) for blending, but stay palm-labelled.
    """
    dist = surface.part_distances(verts)
    digit_d = np.stack([dist[:, list(FINGER_JOINTS[f])].min(axis=1) for f in FINGER_NAMES], axis=1)
    best = digit_d.argmin(axis=1)
    on_digit = digit_d.min(axis=1) < dist[:, 0]
    thenar = surface.palm_extras[0].distance(verts) < palm_body_distance(verts)
    near = digit_d.min(axis=1) < PALM_BLEND_MM
    digit = np.where(on_digit | near, best, -1)
    digit = np.where(~on_digit & thenar, 0, digit)
    return digit, on_digit


def _smoothstep(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def axial_weights(verts: np.ndarray, surface: HandSurface) -> np.ndarray:
    """Skinning weights blended along each digit across its joint planes (before graph smoothing).

    For a vertex attached to a digit with joints (j0, j1, j2), ``a_k = smoothstep((s_k + d_k) / (2 d_k))``
    where ``s_k`` is its signed distance past the plane of joint ``j_k`` (normal: the bisector of the two
    bones) and ``d_k`` the joint's blend half-width (:data:`BLEND_HALF_WIDTH_MM`). Weights: palm
    ``1 - a0``, ``j0: a0 (1 - a1)``, ``j1: a0 a1 (1 - a2)``, ``j2: a0 a1 a2``. Vertices attached to no digit are
    palm only. Deep inside a segment the weights are exactly one-hot.

    Args:
        verts: (V, 3) rest vertices (u, w, h) mm.
        surface: implicit surface (its skeleton gives the joints).

    Returns:
        (V, 16) float64 weights, rows sum to 1.
    """
    skel = surface.skel
    digit, _ = _digit_membership(verts, surface)
    w = np.zeros((len(verts), NUM_KINEMATIC_JOINTS))
    w[digit < 0, 0] = 1.0
    for k, f in enumerate(FINGER_NAMES):
        sel = digit == k
        p = verts[sel]
        chain = FINGER_JOINTS[f]
        a = []
        for i, j in enumerate(chain):
            n = skel.dirs[j] + (skel.dirs[chain[i - 1]] if i > 0 else skel.dirs[j])
            n /= np.linalg.norm(n)
            half = BLEND_HALF_WIDTH_MM["thumb" if f == "thumb" else "finger"][i]
            a.append(_smoothstep(((p - skel.joints[j]) @ n + half) / (2.0 * half)))
        w[sel, 0] = 1.0 - a[0]
        w[sel, chain[0]] = a[0] * (1.0 - a[1])
        w[sel, chain[1]] = a[0] * a[1] * (1.0 - a[2])
        w[sel, chain[2]] = a[0] * a[1] * a[2]
    return w


def smooth_weights(weights: np.ndarray, quads: np.ndarray, mask: np.ndarray | None = None,
                   rounds: int = SKIN_SMOOTHING_ROUNDS) -> np.ndarray:
    """Smooth skinning weights by averaging over mesh neighbours (optionally only at masked vertices).

    Each round replaces a vertex's weights by the mean of its own and its neighbours' average (factor 1/2
    each). Diffusion follows the surface, so neighbouring fingers only share weights where they meet.

    Args:
        weights: (V, 16) weights (e.g. from :func:`axial_weights`).
        quads: (M, 4) quad connectivity of the mesh.
        mask: (V,) bool, vertices to smooth (default all).
        rounds: number of averaging rounds.

    Returns:
        (V, 16) float64 weights, rows sum to 1.
    """
    n = len(weights)
    w = np.asarray(weights, dtype=np.float64).copy()
    mask = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    nbrs = vertex_neighbours(n, quads)
    counts = np.array([len(x) for x in nbrs], dtype=np.float64)
    rows = np.repeat(np.arange(n), counts.astype(np.int64))
    cols = np.concatenate(nbrs)
    for _ in range(rounds):
        avg = np.zeros_like(w)
        np.add.at(avg, rows, w[cols])
        avg /= counts[:, None]
        w = np.where(mask[:, None], 0.5 * w + 0.5 * avg, w)
    return w / w.sum(axis=1, keepdims=True)


def seam_vertices(verts: np.ndarray, surface: HandSurface, quads: np.ndarray) -> np.ndarray:
    """(V,) bool: vertices with an edge neighbour attached to a different digit (the webs' seams) and their
    neighbours; the only place where :func:`axial_weights` changes abruptly."""
    digit, _ = _digit_membership(verts, surface)
    nbrs = vertex_neighbours(len(verts), quads)
    seam = np.array([np.any(digit[nb] != digit[i]) for i, nb in enumerate(nbrs)])
    grown = seam.copy()
    for i, nb in enumerate(nbrs):
        if seam[i]:
            grown[nb] = True
    return grown


def _ring_weights(points: np.ndarray, target: np.ndarray, prior: np.ndarray,
                  allow_qp: bool = True) -> np.ndarray | None:
    """Non-negative weights summing to 1 with ``weights @ points == target``, closest to ``prior``.

    The minimum-norm correction of the prior is tried first; when it has negative entries a bounded QP is
    solved if ``allow_qp`` (else None is returned).
    """
    a = np.vstack([points.T, np.ones(len(points))])
    b = np.append(target, 1.0)
    w = prior + a.T @ np.linalg.solve(a @ a.T, b - a @ prior)
    if w.min() >= 0.0:
        return w
    if not allow_qp:
        return None
    res = minimize(lambda x: 0.5 * np.sum((x - prior) ** 2), prior, jac=lambda x: x - prior,
                   constraints=[{"type": "eq", "fun": lambda x: a @ x - b, "jac": lambda x: a}],
                   bounds=[(0.0, None)] * len(points), method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    w = np.clip(res.x, 0.0, None)
    return w if np.abs(a @ w - b).max() <= 1e-6 else None


def joint_regressor(verts: np.ndarray, labels: np.ndarray, skel: anatomy.Skeleton) -> np.ndarray:
    """(16, V) joint regressor: each joint is a convex combination of a ring of vertices around it.

    For joint j the candidates are the vertices close to the plane through j perpendicular to its bone (within
    a slab grown until at least 10 vertices qualify), near the bone axis, on the parts adjacent to the joint.
    Weights start uniform and are corrected minimally so that ``regressor @ verts`` equals the skeleton's joint
    exactly (kept non-negative); the slab grows until the joint lies inside the candidates' convex hull.

    Args:
        verts: (V, 3) rest vertices (u, w, h) mm.
        labels: (V,) hard part labels.
        skel: rest skeleton.

    Returns:
        (16, V) float64, rows sum to 1.
    """
    reg = np.zeros((NUM_KINEMATIC_JOINTS, len(verts)))
    digit_of = _digit_of_joint()
    for j in range(NUM_KINEMATIC_JOINTS):
        joint = skel.joints[j]
        if j == 0:
            normal = np.array([1.0, 0.0, 0.0])
            allowed = np.isin(labels, [0, 13])
            radius = 60.0
        else:
            normal = skel.dirs[j].copy()
            parent_dir = skel.dirs[j - 1] if j not in (1, 4, 7, 10, 13) else skel.dirs[j]
            normal = normal + parent_dir
            normal /= np.linalg.norm(normal)
            chain = FINGER_JOINTS[digit_of[j]]
            allowed = np.isin(labels, [0, *chain])
            radius = 2.2 * float(skel.radii[j, 0].max()) + (8.0 if j == 13 else 0.0)
        q = verts - joint
        axial = q @ normal
        radial = np.linalg.norm(q - axial[:, None] * normal, axis=1)
        ok = allowed & (radial < radius)
        # Prefer the thinnest slab whose closed-form weights are non-negative; fall back to a QP.
        candidates = []
        for slab in (2.0, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0, 13.0, 16.0):
            idx = np.nonzero(ok & (np.abs(axial) < slab))[0]
            if len(idx) >= 10:
                candidates.append(idx)
        weights = None
        for allow_qp in (False, True):
            for idx in candidates:
                weights = _ring_weights(verts[idx], joint, np.full(len(idx), 1.0 / len(idx)), allow_qp)
                if weights is not None:
                    break
            if weights is not None:
                break
        if weights is None:
            raise RuntimeError(f"no vertex ring surrounds joint {j}")
        reg[j, idx] = weights
    return reg


# ---------------------------------------------------------------------------------------------- shape basis
def _chain_stretch(skel: anatomy.Skeleton, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint displacements (16, 3) and tip displacements (5, 3) when segment j is stretched by ``eps[j]``."""
    dj = np.zeros((16, 3))
    dt = np.zeros((5, 3))
    for f in FINGER_NAMES:
        chain = FINGER_JOINTS[f]
        acc = dj[chain[0]].copy()
        for k, j in enumerate(chain):
            dj[j] = acc
            seg = skel.segment_end(j) - skel.joints[j]
            acc = acc + eps[j] * seg
            if k == 2:
                dt[FINGER_NAMES.index(f)] = acc
    return dj, dt


def _blend(weights: np.ndarray, per_part: np.ndarray) -> np.ndarray:
    """Sum over parts of weights (V, 16) times per-part displacements (16, V, 3) -> (V, 3)."""
    return np.einsum("vj,jvc->vc", weights, per_part)


def _axis_frames(skel: anatomy.Skeleton, verts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per part: axial coordinate (16, V) and perpendicular offset (16, V, 3) of every vertex to its bone."""
    axial = np.zeros((16, len(verts)))
    perp = np.zeros((16, len(verts), 3))
    for j in range(1, 16):
        q = verts - skel.joints[j]
        a = q @ skel.dirs[j]
        axial[j] = a
        perp[j] = q - a[:, None] * skel.dirs[j]
    return axial, perp


#: Names and target sizes (largest vertex displacement, mm, for one unit of the coefficient) of the ten shape
#: components, in basis order. Orthogonalised in this order (Gram-Schmidt), so the first ones keep their
#: meaning exactly and later ones are "the part not explained by the earlier ones".
SHAPE_COMPONENTS: tuple[tuple[str, float], ...] = (
    ("overall_size", 8.0),
    ("finger_length", 5.0),
    ("palm_width", 4.0),
    ("thickness", 3.0),
    ("thumb_length", 4.0),
    ("palm_length", 4.0),
    ("finger_girth", 2.0),
    ("index_ring_ratio", 3.0),
    ("pinky_length", 3.0),
    ("palm_fleshiness", 2.5),
)


def shape_displacements(verts: np.ndarray, weights: np.ndarray, skel: anatomy.Skeleton) -> np.ndarray:
    """Raw (not yet orthogonalised) displacement fields of the ten shape components.

    Each component is a skeleton change (joint displacements) carried to the vertices by the skinning weights,
    plus a deformation of each part in its own bone frame (axial stretch, radial scaling), so the fields are
    smooth across joints.

    Args:
        verts: (V, 3) rest vertices (u, w, h) mm.
        weights: (V, 16) skinning weights.
        skel: rest skeleton.

    Returns:
        (10, V, 3) displacements (u, w, h) mm for a 1 % (relative components) change.
    """
    nv = len(verts)
    axial, perp = _axis_frames(skel, verts)
    out = np.zeros((len(SHAPE_COMPONENTS), nv, 3))
    e = 0.01
    fingers4 = ("index", "middle", "ring", "pinky")

    def stretch(joints_scaled: dict[int, float]) -> np.ndarray:
        eps = np.zeros(16)
        for j, s in joints_scaled.items():
            eps[j] = s
        dj, _ = _chain_stretch(skel, eps)
        per = np.broadcast_to(dj[:, None, :], (16, nv, 3)).copy()
        for j in range(1, 16):
            per[j] += eps[j] * axial[j][:, None] * skel.dirs[j]
        return _blend(weights, per)

    # 0 overall size: uniform scaling about the wrist.
    out[0] = e * verts
    # 1 finger length: all phalanges of the four fingers.
    out[1] = stretch({j: e for f in fingers4 for j in FINGER_JOINTS[f]})
    # 2 palm width: lateral scaling of the palm about its centre line; digits translate with their base.
    _, _, wc, _ = palm_sections(verts[:, 0])
    per = np.zeros((16, nv, 3))
    per[0, :, 1] = e * (verts[:, 1] - wc)
    for j in range(1, 16):
        base = FINGER_JOINTS[_digit_of_joint()[j]][0]
        _, _, wcj, _ = palm_sections(np.array([skel.joints[base, 0]]))
        per[j, :, 1] = e * (skel.joints[base, 1] - wcj[0])
    out[2] = _blend(weights, per)
    # 3 thickness: dorsal-palmar scaling of every part about its own axis (palm: about its mid-plane).
    _, _, _, hc = palm_sections(verts[:, 0])
    per = np.zeros((16, nv, 3))
    per[0, :, 2] = e * (verts[:, 2] - hc)
    for j in range(1, 16):
        dor = skel.dorsal[j]
        per[j] = e * (perp[j] @ dor)[:, None] * dor
    out[3] = _blend(weights, per)
    # 4 thumb length: thumb metacarpal and phalanges.
    out[4] = stretch({j: e for j in FINGER_JOINTS["thumb"]})
    # 5 palm length: the palm stretches along u; digits translate with their base joint.
    per = np.zeros((16, nv, 3))
    per[0, :, 0] = e * verts[:, 0]
    for j in range(1, 16):
        base = FINGER_JOINTS[_digit_of_joint()[j]][0]
        per[j, :, 0] = e * skel.joints[base, 0]
    out[5] = _blend(weights, per)
    # 6 finger girth: radial scaling of the four fingers' segments.
    per = np.zeros((16, nv, 3))
    for f in fingers4:
        for j in FINGER_JOINTS[f]:
            per[j] = e * 3.0 * perp[j]
    out[6] = _blend(weights, per)
    # 7 index vs ring length (digit ratio).
    out[7] = stretch({**{j: e for j in FINGER_JOINTS["index"]}, **{j: -e for j in FINGER_JOINTS["ring"]}})
    # 8 little finger length.
    out[8] = stretch({j: e for j in FINGER_JOINTS["pinky"]})
    # 9 palm fleshiness: the palmar side of the palm (and the thenar) bulges, the dorsum does not move.
    a, b, wc, hc = palm_sections(verts[:, 0])
    palmar = np.clip((hc - verts[:, 2]) / b, 0.0, None)
    inside_u = np.clip(verts[:, 0] / 20.0, 0.0, 1.0)
    per = np.zeros((16, nv, 3))
    per[0, :, 2] = -e * 10.0 * palmar * inside_u
    per[13, :, 2] = -e * 10.0 * palmar * inside_u
    out[9] = _blend(weights, per)
    return out


def orthogonal_shape_basis(raw: np.ndarray) -> np.ndarray:
    """Gram-Schmidt in component order, then scale each to its target largest displacement.

    Args:
        raw: (10, V, 3) displacement fields.

    Returns:
        (10, V, 3) orthogonal fields; component k moves some vertex by ``SHAPE_COMPONENTS[k][1]`` mm per unit.
    """
    flat = raw.reshape(len(raw), -1).copy()
    basis = []
    for k in range(len(flat)):
        v = flat[k].copy()
        for b in basis:
            v -= (v @ b) / (b @ b) * b
        basis.append(v)
    out = np.stack(basis).reshape(raw.shape)
    for k, (_, target) in enumerate(SHAPE_COMPONENTS):
        out[k] *= target / np.linalg.norm(out[k], axis=1).max()
    return out


# ---------------------------------------------------------------------------------------- pose correctives
def pose_correctives(verts: np.ndarray, normals: np.ndarray, labels: np.ndarray, skel: anatomy.Skeleton,
                     frames_model: np.ndarray) -> np.ndarray:
    """Knuckle-bulge pose correctives in MANO's posedirs layout (anatomical mm displacements).

    For the joints in :data:`BULGE_JOINTS`, dorsal vertices within ``BULGE_WIDTH_MM`` of the joint move along
    their normal by ``BULGE_MM * sin(flexion)``. ``sin(flexion)`` is entry (1, 0) of the joint's rotation in
    its anatomical frame, ``R_a = A^T R A``, which is linear in the entries of ``R - I``:
    ``R_a[1, 0] = sum_rc A[r, 1] A[c, 0] (R - I)[r, c]`` (A = anatomical frame in the model frame).

    Args:
        verts: (V, 3) rest vertices (u, w, h) mm.
        normals: (V, 3) unit outward normals (u, w, h).
        labels: (V,) hard part labels.
        skel: rest skeleton.
        frames_model: (16, 3, 3) anatomical frames in the model frame.

    Returns:
        (V, 3, 135) displacements in (u, w, h) mm per unit entry of ``R - I`` (model-frame rotation entries).
    """
    nv = len(verts)
    out = np.zeros((nv, 3, 135))
    digit_of = _digit_of_joint()
    for j in BULGE_JOINTS:
        chain = FINGER_JOINTS[digit_of[j]]
        near_parts = np.isin(labels, [0, *chain])
        d = skel.dirs[j]
        q = verts - skel.joints[j]
        axial = q @ d
        fall = np.clip(1.0 - (axial / BULGE_WIDTH_MM) ** 2, 0.0, None)
        dorsal = np.clip(normals @ skel.dorsal[j], 0.0, None) ** 2
        radial = np.linalg.norm(q - axial[:, None] * d, axis=1)
        close = radial < 1.6 * skel.radii[j, 0].max()
        amp = BULGE_MM * fall * dorsal * close * near_parts
        field = amp[:, None] * normals  # (V, 3) per unit sin(flexion)
        a = frames_model[j]
        coef = np.outer(a[:, 1], a[:, 0]).reshape(9)  # d R_a[1, 0] / d (R - I)[r, c]
        out[:, :, 9 * (j - 1): 9 * j] += field[:, :, None] * coef[None, None, :]
    return out
