"""Fast vectorised z-buffer rasterizer (numpy) for synthetic data and overlays.

Conventions
-----------
* **Camera frame**: OpenCV/ROS optical frame, metres: x right, y down, z forward. A camera-frame point ``X`` maps
  to continuous image coordinates ``(u, v) = (K X)[:2] / (K X)[2]`` in pixels (u right, v down).
* **Pixel centres at integers** (the project convention, as OpenCV and ROS CameraInfo; see
  :mod:`hand_recon_core.data.sample`): pixel ``(row i, col j)`` is sampled at ``(u, v) = (j, i)`` and covers
  ``[j - 0.5, j + 0.5) x [i - 0.5, i + 0.5)``; the image centre is ``((W - 1) / 2, (H - 1) / 2)``. Internally the
  rasterizer works with corner-origin coordinates (centres at integer + 0.5): :func:`to_corner_origin` shifts
  ``K`` once at the API boundary.
* **Coverage rule**: a pixel centre is covered by a triangle when it lies inside it; centres exactly on an edge
  count as inside (up to floating-point rounding). The two triangles sharing an edge compute bitwise the same
  edge crossing on every pixel row (exactly negated edge functions), so every centre is covered by at least one
  of them: closed meshes render without cracks. Depth ties go to the lower face index (mesh order, then face
  order).
* **Depth** is the camera-frame ``z`` (metres) of the visible surface, not the Euclidean ray length.
* **Near plane**: surface points with ``z < z_near`` are discarded per pixel (homogeneous rasterisation), which is
  exactly clipping every triangle against the plane ``z = z_near``: a triangle partly behind the camera renders
  its visible part and never crashes; a triangle entirely behind is dropped. Barycentrics always refer to the
  original (unclipped) face.
* **Both sides** of every triangle are rendered (no back-face culling), so open meshes (e.g. a hand's wrist
  opening) show their inside; shading uses the outward normal as given (see :func:`compute_vertex_normals`).
* **Lighting**: Lambertian shading with 27 spherical-harmonics coefficients, see :func:`sh_basis` for the basis
  and coefficient order. ``colour = albedo * shading(normal)`` with the normal interpolated from the vertex
  normals (perspective-correct) and renormalised, evaluated in the camera frame, then clipped to ``[0, 1]``.
* **Anti-aliasing** (``antialias=True``): the label maps (``depth``, ``mesh_id``, ``face_id``, ``bary``) are
  exact, aliased, one sample per pixel centre. The colour image is supersampled only where it matters: both
  pixels of every horizontally or vertically adjacent pair that differ in mesh (or background) or show a
  relative depth jump > 2 % (occlusion edges) get :data:`AA_SAMPLE_OFFSETS` extra samples (4-rooks rotated grid),
  each rasterised exactly and shaded; their colour is the box-filtered mean of these and the centre sample
  (6 levels per edge pixel). Interior pixels keep their single centre sample.

Method
------
Every triangle ``(P0, P1, P2)`` (camera frame, float64) is set up once: the rows of ``adj([P0 P1 P2]) K^-1``
give three functions ``q_k(u, v)``, linear in the pixel coordinates, whose signs are the edge tests
(homogeneous rasterisation: no division by z, valid for triangles crossing the camera plane) and whose
normalised values are the perspective-correct barycentrics; ``1 / z`` is linear in ``(u, v)`` too. Along one
pixel row each edge test is a half-line ``u >= t_k`` or ``u <= t_k``, so the covered pixels of a row form one
span computed in closed form. Rows of all triangles are enumerated in bulk (ragged ``np.repeat``), then only the
covered pixels, so the work is proportional to the rows plus the covered pixels (no per-pixel candidate tests,
no padding; big triangles cost their area). Visibility is one ``np.minimum.at`` on packed int64 keys
``float32 depth bits << 32 | face slot``: an exact z-buffer with ties going to the lower face index.

Speed: ``hand-recon bench render``. Each render allocates and frees a few MB of temporaries; with glibc's
default heap trimming these pages are faulted in again on every call (about a quarter of the time at 256 x 256).
Call :func:`reuse_freed_memory` once in rendering processes (e.g. data-generation workers) to avoid that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AA_SAMPLE_OFFSETS",
    "DEFAULT_Z_NEAR",
    "RenderResult",
    "compute_vertex_normals",
    "default_sh",
    "render_meshes",
    "reuse_freed_memory",
    "sh_basis",
    "sh_from_directional_light",
    "sh_shading",
]

#: default near-plane distance (metres)
DEFAULT_Z_NEAR = 0.01

#: anti-aliasing samples per supersampled pixel, as (du, dv) offsets in pixels from the pixel's top-left corner:
#: a 4-rooks rotated grid; with the centre sample (0.5, 0.5) every sample has a distinct u and a distinct v.
AA_SAMPLE_OFFSETS: tuple[tuple[float, float], ...] = ((0.375, 0.125), (0.875, 0.375), (0.125, 0.625),
                                                     (0.625, 0.875))

#: samples shaded per chunk (keeps the shading temporaries in the CPU cache)
_CHUNK = 16384

#: relative depth jump between neighbouring pixels of the same mesh that marks an occlusion edge for AA
_AA_DEPTH_JUMP = 0.02

#: real SH constants for bands 0..2 (standard orthonormal real spherical harmonics)
_SH_C0 = 0.28209479177387814  # 1 / (2 sqrt(pi))
_SH_C1 = 0.4886025119029199  # sqrt(3 / (4 pi))
_SH_C2 = 1.0925484305920792  # sqrt(15 / (4 pi))
_SH_C3 = 0.31539156525252005  # sqrt(5 / (16 pi))
_SH_C4 = 0.5462742152960396  # sqrt(15 / (16 pi))

#: SH coefficients of the clamped cosine max(0, cos) per band, A_l = pi, 2 pi / 3, pi / 4 (Ramamoorthi &
#: Hanrahan 2001): max(0, n . l) ~= sum_k A_l(k) Y_k(l) Y_k(n)
_LAMBERT_BAND = np.array([np.pi] + [2.0 * np.pi / 3.0] * 3 + [np.pi / 4.0] * 5)

_EMPTY_KEY = np.iinfo(np.int64).max


@dataclass
class RenderResult:
    """Output of :func:`render_meshes`. ``H, W`` = image size in pixels.

    Attributes:
        image: (H, W, 3) float32 RGB in [0, 1] (anti-aliased when requested).
        depth: (H, W) float32 camera-frame z of the visible surface in metres; +inf on background.
        mesh_id: (H, W) int32 index into the input mesh list of the visible mesh; -1 on background.
        face_id: (H, W) int32 face index within that mesh (row of its ``faces``); -1 on background.
        bary: (H, W, 3) float32 perspective-correct barycentric coordinates of the pixel centre with respect to
            the visible face's three vertices (sum to 1); zeros on background.
    """

    image: np.ndarray
    depth: np.ndarray
    mesh_id: np.ndarray
    face_id: np.ndarray
    bary: np.ndarray


def reuse_freed_memory(block_bytes: int = 24 << 20) -> None:
    """Make glibc keep freed memory for reuse instead of returning it to the OS (process-wide, call once).

    glibc serves allocations above a dynamic threshold (initially 128 kB) with fresh ``mmap`` pages and trims the
    heap top when more than twice that threshold is free, so a loop of renders page-faults its temporaries in on
    every call (~1000 faults per 256 x 256 render, ~25 % of its time). Freeing one large block raises the
    threshold to its size (glibc's documented dynamic behaviour, the same as after any numpy array of that size
    is freed): allocations below ``block_bytes`` then reuse the heap and up to ``2 * block_bytes`` of free heap
    is retained. The block is never touched, so this costs no memory by itself. Harmless with other allocators.

    Args:
        block_bytes: size of the block (glibc ignores blocks above 32 MiB for this purpose).
    """
    block = np.empty(block_bytes // 8, dtype=np.float64)
    del block


# ----------------------------------------------------------------------------------------------------------
# normals and spherical-harmonics lighting
# ----------------------------------------------------------------------------------------------------------


def compute_vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals of a triangle mesh.

    Faces are counter-clockwise seen from outside, so ``cross(v1 - v0, v2 - v0)`` (whose length is twice the face
    area) points outward; each vertex normal is the normalised sum of the unnormalised normals of its faces.

    Args:
        vertices: (V, 3) float array, any frame and unit.
        faces: (F, 3) int array of vertex indices.

    Returns:
        (V, 3) float32 unit normals in the frame of ``vertices``; zero for vertices used by no (or only
        degenerate) faces.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    n_vert = v.shape[0]
    if f.shape[0] == 0:
        return np.zeros((n_vert, 3), dtype=np.float32)
    v0, v1, v2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    fn = np.cross(v1 - v0, v2 - v0)
    idx = f.T.reshape(-1)  # all corner-0 entries, then corner 1, then corner 2
    out = np.empty((n_vert, 3), dtype=np.float64)
    for c in range(3):
        out[:, c] = np.bincount(idx, weights=np.tile(fn[:, c], 3), minlength=n_vert)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norm, out=out, where=norm > 0)
    out[norm[:, 0] == 0] = 0.0
    return out.astype(np.float32)


def sh_basis(normals: np.ndarray) -> np.ndarray:
    """The 9 real spherical harmonics of bands 0-2 evaluated at unit directions.

    Order (index: function of the unit normal ``(x, y, z)`` in the camera frame):
    ``0: C0``, ``1: C1 y``, ``2: C1 z``, ``3: C1 x``, ``4: C2 x y``, ``5: C2 y z``, ``6: C3 (3 z^2 - 1)``,
    ``7: C2 x z``, ``8: C4 (x^2 - y^2)`` with ``C0 = 1 / (2 sqrt(pi))``, ``C1 = sqrt(3 / (4 pi))``,
    ``C2 = sqrt(15 / (4 pi))``, ``C3 = sqrt(5 / (16 pi))``, ``C4 = sqrt(15 / (16 pi))``: the standard
    orthonormal real SH ``Y_lm`` in the order ``(l, m) = (0, 0), (1, -1), (1, 0), (1, 1), (2, -2), (2, -1),
    (2, 0), (2, 1), (2, 2)``.

    Args:
        normals: (N, 3) float unit vectors.

    Returns:
        (N, 9) float array (float64 unless the input is float32, then float32).
    """
    n = np.asarray(normals)
    if n.dtype != np.float32:
        n = n.astype(np.float64)
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    out = np.empty((n.shape[0], 9), dtype=n.dtype)
    out[:, 0] = _SH_C0
    out[:, 1] = _SH_C1 * y
    out[:, 2] = _SH_C1 * z
    out[:, 3] = _SH_C1 * x
    out[:, 4] = _SH_C2 * x * y
    out[:, 5] = _SH_C2 * y * z
    out[:, 6] = _SH_C3 * (3.0 * z * z - 1.0)
    out[:, 7] = _SH_C2 * x * z
    out[:, 8] = _SH_C4 * (x * x - y * y)
    return out


def _sh_matrix(sh: np.ndarray) -> np.ndarray:
    sh = np.asarray(sh, dtype=np.float64).reshape(-1)
    if sh.shape[0] != 27:
        raise ValueError(f"sh coefficients must have 27 entries, got {sh.shape[0]}")
    return sh.reshape(3, 9).T  # (9, 3): column c = the 9 coefficients of colour channel c


def sh_shading(normals: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """Lambertian SH shading (irradiance / pi) per unit normal and colour channel.

    ``shading[n, c] = sum_k sh[9 c + k] * Y_k(normal_n)`` with ``Y_k`` from :func:`sh_basis`. The 27
    coefficients are channel-major: ``sh[0:9]`` red, ``sh[9:18]`` green, ``sh[18:27]`` blue (``sh.reshape(3,
    9)``), as in the 3DMM / single-stage hand literature. They describe the shading function directly, i.e. the
    clamped-cosine (Lambertian) convolution is already folded in; :func:`sh_from_directional_light` builds such
    coefficients from a light direction. The rendered colour is ``albedo * shading``; the shading is not clamped
    here (the renderer clips the final colour to [0, 1]).

    Args:
        normals: (N, 3) float unit normals, camera frame (x right, y down, z forward).
        sh: (27,) float SH coefficients (see above).

    Returns:
        (N, 3) float32 shading per RGB channel (1 = full albedo).
    """
    return (sh_basis(normals) @ _sh_matrix(sh)).astype(np.float32)


def sh_from_directional_light(direction: Sequence[float], intensity: float = 0.65, ambient: float = 0.35,
                              color: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """SH coefficients (27,) of an ambient term plus one distant light, for :func:`sh_shading`.

    The target shading is ``ambient + intensity * max(0, n . l)`` per channel scaled by ``color``; its band-0..2
    projection (exact for the ambient term, the usual 9-coefficient approximation of the clamped cosine) is
    returned.

    Args:
        direction: (3,) direction from the surface towards the light, camera frame (need not be unit). E.g.
            ``(0, 0, -1)`` is a light at the camera; ``(0, -1, 0)`` a light from above the image.
        intensity: light intensity (shading of a surface facing the light, minus the ambient term).
        ambient: uniform shading term.
        color: (3,) RGB multiplier of the whole shading.

    Returns:
        (27,) float64 coefficients, channel-major (``reshape(3, 9)``: red, green, blue).
    """
    d = np.asarray(direction, dtype=np.float64).reshape(1, 3)
    d = d / np.linalg.norm(d)
    per_band = intensity * _LAMBERT_BAND * sh_basis(d)[0]
    per_band[0] += ambient / _SH_C0
    return (np.asarray(color, dtype=np.float64).reshape(3, 1) * per_band[None, :]).reshape(27)


def default_sh() -> np.ndarray:
    """Default soft frontal light: a light at the camera slightly above the optical axis plus ambient.

    A surface facing the camera is shaded ~0.95, one seen edge-on ~0.35, and no direction gets less than ~0.3.

    Returns:
        (27,) float64 SH coefficients (see :func:`sh_shading`).
    """
    return sh_from_directional_light((0.0, -0.3, -1.0), intensity=0.65, ambient=0.3)


# ----------------------------------------------------------------------------------------------------------
# rasterisation core
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _Setup:
    """Per-face rasterisation data of the kept faces ("slots", ``n`` of them)."""

    face: np.ndarray  # (n,) int64 index into the concatenated face array
    coef: np.ndarray  # (9, n) float64: q_k(u, v) = coef[3k] u + coef[3k + 1] v + coef[3k + 2], k = 0, 1, 2
    absdet: np.ndarray  # (n,) float64 |det [P0 P1 P2]|: z = absdet / sum_k q_k
    iz: np.ndarray  # (3, n) float64: 1 / z = iz[0] u + iz[1] v + iz[2]
    span: np.ndarray  # (8, n) float64: (m, n) of edges L1, L2, U1, U2, see _setup_faces
    edge_m: np.ndarray  # (3, n) float64 m_k (unsorted edges; used for faces crossing the near plane)
    edge_n: np.ndarray  # (3, n) float64 n_k
    edge_role: np.ndarray  # (3, n) float64 sign(a_k): +1 left edge, -1 right edge, 0 screen-horizontal
    v_lim: np.ndarray  # (2, n) float64: v range allowed by screen-horizontal edges (-inf, inf if none)
    partial: np.ndarray  # (n,) bool: some vertex lies in front of the near plane (per-row near test needed)
    u_min: np.ndarray  # (n,) float64 screen bbox of the near-clipped triangle (pixels)
    u_max: np.ndarray
    v_min: np.ndarray
    v_max: np.ndarray


def _setup_faces(verts: np.ndarray, faces: np.ndarray, K: np.ndarray, z_near: float) -> _Setup:
    """Triangle setup. ``verts`` (V, 3) float64 camera frame, ``faces`` (F, 3) int64, ``K`` (3, 3) float64.

    For the triangle matrix ``M = [P0 P1 P2]`` (columns) the rows of ``adj(M)`` are ``P1 x P2``, ``P2 x P0`` and
    ``P0 x P1``. For the ray ``d = K^-1 (u, v, 1)``, ``g = adj(M) d / det(M)`` satisfies ``M g = d``, so
    ``g / sum(g)`` are the perspective-correct barycentrics and ``z = 1 / sum(g)``; the sample is on the
    triangle and in front of the camera iff all ``g_k >= 0``. We store ``q = sign(det) adj(M) K^-1 (u, v, 1) =
    |det| g``. Along a pixel row, ``q_k >= 0`` reads ``u >= t_k`` (``a_k > 0``, a left edge) or ``u <= t_k``
    (``a_k < 0``, a right edge) with ``t_k = m_k v + n_k``, ``m_k = -coef[3k+1] / coef[3k]``,
    ``n_k = -coef[3k+2] / coef[3k]``. Cross products are written out so that the two faces sharing an edge get
    exactly negated coefficients, hence bitwise identical ``t``: one takes ``ceil``, the other ``floor`` of it,
    so closed meshes have neither cracks nor double coverage (except samples exactly on the edge).
    """
    z = verts[:, 2]
    zf = z[faces]
    keep = np.maximum(np.maximum(zf[:, 0], zf[:, 1]), zf[:, 2]) >= z_near
    if not np.isfinite(verts).all():
        keep &= np.isfinite(verts).all(axis=1)[faces].all(axis=1)
    face_idx = np.flatnonzero(keep)
    tri = faces[face_idx]
    x, y = verts[:, 0], verts[:, 1]
    i0, i1, i2 = tri[:, 0], tri[:, 1], tri[:, 2]
    x0, y0, z0 = x[i0], y[i0], z[i0]
    x1, y1, z1 = x[i1], y[i1], z[i1]
    x2, y2, z2 = x[i2], y[i2], z[i2]
    # rows of adj(M): P1 x P2, P2 x P0, P0 x P1
    cr = np.stack([y1 * z2 - z1 * y2, z1 * x2 - x1 * z2, x1 * y2 - y1 * x2,
                   y2 * z0 - z2 * y0, z2 * x0 - x2 * z0, x2 * y0 - y2 * x0,
                   y0 * z1 - z0 * y1, z0 * x1 - x0 * z1, x0 * y1 - y0 * x1])  # (9, n)
    det = x0 * cr[0] + y0 * cr[1] + z0 * cr[2]
    ok = np.flatnonzero(det != 0.0)
    if ok.size != det.size:
        face_idx, det, cr = face_idx[ok], det[ok], cr[:, ok]
        x0, y0, z0, x1, y1, z1, x2, y2, z2 = (a[ok] for a in (x0, y0, z0, x1, y1, z1, x2, y2, z2))
    cr *= np.sign(det)
    ki = np.linalg.inv(K)
    coef = np.empty_like(cr)
    for k in range(3):
        for j in range(3):
            coef[3 * k + j] = cr[3 * k] * ki[0, j] + cr[3 * k + 1] * ki[1, j] + cr[3 * k + 2] * ki[2, j]
    absdet = np.abs(det)
    iz = np.stack([coef[j] + coef[3 + j] + coef[6 + j] for j in range(3)]) / absdet

    # per-row spans: sort the edges into left (a > 0) and right (a < 0) ones, 2 slots each (pads: +-inf)
    a = coef[0::3]  # (3, n)
    role = np.sign(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = -coef[1::3] / a
        n_ = -coef[2::3] / a
        r = -coef[2::3] / coef[1::3]  # horizontal edges (a == 0): q_k >= 0 <=> v >= r (b > 0) or v <= r
    edge_m, edge_n = np.where(role != 0, m, 0.0), np.where(role != 0, n_, 0.0)
    span = np.empty((8, a.shape[1]))
    for side, (want, pad) in enumerate(((1.0, -np.inf), (-1.0, np.inf))):
        on = role == want  # (3, n); a face fully in front has 1 or 2 edges per side
        any_on = on[0] | on[1] | on[2]
        two = (on[0] & (on[1] | on[2])) | (on[1] & on[2])
        for e, t in enumerate((edge_m, edge_n)):
            first = np.where(on[0], t[0], np.where(on[1], t[1], t[2]))  # first edge of this side
            last = np.where(on[2], t[2], t[1])  # the other one when there are two
            span[4 * side + e] = np.where(any_on, first, pad if e else 0.0)
            span[4 * side + 2 + e] = np.where(two, last, pad if e else 0.0)
    horiz = a == 0
    b_v = coef[1::3]
    v_lim = np.stack([np.where(horiz & (b_v > 0), r, -np.inf).max(axis=0),
                      np.where(horiz & (b_v < 0), r, np.inf).min(axis=0)])
    empty_face = (horiz & (b_v == 0) & (coef[2::3] < 0)).any(axis=0)  # degenerate in screen
    v_lim[0, empty_face] = np.inf
    v_lim[1, empty_face] = -np.inf

    # screen bounding boxes; triangles crossing the near plane are clipped first (for the bbox only)
    partial = (np.stack([z0, z1, z2]) < z_near).any(axis=0)
    us, vs = [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        for xv, yv, zv in ((x0, y0, z0), (x1, y1, z1), (x2, y2, z2)):
            us.append((K[0, 0] * xv + K[0, 1] * yv + K[0, 2] * zv) / zv)
            vs.append((K[1, 0] * xv + K[1, 1] * yv + K[1, 2] * zv) / zv)
    u_min = np.minimum(np.minimum(us[0], us[1]), us[2])
    u_max = np.maximum(np.maximum(us[0], us[1]), us[2])
    v_min = np.minimum(np.minimum(vs[0], vs[1]), vs[2])
    v_max = np.maximum(np.maximum(vs[0], vs[1]), vs[2])
    part = np.flatnonzero(partial)
    if part.size:
        pts = np.stack([np.stack([x0, y0, z0], 1), np.stack([x1, y1, z1], 1), np.stack([x2, y2, z2], 1)],
                       axis=1)[part]  # (m, 3, 3)
        front = pts[:, :, 2] >= z_near
        cand = [np.where(front[:, k:k + 1], pts[:, k], np.nan) for k in range(3)]
        for ea, eb in ((0, 1), (1, 2), (2, 0)):
            za, zb = pts[:, ea, 2], pts[:, eb, 2]
            crossing = (za - z_near) * (zb - z_near) < 0
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (z_near - za) / (zb - za)
            hit = pts[:, ea] + t[:, None] * (pts[:, eb] - pts[:, ea])
            hit[:, 2] = z_near
            cand.append(np.where(crossing[:, None], hit, np.nan))
        cp = np.stack(cand, axis=1) @ K.T  # (m, 6, 3); NaN rows for missing points
        cu, cv = cp[..., 0] / cp[..., 2], cp[..., 1] / cp[..., 2]
        u_min[part], u_max[part] = np.nanmin(cu, axis=1), np.nanmax(cu, axis=1)
        v_min[part], v_max[part] = np.nanmin(cv, axis=1), np.nanmax(cv, axis=1)
    return _Setup(face_idx, coef, absdet, iz, span, edge_m, edge_n, role, v_lim, partial, u_min, u_max, v_min, v_max)


def _index_range(lo: np.ndarray, hi: np.ndarray, offset: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer range [a, b] of the samples ``index + offset`` inside [lo, hi], clamped to [0, n - 1]."""
    with np.errstate(invalid="ignore"):
        a = np.ceil(np.clip(lo - offset, -1.0, n))
        b = np.floor(np.clip(hi - offset, -1.0, n))
    return np.maximum(a, 0).astype(np.int64), np.minimum(b, n - 1).astype(np.int64)


