"""Grasps for the ``hand_object`` family: an object against the palm, fingers closed onto it.

Procedure (hand-model frame, no global rotation, :func:`grasp_object`):

1. Draw the object: a sphere (radius 2.5-4.5 cm), a cylinder (radius 1.8-4 cm, length 8-20 cm, axis across the
   palm) or a box (length 6-16 cm across the palm, width 4-9 cm along it, thickness 3-7 cm), turned about the
   palm normal by up to +-25 degrees.
2. Put it against the palm: its centre lies on the palm normal through a point 55-85 % of the way from the
   wrist to the middle knuckle, half its thickness (plus ``clearance``) beyond the palm surface there, moved
   further out in 1 mm steps while any vertex of the flat hand is inside it.
3. Draw a target grasp (anatomical angles of the pose sampler's ``grasp`` / ``fist`` / ``pinch`` presets plus
   noise) and close every digit onto the object: per digit, bisection on a closure ``s in [0, 1]`` scaling
   that digit's angles (fingers: flexion only; thumb: all three angles) for the largest ``s`` whose vertices stay
   out of the object grown by ``clearance``. Fingers that do not reach the object close fully.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_recon_core.data.synthetic.camera import random_rotation, rotation_about
from hand_recon_core.data.synthetic.hands import HandModels, pose_hands
from hand_recon_core.hand_model.constants import FINGER_JOINTS, FINGER_NAMES
from hand_recon_core.hand_model.mirror import mirror_axis_angle
from hand_recon_core.hand_model.pose_sampler import anatomical_to_axis_angle, sample_anatomical

__all__ = ["Grasp", "inside_object", "grasp_object"]

#: Bisection steps of the digit closure.
CLOSURE_STEPS = 8


@dataclass
class Grasp:
    """A grasp in the hand-model frame (no global rotation, no translation).

    Attributes:
        finger_pose: (45,) float64 absolute axis-angle finger pose for the hand's side.
        kind: object kind.
        size: (3,) metres (see :func:`hand_recon_core.data.synthetic.scene.object_mesh`).
        rotation: (3, 3) object-to-hand-frame rotation.
        centre: (3,) object centre, hand-model frame, metres.
        closure: (5,) closure of each digit (thumb, index, middle, ring, pinky) in [0, 1].
    """

    finger_pose: np.ndarray
    kind: str
    size: np.ndarray
    rotation: np.ndarray
    centre: np.ndarray
    closure: np.ndarray


def inside_object(points: np.ndarray, kind: str, size: np.ndarray, rotation: np.ndarray, centre: np.ndarray,
                  margin: float = 0.0) -> np.ndarray:
    """Which points lie inside a primitive grown by ``margin``.

    Args:
        points: (N, 3) metres.
        kind: ``"box"``, ``"cylinder"`` or ``"sphere"``.
        size: (3,) metres (box sides; cylinder (r, r, height); sphere (r, r, r)).
        rotation: (3, 3) object-to-frame rotation.
        centre: (3,) object centre.
        margin: growth, metres.

    Returns:
        (N,) bool.
    """
    local = (np.asarray(points, np.float64) - centre) @ rotation
    if kind == "sphere":
        return np.linalg.norm(local, axis=1) < size[0] + margin
    if kind == "cylinder":
        return (np.linalg.norm(local[:, :2], axis=1) < size[0] + margin) & (np.abs(local[:, 2]) < size[2] / 2 + margin)
    return np.all(np.abs(local) < np.asarray(size) / 2 + margin, axis=1)


def _draw_object(rng: np.random.Generator, kinds: tuple[str, ...]) -> tuple[str, np.ndarray, float]:
    """Kind, size and half thickness (along the palm normal) of a random object."""
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "sphere":
        r = rng.uniform(0.025, 0.045)
        return kind, np.full(3, r), r
    if kind == "cylinder":
        r = rng.uniform(0.018, 0.04)
        return kind, np.array([r, r, rng.uniform(0.08, 0.2)]), r
    size = np.array([rng.uniform(0.06, 0.16), rng.uniform(0.04, 0.09), rng.uniform(0.03, 0.07)])
    return kind, size, size[2] / 2


def grasp_object(rng: np.random.Generator, models: HandModels, side: str, betas: np.ndarray,
                 kinds: tuple[str, ...] = ("box", "cylinder", "sphere"),
                 presets: tuple[str, ...] = ("grasp", "fist", "pinch"),
                 noise_deg: tuple[float, float, float] = (8.0, 4.0, 2.0), clearance: float = 0.001) -> Grasp:
    """A random grasp (see the module docstring).

    Args:
        rng: random generator.
        models: hand models.
        side: ``"right"`` or ``"left"``.
        betas: (10,) hand shape.
        kinds: object kinds to draw from.
        presets: target grasp presets (closed further than the final pose).
        noise_deg: noise of the target angles (flexion, abduction, twist), degrees.
        clearance: gap between hand and object, metres.

    Returns:
        :class:`Grasp`.
    """
    sampler = models.samplers[side]
    zeros48 = np.zeros((1, 48))
    rest = pose_hands(models, [side], zeros48, betas[None], np.zeros((1, 3)))[0]
    j = rest.joints.astype(np.float64)
    along = j[4] - j[0]
    along /= np.linalg.norm(along)
    across = j[7] - j[1]
    across -= across.dot(along) * along
    across /= np.linalg.norm(across)
    palmar = np.array([0.0, -1.0, 0.0])  # the palm faces -y for both sides (MANO axes)
    palmar -= palmar.dot(along) * along + palmar.dot(across) * across
    palmar /= np.linalg.norm(palmar)

    kind, size, half = _draw_object(rng, kinds)
    base = j[0] + rng.uniform(0.55, 0.85) * (j[4] - j[0])
    palm = rest.vertices[models.part_labels == 0].astype(np.float64)
    rel = palm - base
    lateral = np.linalg.norm(rel - np.outer(rel @ palmar, palmar), axis=1)
    near = lateral < 0.02
    surface = float((rel[near] @ palmar).max()) if near.any() else 0.015
    offset = surface + half + clearance
    tilt = rotation_about(palmar, rng.uniform(-np.radians(25), np.radians(25)))
    if kind == "cylinder":
        rotation = tilt @ np.stack([along, palmar, across], axis=1)  # object z (axis) across the palm
    elif kind == "box":
        rotation = tilt @ np.stack([across, along, palmar], axis=1)  # x across, y along, z out of the palm
    else:
        rotation = random_rotation(rng)
    # slide out along the palm normal until the flat hand (closure 0) is clear of the object
    centre = base + palmar * offset
    for _ in range(60):
        if not inside_object(rest.vertices, kind, size, rotation, centre, clearance).any():
            break
        centre = centre + 0.001 * palmar

    target = sample_anatomical(rng, 1, sampler.limits, presets=tuple(presets), noise_deg=tuple(noise_deg))[0]
    rows = {f: [k - 1 for k in FINGER_JOINTS[f]] for f in FINGER_NAMES}
    digit_of_vertex = np.full(models.num_vertices, -1)
    for d, f in enumerate(FINGER_NAMES):
        digit_of_vertex[np.isin(models.part_labels, FINGER_JOINTS[f])] = d

    def finger_pose(closure: np.ndarray) -> np.ndarray:
        ang = target.copy()
        for d, f in enumerate(FINGER_NAMES):
            if f == "thumb":
                ang[rows[f]] *= closure[d]
            else:
                ang[rows[f], 0] *= closure[d]
        aa = anatomical_to_axis_angle(ang, sampler.frames)
        return mirror_axis_angle(aa) if side == "left" else aa

    lo, hi = np.zeros(5), np.ones(5)
    for step in range(CLOSURE_STEPS + 1):
        s = hi if step == 0 else 0.5 * (lo + hi)
        pose = np.concatenate([np.zeros(3), finger_pose(s)])
        hand = pose_hands(models, [side], pose[None], betas[None], np.zeros((1, 3)))[0]
        hit = inside_object(hand.vertices, kind, size, rotation, centre, clearance)
        bad = np.array([np.any(hit & (digit_of_vertex == d)) for d in range(5)])
        if step == 0:
            lo = np.where(bad, lo, hi)  # digits free at full closure stay closed
            continue
        lo = np.where(bad, lo, s)
        hi = np.where(bad, s, hi)
    return Grasp(finger_pose=finger_pose(lo), kind=kind, size=size, rotation=rotation, centre=centre, closure=lo)
