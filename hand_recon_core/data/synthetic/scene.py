"""Scene description and placement: hands and objects in the camera frame, framing, truncation, occluders.

A :class:`Scene` is everything the renderer needs plus the parameters the ground truth needs. Placement works on
projected bounding boxes: a mesh (already rotated into the camera orientation) is moved so that its projected
box has a requested centre and size (:func:`frame_points`), optionally pushed over an image border
(:func:`truncation_shift`). Multi-hand scenes keep hands from colliding in 3D with bounding spheres
(:func:`spheres_collide`). Objects (occluders and grasped objects) are closed primitives from
:mod:`hand_recon_core.render.primitives` with a fixed tessellation (:func:`object_mesh`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hand_recon_core.data.synthetic.appearance import object_colors
from hand_recon_core.data.synthetic.camera import backproject, project, random_rotation
from hand_recon_core.data.synthetic.hands import Hand
from hand_recon_core.render.primitives import box_mesh, cylinder_mesh, sphere_mesh

__all__ = [
    "OBJECT_KINDS",
    "OBJECT_ROLES",
    "SceneObject",
    "Scene",
    "object_mesh",
    "make_object",
    "projected_box",
    "frame_points",
    "truncation_shift",
    "spheres_collide",
    "add_occluders",
]

#: Object kinds, indexed by the ``object_type`` code of the ground truth.
OBJECT_KINDS = ("box", "cylinder", "sphere")
#: Object roles, indexed by the ``object_role`` code: 0 a free occluder, 1 an object grasped by a hand.
OBJECT_ROLES = ("occluder", "grasped")


def object_mesh(kind: str, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed mesh of a primitive in its object frame (centred at the origin), fixed tessellation.

    Args:
        kind: ``"box"`` (``size`` = side lengths x, y, z; 4 x 4 cells per side), ``"cylinder"`` (``size`` =
            (radius, radius, height) along z; 32 segments, 4 rings) or ``"sphere"`` (``size`` = (r, r, r);
            16 rings x 32 segments).
        size: (3,) metres.

    Returns:
        ``(vertices (M, 3) float64, faces (F, 3) int64)`` outward CCW.
    """
    s = np.asarray(size, dtype=np.float64)
    if kind == "box":
        v, f = box_mesh(tuple(s), segments=4)
    elif kind == "cylinder":
        v, f = cylinder_mesh(radius=float(s[0]), height=float(s[2]), segments=32, rings=4)
    elif kind == "sphere":
        v, f = sphere_mesh(radius=float(s[0]), rings=16, segments=32)
    else:
        raise ValueError(f"unknown object kind {kind!r}; expected one of {OBJECT_KINDS}")
    return v.astype(np.float64), f.astype(np.int64)


@dataclass
class SceneObject:
    """A rigid primitive in the camera frame.

    Attributes:
        kind: one of :data:`OBJECT_KINDS`.
        size: (3,) float64 metres (see :func:`object_mesh`).
        rotation: (3, 3) float64 object-to-camera rotation.
        translation: (3,) float64 object centre in the camera frame, metres.
        role: one of :data:`OBJECT_ROLES`.
        hand: index of the grasping hand, -1 for none.
        vertices: (M, 3) float32 camera-frame vertices, metres.
        faces: (F, 3) int64.
        albedo: (M, 3) float32 colours in [0, 1].
    """

    kind: str
    size: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    role: str
    hand: int
    vertices: np.ndarray
    faces: np.ndarray
    albedo: np.ndarray

    @property
    def pose(self) -> np.ndarray:
        """(4, 4) float32 object-to-camera transform."""
        t = np.eye(4, dtype=np.float32)
        t[:3, :3] = self.rotation
        t[:3, 3] = self.translation
        return t


def make_object(kind: str, size: np.ndarray, rotation: np.ndarray, translation: np.ndarray, rng: np.random.Generator,
                role: str = "occluder", hand: int = -1) -> SceneObject:
    """Build a :class:`SceneObject` with random colours.

    Args:
        kind: object kind.
        size: (3,) metres.
        rotation: (3, 3) object-to-camera rotation.
        translation: (3,) camera-frame centre, metres.
        rng: random generator (colours).
        role: ``"occluder"`` or ``"grasped"``.
        hand: grasping hand index or -1.

    Returns:
        The object.
    """
    v, f = object_mesh(kind, size)
    albedo = object_colors(v, rng)
    rot = np.asarray(rotation, dtype=np.float64)
    t = np.asarray(translation, dtype=np.float64)
    return SceneObject(kind=kind, size=np.asarray(size, dtype=np.float64), rotation=rot, translation=t, role=role,
                       hand=hand, vertices=(v @ rot.T + t).astype(np.float32), faces=f, albedo=albedo)


@dataclass
class Scene:
    """One synthetic scene.

    Attributes:
        family: family name.
        size: (H, W) image size, pixels.
        K: (3, 3) float32 intrinsics (project pixel convention).
        hands: the posed hands (camera frame).
        objects: occluders and grasped objects (camera frame).
        sh: (27,) float32 SH lighting.
        background: (H, W, 3) float32 RGB in [0, 1].
        noise_std: standard deviation of the Gaussian pixel noise added to the rendered image (0-1 scale).
        meta: free-form extra information (e.g. sampled focal length).
    """

    family: str
    size: tuple[int, int]
    K: np.ndarray
    hands: list[Hand]
    objects: list[SceneObject] = field(default_factory=list)
    sh: np.ndarray | None = None
    background: np.ndarray | None = None
    noise_std: float = 0.0
    meta: dict = field(default_factory=dict)


