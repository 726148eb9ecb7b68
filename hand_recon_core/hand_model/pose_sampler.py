"""Plausible hand-pose sampler: named presets, random blends with noise, joint limits, two-hand interactions.

Poses are generated as anatomical angles per finger joint, ``(flexion, abduction, twist)`` in radians, in the
joint's anatomical rest frame ``A`` (columns: bone direction, palmar direction, flexion axis; see
:attr:`HandModelData.joint_frames`). The local rotation is ``R = A Rz(flexion) Ry(abduction) Rx(twist) A^T``
(rotations about A's own axes), then converted to MANO's axis-angle. Everything is generated for a RIGHT
hand; left-hand poses are the mirror images (:func:`hand_recon_core.hand_model.mirror.mirror_axis_angle`).

Poses returned by the sampler are *absolute* local rotations (the ``full_pose`` finger part); use
:meth:`PoseSampler.to_layer_input` to feed them to a layer (it subtracts the mean pose when the layer adds
it, and converts to PCA/6D).

Randomness comes only from the ``numpy.random.Generator`` passed in, so results are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hand_recon_core.hand_model.constants import FINGER_JOINTS
from hand_recon_core.hand_model.mesh_checks import penetration, points_inside
from hand_recon_core.hand_model.mirror import mirror_axis_angle, mirror_points

#: Names of the presets, in a stable order (see :data:`PRESETS_DEG`).
PRESET_NAMES = ("flat", "relaxed", "open", "fist", "point", "pinch", "grasp", "peace", "thumbs_up", "ok")


def _finger(mcp: float, pip: float, dip: float, abd: float = 0.0, twist: float = 0.0) -> list[list[float]]:
    return [[mcp, abd, twist], [pip, 0.0, 0.0], [dip, 0.0, 0.0]]


def _thumb(cmc: tuple[float, float, float], mcp: tuple[float, float, float],
           ip: tuple[float, float, float]) -> list[list[float]]:
    return [list(cmc), list(mcp), list(ip)]


def _preset(index, middle, ring, pinky, thumb) -> np.ndarray:
    """(15, 3) degrees in MANO native order 1..15 (index, middle, pinky, ring, thumb)."""
    return np.array(index + middle + pinky + ring + thumb, dtype=np.float64)


#: Presets as (15, 3) anatomical angles in degrees (flexion, abduction, twist) for MANO joints 1..15.
#: Positive abduction turns a finger towards the little finger (right hand).
PRESETS_DEG: dict[str, np.ndarray] = {
    "flat": np.zeros((15, 3)),
    "relaxed": _preset(_finger(12, 18, 8, 3), _finger(15, 22, 10, 0), _finger(18, 26, 12, -2),
                       _finger(22, 30, 14, -4), _thumb((8, 10, -5), (10, 0, 0), (10, 0, 0))),
    "open": _preset(_finger(-8, 0, 0, -12), _finger(-8, 0, 0, -2), _finger(-8, 0, 0, 8),
                    _finger(-8, 0, 0, 16), _thumb((-15, -10, 0), (-5, 0, 0), (0, 0, 0))),
    "fist": _preset(_finger(85, 100, 55, 2), _finger(88, 100, 55, 0), _finger(90, 100, 55, -2),
                    _finger(92, 100, 55, -4), _thumb((14, 48, 32), (58, 11, -12), (70, 0, -6))),
    "point": _preset(_finger(5, 5, 0, 0), _finger(88, 100, 55, 0), _finger(90, 100, 55, -2),
                     _finger(92, 100, 55, -4), _thumb((7, 27, 22), (29, -10, 12), (81, 1, 6))),
    "pinch": _preset(_finger(45, 45, 22, 3), _finger(35, 45, 25, 0), _finger(35, 50, 25, -2),
                     _finger(38, 55, 25, -4), _thumb((14, 10, 24), (19, -10, 11), (33, -5, -1))),
    "grasp": _preset(_finger(35, 55, 30, 3), _finger(38, 55, 30, 0), _finger(40, 55, 30, -2),
                     _finger(42, 55, 30, -4), _thumb((-11, 14, 38), (20, 7, -11), (20, 4, -4))),
    "peace": _preset(_finger(0, 0, 0, -10), _finger(0, 0, 0, 8), _finger(88, 100, 55, -2),
                     _finger(92, 100, 55, -4), _thumb((22, -12, -7), (44, -10, -10), (52, 5, -6))),
    "thumbs_up": _preset(_finger(85, 100, 55, 2), _finger(88, 100, 55, 0), _finger(90, 100, 55, -2),
                         _finger(92, 100, 55, -4), _thumb((-26, -4, -35), (-10, 10, -12), (-11, 5, 0))),
    "ok": _preset(_finger(40, 55, 30, 3), _finger(10, 10, 5, 0), _finger(12, 12, 5, 6),
                  _finger(15, 15, 5, 12), _thumb((10, 18, 25), (35, -10, 12), (26, -5, 6))),
}

#: Preset used as the model's mean pose (``hands_mean``) by the open-model generator.
MEAN_PRESET = "relaxed"
#: Default noise (deg) added to the anatomical angles: flexion, abduction, twist.
DEFAULT_NOISE_DEG = (10.0, 5.0, 3.0)


# ------------------------------------------------------------------------------------------ conversions
def anatomical_to_matrix(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices ``Rz(flexion) Ry(abduction) Rx(twist)`` in the anatomical frame.

    Args:
        angles: (..., 3) radians (flexion, abduction, twist).

    Returns:
        (..., 3, 3) float64.
    """
    a = np.asarray(angles, dtype=np.float64)
    flat = a.reshape(-1, 3)
    rot = Rotation.from_euler("ZYX", flat[:, [0, 1, 2]]).as_matrix()
    return rot.reshape(*a.shape[:-1], 3, 3)