def _rep_lin(m: np.ndarray, c: np.ndarray, counts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``repeat(m, counts) * x + repeat(c, counts)`` with one temporary."""
    out = np.repeat(m, counts)
    out *= x
    out += np.repeat(c, counts)
    return out


def _expand(owner: np.ndarray, start: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ragged ranges ``start[i] .. start[i] + count[i] - 1`` flattened: (``owner[i]`` per element, int32 value)."""
    count = np.maximum(count, 0)
    out_owner = np.repeat(owner, count)
    value = np.arange(out_owner.size, dtype=np.int32)
    value -= np.repeat((np.cumsum(count) - count - start).astype(np.int32), count)
    return out_owner, value


def _raster_centres(s: _Setup, height: int, width: int,
                    z_near: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every covered pixel centre ``(j + 0.5, i + 0.5)`` of every face.

    The pixel rows of every face's bounding box are enumerated; per row the covered columns form one span
    ``[max ceil(t_left), min floor(t_right)]`` (see :func:`_setup_faces`), and only covered pixels are then
    enumerated. Big arrays are updated in place to keep the peak memory (and page faults) low.

    Args:
        s: face setup.
        height, width: image size in pixels.
        z_near: near plane (metres).

    Returns:
        ``(slot (M,) intp, pixel (M,) intp = i * W + j, z (M,) float32 metres)`` of every covered centre.
    """
    empty = (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.float32))
    # rows: the bbox, the screen-horizontal edges' limits (exact, shared with the neighbour), the image
    eps = 1e-6  # the bbox comes from a projection and must not cut a covered row
    y_lo, y_hi = _index_range(np.fmax(s.v_min - eps, s.v_lim[0]), np.fmin(s.v_max + eps, s.v_lim[1]), 0.5,
                              height)
    x_lo, x_hi = _index_range(s.u_min - eps, s.u_max + eps, 0.5, width)
    bh = np.where(x_hi >= x_lo, y_hi - y_lo + 1, 0)
    faces_nz = np.flatnonzero(bh > 0)
    if faces_nz.size == 0:
        return empty
    bh = bh[faces_nz]
    rslot, ry = _expand(faces_nz, y_lo[faces_nz], bh)
    v = ry + 0.5
    sp = s.span[:, faces_nz]
    lo = _rep_lin(sp[0], sp[1], bh, v)
    np.fmax(lo, _rep_lin(sp[2], sp[3], bh, v), out=lo)
    hi = _rep_lin(sp[4], sp[5], bh, v)
    np.fmin(hi, _rep_lin(sp[6], sp[7], bh, v), out=hi)
    # 1 / z along the row: iz_u * u + beta
    iz = s.iz[:, faces_nz]
    beta = _rep_lin(iz[1], iz[2], bh, v)
    if s.partial[faces_nz].any():
        # faces crossing the near plane: their screen region may have three left (or right) edges, so use all
        # three edge lines, then z >= z_near <=> 1 / z <= 1 / z_near (linear in u along the row)
        rows = np.flatnonzero(np.repeat(s.partial[faces_nz], bh))
        sl, vr = rslot[rows], v[rows]
        lo_p = np.full(rows.size, -np.inf)
        hi_p = np.full(rows.size, np.inf)
        for k in range(3):
            t = s.edge_m[k, sl] * vr + s.edge_n[k, sl]
            role = s.edge_role[k, sl]
            lo_p = np.where(role > 0, np.fmax(lo_p, t), lo_p)
            hi_p = np.where(role < 0, np.fmin(hi_p, t), hi_p)
        ia = s.iz[0, sl]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (1.0 / z_near - beta[rows]) / ia
        lo[rows] = np.where(ia < 0, np.fmax(lo_p, t), lo_p)
        hi[rows] = np.where(ia > 0, np.fmin(hi_p, t), hi_p)
    del v
    lo -= 0.5
    hi -= 0.5
    np.clip(lo, 0.0, width, out=lo)
    np.ceil(lo, out=lo)
    np.clip(hi, -1.0, width - 1.0, out=hi)
    np.floor(hi, out=hi)
    hi -= lo
    w = hi.astype(np.int32)  # span width - 1
    del hi
    w += 1
    lo_i = lo.astype(np.int32)
    del lo
    rows_nz = np.flatnonzero(w > 0)
    if rows_nz.size == 0:
        return empty
    w = w[rows_nz]
    _, col = _expand(rows_nz, lo_i[rows_nz], w)
    slot = np.repeat(rslot[rows_nz], w)
    # 1 / z at (u, v) = iz_u * col + (iz_u / 2 + beta)
    iz_u = np.take(s.iz[0], rslot[rows_nz])
    beta = beta[rows_nz]
    beta += 0.5 * iz_u
    inv_z = _rep_lin(iz_u, beta, w, col)
    z = np.reciprocal(inv_z, out=inv_z).astype(np.float32)
    del inv_z
    pixel = np.repeat(ry[rows_nz].astype(np.intp) * width, w)
    pixel += col
    return slot, pixel, z


def _aa_samples(s: _Setup, band: np.ndarray, z_near: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covered anti-aliasing samples (:data:`AA_SAMPLE_OFFSETS`) of the pixels in ``band``.

    Candidate (face, pixel) pairs are the band pixels inside a conservative span of the face on that pixel row
    (its edge lines at the lowest and highest sample ``v``); each candidate's samples are then tested exactly
    with the edge functions ``q_k`` (and the near plane).

    Args:
        s: face setup.
        band: (H, W) bool pixels to supersample.
        z_near: near plane (metres).

    Returns:
        ``(slot (M,) intp, entry (M,) intp = band_index * n_samples + sample, z (M,) float32 metres)`` where
        ``band_index`` counts the True pixels of ``band`` in row-major order.
    """
    height, width = band.shape
    offs = np.asarray(AA_SAMPLE_OFFSETS)
    n_s = offs.shape[0]
    du_lo, du_hi, dv_lo, dv_hi = offs[:, 0].min(), offs[:, 0].max(), offs[:, 1].min(), offs[:, 1].max()
    empty = (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.float32))
    # faces whose bbox holds a band pixel: summed-area table, built transposed (fast contiguous cumsums)
    rcs = np.zeros((height, width + 1), dtype=np.int32)
    np.cumsum(band, axis=1, dtype=np.int32, out=rcs[:, 1:])
    sat_t = np.zeros((width + 1, height + 1), dtype=np.int32)
    np.cumsum(np.ascontiguousarray(rcs.T), axis=1, dtype=np.int32, out=sat_t[:, 1:])
    sat_t, rcs = sat_t.reshape(-1), rcs.reshape(-1)
    x_lo, x_hi = _index_range(s.u_min, s.u_max, (du_lo + du_hi) / 2, width)  # widened below
    x_lo, x_hi = np.maximum(x_lo - 1, 0), np.minimum(x_hi + 1, width - 1)
    y_lo = np.clip(np.floor(s.v_min - dv_hi), 0, height).astype(np.int64)
    y_hi = np.clip(np.floor(s.v_max - dv_lo), -1, height - 1).astype(np.int64)
    h1 = height + 1
    xa, xb = x_lo * h1, np.maximum(x_hi + 1, x_lo) * h1
    ya, yb = y_lo, np.maximum(y_hi + 1, y_lo)
    hits = sat_t[xb + yb] - sat_t[xa + yb] - sat_t[xb + ya] + sat_t[xa + ya]
    faces_nz = np.flatnonzero(hits > 0)
    if faces_nz.size == 0:
        return empty
    # (face, pixel row) pairs and a conservative column range of the face on that row
    pslot, py = _expand(faces_nz, y_lo[faces_nz], y_hi[faces_nz] - y_lo[faces_nz] + 1)
    va, vb = py + dv_lo, py + dv_hi
    sp = np.take(s.span, pslot, axis=1)
    lo = np.fmax(np.minimum(sp[0] * va, sp[0] * vb) + sp[1], np.minimum(sp[2] * va, sp[2] * vb) + sp[3])
    hi = np.fmin(np.maximum(sp[4] * va, sp[4] * vb) + sp[5], np.maximum(sp[6] * va, sp[6] * vb) + sp[7])
    part = s.partial[pslot]
    lo = np.where(part, -np.inf, lo)
    hi = np.where(part, np.inf, hi)
    c0 = np.maximum(np.ceil(np.clip(lo - du_hi, -1.0, width)), x_lo[pslot]).astype(np.int32)
    c1 = np.minimum(np.floor(np.clip(hi - du_lo, -1.0, width)), x_hi[pslot]).astype(np.int32)
    # keep pairs whose range holds a band pixel (per-row prefix sums)
    base = py * (width + 1)
    keep = np.flatnonzero((c1 >= c0) & (rcs[base + np.maximum(c1 + 1, c0)] > rcs[base + c0]))
    pslot, py, c0, c1 = pslot[keep], py[keep], c0[keep], c1[keep]
    owner, col = _expand(np.arange(pslot.size), c0, c1 - c0 + 1)
    pix = py[owner].astype(np.int64) * width + col
    keep = np.flatnonzero(band.reshape(-1)[pix])
    slot, pix = pslot[owner[keep]], pix[keep]
    # exact edge functions at the pixel corner (col, row), then at every sample offset: (3, n_s, N)
    row, col = np.divmod(pix, width)
    c = s.coef
    cs = np.take(c, slot, axis=1)  # (9, N)
    q = np.stack([cs[3 * k] * col + cs[3 * k + 1] * row + cs[3 * k + 2] for k in range(3)])
    q = q[:, None, :] + cs[0::3, None, :] * offs[None, :, 0, None]
    q += cs[1::3, None, :] * offs[None, :, 1, None]
    total = q[0] + q[1] + q[2]
    hit = np.flatnonzero(((q[0] >= 0) & (q[1] >= 0) & (q[2] >= 0) & (total > 0)).reshape(-1))
    k, cand = np.divmod(hit, pix.size)
    z = np.take(s.absdet, slot[cand]) / total.reshape(-1)[hit]
    front = np.flatnonzero(z >= z_near)
    k, cand, z = k[front], cand[front], z[front]
    # index of the pixel among the band pixels (row-major): band pixels in earlier rows + earlier in this row
    row_start = np.concatenate([[0], np.cumsum(rcs.reshape(height, width + 1)[:, -1])])
    band_index = row_start[row[cand]] + rcs[row[cand] * (width + 1) + col[cand]]
    return slot[cand], band_index * n_s + k, z.astype(np.float32)


def _zbuffer(n: int, index: np.ndarray, z: np.ndarray, slot: np.ndarray) -> tuple[np.ndarray, ...]:
    """Nearest sample per buffer entry; ties go to the lower slot (= lower face index).

    Args:
        n: buffer size.
        index: (M,) intp buffer entry of each sample.
        z: (M,) float32 positive depths.
        slot: (M,) intp face slots (< 2^32).

    Returns:
        ``(entries (E,) intp, slots (E,) int64, depths (E,) float32)`` of the covered entries, ascending.
    """
    keys = np.full(n, _EMPTY_KEY, dtype=np.int64)
    # positive float32 bit patterns order like the floats: pack (depth, slot) into one int64 key
    key = z.view(np.int32).astype(np.int64)
    key <<= 32
    key |= slot
    np.minimum.at(keys, index, key)
    entries = np.flatnonzero(keys != _EMPTY_KEY)
    k = keys[entries]
    return entries, k & 0xFFFFFFFF, (k >> 32).astype(np.int32).view(np.float32)


def _barycentrics(s: _Setup, slot: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(3, N) float32 perspective-correct barycentrics of samples ``(u, v)`` (N,) in faces ``slot`` (N,) intp."""
    c = s.coef
    q = np.empty((3, slot.size), dtype=np.float64)
    for k in range(3):
        qk = q[k]
        np.multiply(np.take(c[3 * k], slot), u, out=qk)
        qk += np.take(c[3 * k + 1], slot) * v
        qk += np.take(c[3 * k + 2], slot)
    np.maximum(q, 0.0, out=q)
    q /= q[0] + q[1] + q[2]
    return q.astype(np.float32)


@dataclass
class _Scene:
    verts: np.ndarray  # (V, 3) float64 camera frame
    faces: np.ndarray  # (F, 3) int64 into verts
    normals: np.ndarray  # (V, 3) float32
    colors: np.ndarray  # (V, 3) float32
    face_mesh: np.ndarray  # (F,) int32 mesh index per face
    face_local: np.ndarray  # (F,) int32 face index within its mesh


def _build_scene(vertices, faces, vertex_colors) -> _Scene:
    if not (len(vertices) == len(faces) == len(vertex_colors)):
        raise ValueError("vertices, faces and vertex_colors must be lists of the same length")
    if not len(vertices):
        z3 = np.zeros((0, 3), dtype=np.float32)
        zi = np.zeros(0, dtype=np.int32)
        return _Scene(z3.astype(np.float64), np.zeros((0, 3), np.int64), z3, z3, zi, zi)
    vs, fs, cs = [], [], []
    offset = 0
    for i, (v, f, c) in enumerate(zip(vertices, faces, vertex_colors)):
        v = np.asarray(v, dtype=np.float64).reshape(-1, 3)
        f = np.asarray(f, dtype=np.int64).reshape(-1, 3)
        if f.size and (f.min() < 0 or f.max() >= v.shape[0]):
            raise ValueError(f"mesh {i}: face indices out of range")
        vs.append(v)
        fs.append(f + offset)
        cs.append(np.broadcast_to(np.asarray(c, dtype=np.float32), (v.shape[0], 3)))
        offset += v.shape[0]
    counts = np.array([f.shape[0] for f in fs])
    verts, all_faces = np.concatenate(vs), np.concatenate(fs)
    face_mesh = np.repeat(np.arange(counts.size, dtype=np.int32), counts)
    face_local = np.arange(all_faces.shape[0], dtype=np.int32) - np.repeat(np.cumsum(counts) - counts, counts)
    return _Scene(verts, all_faces, compute_vertex_normals(verts, all_faces), np.concatenate(cs), face_mesh,
                  face_local.astype(np.int32))


class _Shader:
    """Per-sample colour: perspective-correct interpolation of albedo and normal, SH shading."""

    def __init__(self, scene: _Scene, s: _Setup, sh: np.ndarray) -> None:
        self.s = s
        attr = np.concatenate([scene.colors, scene.normals], axis=1)  # (V, 6) float32
        # (3 corners, 6 channels, n slots): rgb then normal of each corner of each face slot
        self.attr = np.ascontiguousarray(attr[scene.faces[s.face]].transpose(1, 2, 0))
        self.sh_t = np.ascontiguousarray(_sh_matrix(sh).T.astype(np.float32))  # (3, 9)

    def __call__(self, slot: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unclipped colours (3, N) float32 and barycentrics (3, N) float32 of samples (u, v) on ``slot``."""
        n = slot.size
        color = np.empty((3, n), dtype=np.float32)
        bary = np.empty((3, n), dtype=np.float32)
        slot = slot.astype(np.intp, copy=False)
        for a in range(0, n, _CHUNK):  # chunks keep the ~30 temporaries cache-resident
            sl = slice(a, min(a + _CHUNK, n))
            bary[:, sl], color[:, sl] = self._shade(slot[sl], u[sl], v[sl])
        return color, bary

    def _shade(self, slot: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = _barycentrics(self.s, slot, u, v)
        a = self.attr
        ch = np.empty((6, slot.size), dtype=np.float32)
        for c in range(6):
            np.multiply(b[0], np.take(a[0, c], slot), out=ch[c])
            ch[c] += b[1] * np.take(a[1, c], slot)
            ch[c] += b[2] * np.take(a[2, c], slot)
        x, y, z = ch[3], ch[4], ch[5]
        inv = np.sqrt(x * x + y * y + z * z)
        np.maximum(inv, 1e-12, out=inv)
        np.divide(1.0, inv, out=inv)
        x *= inv
        y *= inv
        z *= inv
        basis = np.empty((9, slot.size), dtype=np.float32)
        basis[0] = _SH_C0
        np.multiply(y, _SH_C1, out=basis[1])
        np.multiply(z, _SH_C1, out=basis[2])
        np.multiply(x, _SH_C1, out=basis[3])
        np.multiply(x * y, _SH_C2, out=basis[4])
        np.multiply(y * z, _SH_C2, out=basis[5])
        np.multiply(z * z, 3.0 * _SH_C3, out=basis[6])
        basis[6] -= _SH_C3
        np.multiply(x * z, _SH_C2, out=basis[7])
        np.multiply(x * x - y * y, _SH_C4, out=basis[8])
        color = self.sh_t @ basis  # (3, N)
        color *= ch[0:3]
        return b, color


def _aa_band(mesh_id: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """(H, W) bool: both pixels of every horizontally or vertically adjacent pair that differ in mesh (or
    background) or have a relative depth jump above ``_AA_DEPTH_JUMP`` (an occlusion edge)."""
    band = np.zeros(mesh_id.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for a_sl, b_sl in (((slice(None), slice(0, -1)), (slice(None), slice(1, None))),
                           ((slice(0, -1), slice(None)), (slice(1, None), slice(None)))):
            za, zb = depth[a_sl], depth[b_sl]
            diff = np.abs(za - zb)
            edge = np.greater(diff, _AA_DEPTH_JUMP * np.minimum(za, zb))
            edge |= mesh_id[a_sl] != mesh_id[b_sl]
            band[a_sl] |= edge
            band[b_sl] |= edge
    return band


def _antialias(img: np.ndarray, s: _Setup, shade: _Shader, mesh_id: np.ndarray, depth: np.ndarray,
               background: np.ndarray | None, height: int, width: int, z_near: float) -> None:
    """Replace the colour of the band pixels (see :func:`_aa_band`) of ``img`` (H * W, 3) by the mean of their
    centre sample and their :data:`AA_SAMPLE_OFFSETS` samples (background where a sample hits no face)."""
    band = _aa_band(mesh_id.reshape(height, width), depth.reshape(height, width))
    band_pix = np.flatnonzero(band)
    n_s = len(AA_SAMPLE_OFFSETS)
    slot, entry, z = _aa_samples(s, band, z_near)
    entry, slot, _ = _zbuffer(band_pix.size * n_s, entry, z, slot)
    bpos, k = np.divmod(entry, n_s)
    spix = band_pix[bpos]
    offs = np.asarray(AA_SAMPLE_OFFSETS)
    if background is None:
        samples = np.zeros((band_pix.size * n_s, 3), dtype=np.float32)
    else:  # (n_band * n_s, 3) background behind every sample
        samples = np.repeat(np.asarray(background, np.float32).reshape(-1, 3)[band_pix], n_s, axis=0)
    samples[entry] = shade(slot, (spix % width) + offs[k, 0], (spix // width) + offs[k, 1])[0].T
    acc = img[band_pix] + samples[0::n_s]
    for i in range(1, n_s):
        acc += samples[i::n_s]
    img[band_pix] = acc / (1 + n_s)


def to_corner_origin(K) -> np.ndarray:
    """(3, 3) float64 intrinsics for corner-origin pixel coordinates (centres at integer + 0.5), from intrinsics
    in the project convention (centres at integers): ``cx + 0.5``, ``cy + 0.5``. Used internally by the
    rasterizers; callers always pass project-convention ``K``."""
    K = np.array(K, dtype=np.float64).reshape(3, 3)
    K[0, 2] += 0.5 * K[2, 2]
    K[1, 2] += 0.5 * K[2, 2]
    return K


def render_meshes(vertices: Sequence[np.ndarray], faces: Sequence[np.ndarray],
                  vertex_colors: Sequence[np.ndarray], K: np.ndarray, size: tuple[int, int],
                  sh_coeffs: np.ndarray | None = None, background: np.ndarray | None = None,
                  antialias: bool = True, *, z_near: float = DEFAULT_Z_NEAR) -> RenderResult:
    """Render triangle meshes with a z-buffer, per-vertex colours and SH lighting.

    See the module docstring for the conventions (pixel centres at integers, near-plane handling,
    coverage rule, anti-aliasing). Rendering loops should call :func:`reuse_freed_memory` once per process.

    Args:
        vertices: list of (V_i, 3) float arrays, camera frame (x right, y down, z forward), metres.
        faces: list of (F_i, 3) int arrays indexing the matching ``vertices``; counter-clockwise seen from
            outside.
        vertex_colors: list of (V_i, 3) float RGB albedo in [0, 1] (a (3,) colour is broadcast).
        K: (3, 3) float pinhole intrinsics in pixels, ``[[fx, skew, cx], [0, fy, cy], [0, 0, 1]]``.
        size: (H, W) image size in pixels.
        sh_coeffs: (27,) float SH lighting (see :func:`sh_shading`); None uses :func:`default_sh`.
        background: (H, W, 3) float RGB in [0, 1] behind the meshes; None is black.
        antialias: supersample the colour image on silhouette / occlusion edges (label maps stay exact).
        z_near: near-plane distance in metres (> 0).

    Returns:
        :class:`RenderResult` with the image and the exact label maps.
    """
    height, width = int(size[0]), int(size[1])
    if z_near <= 0:
        raise ValueError("z_near must be > 0")
    K = to_corner_origin(K)
    if background is None:
        image = np.zeros((height, width, 3), dtype=np.float32)
    else:
        image = np.array(background, dtype=np.float32, copy=True).reshape(height, width, 3)
    scene = _build_scene(vertices, faces, vertex_colors)
    s = _setup_faces(scene.verts, scene.faces, K, z_near)

    n_pix = height * width
    depth = np.full(n_pix, np.inf, dtype=np.float32)
    mesh_id = np.full(n_pix, -1, dtype=np.int32)
    face_id = np.full(n_pix, -1, dtype=np.int32)
    bary = np.zeros((n_pix, 3), dtype=np.float32)
    shade = _Shader(scene, s, default_sh() if sh_coeffs is None else sh_coeffs)

    slot, pix, z = _raster_centres(s, height, width, z_near)
    pix, slot, zvis = _zbuffer(n_pix, pix, z, slot)
    gface = s.face[slot]
    depth[pix] = zvis
    mesh_id[pix] = scene.face_mesh[gface]
    face_id[pix] = scene.face_local[gface]
    col, b = shade(slot, (pix % width) + 0.5, (pix // width) + 0.5)
    img = image.reshape(-1, 3)
    for c in range(3):  # per-channel scatters from the (3, N) results are ~3x faster than row scatters
        bary[:, c][pix] = b[c]
        img[:, c][pix] = col[c]

    if antialias and pix.size:
        _antialias(img, s, shade, mesh_id, depth, background, height, width, z_near)

    np.clip(image, 0.0, 1.0, out=image)
    return RenderResult(
        image=image,
        depth=depth.reshape(height, width),
        mesh_id=mesh_id.reshape(height, width),
        face_id=face_id.reshape(height, width),
        bary=bary.reshape(height, width, 3),
    )