def projected_box(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Box ``(x1, y1, x2, y2)`` (pixels) of the projection of camera-frame points (z > 0).

    Args:
        points: (N, 3) camera-frame points, metres.
        K: (3, 3) intrinsics.

    Returns:
        (4,) float64.
    """
    uv = project(points, K)
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


def frame_points(points: np.ndarray, K: np.ndarray, center_px: np.ndarray, extent_px: float,
                 iterations: int = 3) -> np.ndarray:
    """Translation that frames a rigid point set: its projected box gets centre ``center_px`` and its longer
    side ``extent_px``.

    The points are first centred on their 3D box centre; the depth is set from the pinhole relation
    ``extent_px = f * extent_m / z`` and refined (perspective makes the relation approximate) together with
    the image position.

    Args:
        points: (N, 3) points in camera orientation (any origin), metres.
        K: (3, 3) intrinsics.
        center_px: (2,) wanted box centre, pixels.
        extent_px: wanted longer box side, pixels (> 0).
        iterations: refinement steps.

    Returns:
        (3,) float64 translation to add to ``points``.
    """
    p = np.asarray(points, dtype=np.float64)
    c = 0.5 * (p.min(axis=0) + p.max(axis=0))
    q = p - c
    f = float(K[0, 0])
    ext_m = max(np.ptp(q[:, 0]), np.ptp(q[:, 1]), 1e-4)
    z = f * ext_m / extent_px + max(0.0, -q[:, 2].min())
    t = backproject(np.asarray(center_px, dtype=np.float64), z, K)
    for _ in range(iterations):
        box = projected_box(q + t, K)
        ext = max(box[2] - box[0], box[3] - box[1])
        z = t[2] * ext / extent_px
        z = max(z, 0.05 + max(0.0, -q[:, 2].min()))
        t = t * (z / t[2])
        box = projected_box(q + t, K)
        shift_px = np.asarray(center_px) - 0.5 * (box[:2] + box[2:])
        t = t + np.array([shift_px[0] * t[2] / K[0, 0], shift_px[1] * t[2] / K[1, 1], 0.0])
    return t - c


def truncation_shift(box: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                     fraction: tuple[float, float] = (0.15, 0.5)) -> np.ndarray:
    """Pixel shift pushing a box over one random image border so that a fraction of it lies outside.

    Args:
        box: (4,) ``x1, y1, x2, y2`` pixels.
        size: (H, W).
        rng: random generator.
        fraction: range of the box width (left/right border) or height (top/bottom) moved outside.

    Returns:
        (2,) float64 shift ``(du, dv)`` in pixels.
    """
    h, w = size
    side = int(rng.integers(4))
    frac = rng.uniform(*fraction)
    bw, bh = box[2] - box[0], box[3] - box[1]
    if side == 0:  # left
        return np.array([-(box[0] + 0.5) - frac * bw, 0.0])
    if side == 1:  # right
        return np.array([(w - 0.5) - box[2] + frac * bw, 0.0])
    if side == 2:  # top
        return np.array([0.0, -(box[1] + 0.5) - frac * bh])
    return np.array([0.0, (h - 0.5) - box[3] + frac * bh])


def spheres_collide(center: np.ndarray, radius: float, others: list[tuple[np.ndarray, float]],
                    margin: float = 0.0) -> bool:
    """True when a sphere intersects any of ``others`` (all in metres).

    Args:
        center: (3,) centre.
        radius: radius.
        others: list of (centre (3,), radius).
        margin: extra clearance.

    Returns:
        bool.
    """
    return any(np.linalg.norm(center - c) < radius + r + margin for c, r in others)


def add_occluders(scene: Scene, rng: np.random.Generator, count: int,
                  size_fraction: tuple[float, float] = (0.2, 0.6)) -> None:
    """Add ``count`` free occluders, each in front of a random hand and overlapping its projected box.

    Each occluder is a random primitive (box, cylinder or sphere, uniform) with a random orientation, placed
    2-15 cm in front of its hand's nearest vertex (but at least 8 cm from the camera); its projected size is
    ``size_fraction`` of the hand's box and its centre is uniform in the hand's box grown by 25 %.

    Args:
        scene: the scene (modified in place: objects appended).
        rng: random generator.
        count: number of occluders.
        size_fraction: range of the occluder size relative to the hand's projected box (longer side).
    """
    if not scene.hands:
        return
    K = scene.K.astype(np.float64)
    for _ in range(count):
        hand = scene.hands[int(rng.integers(len(scene.hands)))]
        box = projected_box(hand.vertices, K)
        ext = max(box[2] - box[0], box[3] - box[1])
        z_near = float(hand.vertices[:, 2].min())
        z = max(0.08, z_near - rng.uniform(0.02, 0.15))
        grow = 0.25 * np.array([box[2] - box[0], box[3] - box[1]])
        c_px = rng.uniform(box[:2] - grow, box[2:] + grow)
        diameter = rng.uniform(*size_fraction) * ext * z / K[0, 0]
        kind = OBJECT_KINDS[int(rng.integers(len(OBJECT_KINDS)))]
        if kind == "sphere":
            size = np.full(3, 0.5 * diameter)
        elif kind == "cylinder":
            r = 0.5 * diameter * rng.uniform(0.3, 1.0)
            size = np.array([r, r, diameter * rng.uniform(0.8, 2.5)])
        else:
            size = diameter * rng.uniform(0.3, 1.0, size=3)
            size[int(rng.integers(3))] = diameter
        centre = backproject(c_px, z + 0.5 * float(size.max()), K)
        scene.objects.append(make_object(kind, size, random_rotation(rng), centre, rng, role="occluder"))