def anatomical_to_axis_angle(angles: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Anatomical angles of joints 1..15 -> MANO axis-angle finger pose (right hand).

    Args:
        angles: (..., 15, 3) radians (flexion, abduction, twist).
        frames: (16, 3, 3) anatomical rest frames (columns in model coordinates), right hand.

    Returns:
        (..., 45) float64 axis-angle, radians, native joints 1..15.
    """
    a = np.asarray(angles, dtype=np.float64)
    r_a = anatomical_to_matrix(a)
    f = np.asarray(frames, dtype=np.float64)[1:]
    r = f @ r_a @ np.swapaxes(f, -1, -2)
    aa = Rotation.from_matrix(r.reshape(-1, 3, 3)).as_rotvec()
    return aa.reshape(*a.shape[:-2], 45)


def axis_angle_to_anatomical(aa: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Inverse of :func:`anatomical_to_axis_angle` (Euler ZYX decomposition in the anatomical frames).

    Args:
        aa: (..., 45) axis-angle finger pose (right hand).
        frames: (16, 3, 3) anatomical frames.

    Returns:
        (..., 15, 3) radians (flexion, abduction, twist).
    """
    aa = np.asarray(aa, dtype=np.float64)
    r = Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(*aa.shape[:-1], 15, 3, 3)
    f = np.asarray(frames, dtype=np.float64)[1:]
    r_a = np.swapaxes(f, -1, -2) @ r @ f
    ang = Rotation.from_matrix(r_a.reshape(-1, 3, 3)).as_euler("ZYX")
    return ang.reshape(*aa.shape[:-1], 15, 3)


def default_joint_frames(rest_joints: np.ndarray, tips: np.ndarray | None = None) -> np.ndarray:
    """Anatomical frames estimated from a right hand's rest joints (for models without stored frames).

    Bone direction: joint to child (last joint: continues its parent's bone); palmar direction: -y for the
    fingers, and for the thumb -y turned 60 degrees towards -z (the thumb pulp faces the fingers), both made
    perpendicular to the bone. Assumes the MANO axes (fingers -x, palm -y, right thumb +z).

    Args:
        rest_joints: (16, 3) right-hand rest joints, model frame.
        tips: optional (5, 3) fingertips (thumb..pinky) to orient the distal segments.

    Returns:
        (16, 3, 3) rotation matrices.
    """
    j = np.asarray(rest_joints, dtype=np.float64)
    frames = np.zeros((16, 3, 3))
    frames[0] = np.stack([[-1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0]], axis=1)
    order = ("thumb", "index", "middle", "ring", "pinky")
    for k, f in enumerate(order):
        chain = FINGER_JOINTS[f]
        for i, jj in enumerate(chain):
            if i < 2:
                d = j[chain[i + 1]] - j[jj]
            elif tips is not None:
                d = tips[k] - j[jj]
            else:
                d = j[jj] - j[chain[i - 1]]
            d /= np.linalg.norm(d)
            palm = np.array([0.0, -1.0, 0.0])
            if f == "thumb":
                c, s = np.cos(np.radians(60)), np.sin(np.radians(60))
                palm = np.array([0.0, -c, -s])
            y = palm - palm.dot(d) * d
            y /= np.linalg.norm(y)
            frames[jj] = np.stack([d, y, np.cross(d, y)], axis=1)
    return frames


#: Default joint limits (radians) used when a model has none (official MANO); same table as the open model.
def default_joint_limits() -> np.ndarray:
    """(16, 3, 2) radians, the open model's table (see :mod:`hand_recon_core.hand_model.open_model.anatomy`)."""
    from hand_recon_core.hand_model.open_model.anatomy import joint_limits_rad

    return joint_limits_rad()


# ------------------------------------------------------------------------------------------ sampling
def clip_to_limits(angles: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Clip anatomical angles (..., 15, 3) to ``limits (16, 3, 2)`` (row 0, the wrist, ignored)."""
    lim = np.asarray(limits, dtype=np.float64)[1:]
    return np.clip(angles, lim[..., 0], lim[..., 1])


def preset_angles(name: str) -> np.ndarray:
    """(15, 3) radians of a named preset (see :data:`PRESET_NAMES`)."""
    if name not in PRESETS_DEG:
        raise KeyError(f"unknown preset {name!r}; known: {list(PRESET_NAMES)}")
    return np.radians(PRESETS_DEG[name])


def sample_anatomical(rng: np.random.Generator, n: int, limits: np.ndarray,
                      presets: tuple[str, ...] = PRESET_NAMES,
                      noise_deg: tuple[float, float, float] = DEFAULT_NOISE_DEG,
                      blend_prob: float = 0.6) -> np.ndarray:
    """Random plausible anatomical angles: a preset, or a random blend of two, plus noise, within limits.

    Per sample: pick a preset uniformly; with probability ``blend_prob`` blend it with a second random preset
    (uniform weight); add independent Gaussian noise (standard deviations ``noise_deg`` for flexion,
    abduction, twist), with the flexion noise correlated along each finger (a common per-finger term) so
    fingers curl coherently; clip to ``limits``.

    Args:
        rng: numpy random generator (the only source of randomness).
        n: number of samples.
        limits: (16, 3, 2) joint limits, radians.
        presets: names to draw from.
        noise_deg: noise standard deviations in degrees.
        blend_prob: probability of blending two presets.

    Returns:
        (n, 15, 3) radians.
    """
    table = np.stack([preset_angles(p) for p in presets])  # (P, 15, 3)
    a = rng.integers(0, len(presets), size=n)
    b = rng.integers(0, len(presets), size=n)
    t = rng.uniform(0.0, 1.0, size=n) * (rng.uniform(size=n) < blend_prob)
    ang = (1 - t)[:, None, None] * table[a] + t[:, None, None] * table[b]
    sd = np.radians(np.asarray(noise_deg, dtype=np.float64))
    noise = rng.normal(size=(n, 15, 3)) * sd
    # Coherent curl: a per-finger flexion offset shared by its three joints.
    finger_curl = rng.normal(size=(n, 5)) * sd[0]
    for k in range(5):
        noise[:, 3 * k: 3 * k + 3, 0] += finger_curl[:, k: k + 1]
    return clip_to_limits(ang + noise, limits)


def sample_hand_poses(rng: np.random.Generator, n: int, frames: np.ndarray, limits: np.ndarray,
                      **kwargs) -> np.ndarray:
    """Random plausible right-hand finger poses as MANO axis-angle.

    Args:
        rng: numpy random generator.
        n: number of samples.
        frames: (16, 3, 3) right-hand anatomical frames.
        limits: (16, 3, 2) joint limits, radians.
        **kwargs: passed to :func:`sample_anatomical`.

    Returns:
        (n, 45) float64 absolute axis-angle (radians), native joints 1..15, right hand.
    """
    return anatomical_to_axis_angle(sample_anatomical(rng, n, limits, **kwargs), frames)


def random_rotation(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """Uniformly random rotations as axis-angle: (3,) or (n, 3)."""
    q = rng.normal(size=(1 if n is None else n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    aa = Rotation.from_quat(q).as_rotvec()
    return aa[0] if n is None else aa


# ------------------------------------------------------------------------------------------ layer wrapper
class PoseSampler:
    """Samples poses suited to one :class:`~hand_recon_core.hand_model.layer.HandLayer`.

    Uses the layer's stored anatomical frames and limits (open model) or defaults estimated from its rest
    joints (official MANO). Poses are produced in right-hand convention and mirrored for a left layer.

    Args:
        layer: the hand layer the poses are for.
    """

    def __init__(self, layer) -> None:
        self.layer = layer
        self.side = layer.side
        if layer.joint_frames is not None:
            self.frames = layer.joint_frames.detach().cpu().double().numpy()
        else:
            rest = layer.rest_joints()[0].detach().cpu().double().numpy()
            if self.side == "left":
                rest = mirror_points(rest)
            self.frames = default_joint_frames(rest)
        if layer.joint_limits is not None:
            self.limits = layer.joint_limits.detach().cpu().double().numpy()
        else:
            self.limits = default_joint_limits()

    def _to_side(self, aa_right: np.ndarray) -> np.ndarray:
        return mirror_axis_angle(aa_right) if self.side == "left" else aa_right

    def preset(self, name: str) -> np.ndarray:
        """(45,) absolute axis-angle of a named preset for this layer's side, clipped to the joint limits."""
        return self._to_side(anatomical_to_axis_angle(clip_to_limits(preset_angles(name), self.limits), self.frames))

    def sample(self, rng: np.random.Generator, n: int, **kwargs) -> np.ndarray:
        """(n, 45) random absolute axis-angle finger poses for this layer's side (see
        :func:`sample_anatomical` for ``kwargs``)."""
        return self._to_side(sample_hand_poses(rng, n, self.frames, self.limits, **kwargs))

    def to_layer_input(self, aa: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Convert absolute axis-angle finger poses (B, 45) to the layer's ``hand_pose`` input.

        Subtracts ``hands_mean`` when the layer adds it, projects onto the PCA basis for ``pose_repr="pca"``
        (least squares; exact for 45 components) and converts to 6D for ``pose_repr="6d"``.

        Returns:
            tensor on the layer's device (the layer's dtype, float32 for half-precision layers): (B, 45),
            (B, K) or (B, 15, 6).
        """
        from hand_recon_core.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d

        dtype = torch.float32 if self.layer.dtype in (torch.float16, torch.bfloat16) else self.layer.dtype
        x = torch.as_tensor(np.asarray(aa) if not isinstance(aa, torch.Tensor) else aa,
                            dtype=dtype, device=self.layer.device).reshape(-1, 45)
        if self.layer.pose_repr == "6d":
            return matrix_to_rot6d(axis_angle_to_matrix(x.reshape(-1, 15, 3)))
        if self.layer.pose_repr == "pca":
            return self.layer.axis_angle_to_pca(x)
        if not self.layer.flat_hand_mean:
            x = x - self.layer.hands_mean
        return x


# ------------------------------------------------------------------------------------------ two hands
@dataclass
class TwoHandSample:
    """A right and a left hand in contact (model frame shared by both, metres).

    Attributes:
        right_pose, left_pose: (45,) absolute axis-angle finger poses (each in its own side's convention).
        right_orient, left_orient: (3,) global orientations (axis-angle).
        right_transl, left_transl: (3,) translations (metres); the right hand's is zero.
        right_vertices, left_vertices: (V, 3) posed vertices (metres).
        min_distance: smallest vertex-to-surface distance between the hands (metres, >= 0 approx.).
        max_penetration: largest approximate penetration depth of a vertex into the other hand (metres).
    """

    right_pose: np.ndarray
    left_pose: np.ndarray
    right_orient: np.ndarray
    left_orient: np.ndarray
    right_transl: np.ndarray
    left_transl: np.ndarray
    right_vertices: np.ndarray
    left_vertices: np.ndarray
    min_distance: float
    max_penetration: float


def _pose_vertices(layer, sampler: PoseSampler, aa: np.ndarray, orient: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = layer(global_orient=torch.as_tensor(orient, dtype=torch.float32)[None],
                    hand_pose=sampler.to_layer_input(aa[None]))
    return out.vertices[0].detach().cpu().double().numpy()


#: Vertices farther than this (metres) from every vertex of the other hand skip the exact surface search.
CONTACT_SEARCH_RADIUS = 0.03


def contact_metrics(verts_a: np.ndarray, faces_a: np.ndarray, verts_b: np.ndarray,
                    faces_b: np.ndarray) -> tuple[float, float]:
    """Smallest separation and deepest penetration between two closed meshes (vertex-based, approximate).

    Args:
        verts_a, verts_b: (V, 3) vertices (metres); faces_a, faces_b: (F, 3) CCW triangles.

    Returns:
        ``(min_distance, max_penetration)`` in metres: the smallest signed distance of any vertex of one mesh
        to the other (clipped at 0 when they interpenetrate; beyond :data:`CONTACT_SEARCH_RADIUS` the
        nearest-vertex distance, at most half an edge more) and the largest depth of a vertex inside the other
        mesh (0 when none is inside).
    """
    # vertices over 3 cm from every vertex of the other hand are outside it (a hand is thinner than 6 cm): the
    # exact face search runs only for the vertices near the contact
    sa, _ = penetration(verts_a, verts_b, faces_b, max_distance=CONTACT_SEARCH_RADIUS)
    sb, _ = penetration(verts_b, verts_a, faces_a, max_distance=CONTACT_SEARCH_RADIUS)
    s = np.concatenate([sa, sb])
    return float(max(s.min(), 0.0)), float(max(-s.min(), 0.0))


def _deeply_inside(verts_a: np.ndarray, faces_a: np.ndarray, verts_b: np.ndarray, faces_b: np.ndarray,
                   depth: float) -> bool:
    """Robust final check: any vertex of one mesh inside the other (ray parity) by more than ``depth``."""
    for p, v, f in ((verts_a, verts_b, faces_b), (verts_b, verts_a, faces_a)):
        inside = points_inside(p, v, f)
        if inside.any():
            dist = np.abs(penetration(p[inside], v, f)[0])
            if dist.max() > depth:
                return True
    return False


def sample_two_hand_interaction(rng: np.random.Generator, layer_right, layer_left,
                                contact_tolerance: float = 0.004, max_penetration: float = 0.003,
                                presets: tuple[str, ...] = PRESET_NAMES, max_tries: int = 20) -> TwoHandSample:
    """Sample poses for both hands and place the left hand against the right one (contact, no deep overlap).

    The right hand gets a random pose and orientation at the origin; the left hand a random pose and
    orientation. The left hand is placed along a random direction from the right hand's centroid and moved
    in by bisection on the distance until the hands touch: the final placement is the closest one whose
    deepest vertex penetration (see :func:`contact_metrics`) stays below ``max_penetration``; it is accepted
    when the hands are then within ``contact_tolerance`` of each other and an exact inside test (ray parity,
    :func:`~hand_recon_core.hand_model.mesh_checks.points_inside`) finds no vertex deeper than
    ``max_penetration`` in the other hand.

    Args:
        rng: numpy random generator.
        layer_right: right :class:`HandLayer`; layer_left: left one (same model family).
        contact_tolerance: largest accepted gap (metres) between the hands.
        max_penetration: largest accepted penetration depth (metres).
        presets: preset names to sample finger poses from.
        max_tries: attempts before giving up.

    Returns:
        :class:`TwoHandSample`.

    Raises:
        RuntimeError: if no valid placement is found in ``max_tries`` attempts.
    """
    sr, sl = PoseSampler(layer_right), PoseSampler(layer_left)
    faces_r = layer_right.faces.cpu().numpy()
    faces_l = layer_left.faces.cpu().numpy()
    for _ in range(max_tries):
        pose_r = sr.sample(rng, 1, presets=presets)[0]
        pose_l = sl.sample(rng, 1, presets=presets)[0]
        orient_r = random_rotation(rng)
        orient_l = random_rotation(rng)
        vr = _pose_vertices(layer_right, sr, pose_r, orient_r)
        vl0 = _pose_vertices(layer_left, sl, pose_l, orient_l)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        base = vr.mean(axis=0) - vl0.mean(axis=0)
        reach = np.linalg.norm(vr - vr.mean(0), axis=1).max() + np.linalg.norm(vl0 - vl0.mean(0), axis=1).max()

        def metrics(dist: float, vl0=vl0, vr=vr, base=base, direction=direction):
            return contact_metrics(vr, faces_r, vl0 + base + dist * direction, faces_l)

        lo, hi = 0.0, reach + 0.01  # hi: separated; lo: deep overlap (centroids coincide)
        if metrics(hi)[1] > 0:
            continue
        for _ in range(12):  # bracket / 2^12: well under 0.1 mm for two hands
            mid = 0.5 * (lo + hi)
            if metrics(mid)[1] > max_penetration:
                lo = mid
            else:
                hi = mid
        gap, pen = metrics(hi)
        vl = vl0 + base + hi * direction
        if gap <= contact_tolerance and pen <= max_penetration and not _deeply_inside(vr, faces_r, vl, faces_l,
                                                                                      max_penetration):
            transl_l = base + hi * direction
            return TwoHandSample(right_pose=pose_r, left_pose=pose_l, right_orient=orient_r, left_orient=orient_l,
                                 right_transl=np.zeros(3), left_transl=transl_l, right_vertices=vr,
                                 left_vertices=vl0 + transl_l, min_distance=gap, max_penetration=pen)
    raise RuntimeError(f"no two-hand placement found in {max_tries} tries")


__all__ = [
    "PRESET_NAMES",
    "PRESETS_DEG",
    "MEAN_PRESET",
    "PoseSampler",
    "TwoHandSample",
    "anatomical_to_axis_angle",
    "anatomical_to_matrix",
    "axis_angle_to_anatomical",
    "clip_to_limits",
    "contact_metrics",
    "default_joint_frames",
    "default_joint_limits",
    "preset_angles",
    "random_rotation",
    "sample_anatomical",
    "sample_hand_poses",
    "sample_two_hand_interaction",
]
