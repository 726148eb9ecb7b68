"""Scene families: ``single``, ``interacting``, ``multi``, ``hand_object``.

Each family is a function ``family(rng, size, models, **params) -> Scene`` that places posed hands (and objects)
in the camera frame; appearance (skin, light, background, pixel noise) is added by
:func:`hand_recon_core.data.synthetic.engine.dress_scene`. All randomness comes from ``rng``: the same generator
state gives the same scene. Every family has a truncation probability (the hands' projected box is pushed over
an image border, see :func:`hand_recon_core.data.synthetic.scene.truncation_shift`).

Cameras (square images of side ``S`` pixels, principal point at the centre):

============== =========================== ===================================================================
family         focal length (pixels)       framing
============== =========================== ===================================================================
single         ``S * U(2.5, 6.0)``         one hand centred (jitter 8 % of S), box side 55-85 % of S
interacting    ``S * U(3.0, 6.0)``         two interacting hands, union box side 60-90 % of S
multi          ``S`` (512 at 512 px)       0-10 hands, box sides log-uniform 8-55 % of S, anywhere
hand_object    ``S * U(2.0, 4.0)``         one hand with a grasped object, union box side 55-85 % of S
============== =========================== ===================================================================

The single-stage paper fixes f = 512 for its 512 x 512 multi-hand images. The crop families sample focal
lengths of a few times the crop side, our estimate of what hand crops of FreiHAND (224 px images), InterHand2.6M
(crops of hands about 200-250 px wide in images with f of about 1200-1500 px) and HO3D (f of about 615 px at
640 x 480) have; every range is a parameter (``focal_range``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hand_recon_core.data.synthetic.camera import hand_view_rotation, intrinsics
from hand_recon_core.data.synthetic.grasp import grasp_object
from hand_recon_core.data.synthetic.hands import (
    Hand,
    HandModels,
    pose_hands,
    rest_wrist,
    sample_betas,
)
from hand_recon_core.data.synthetic.scene import (
    Scene,
    add_occluders,
    frame_points,
    make_object,
    object_mesh,
    projected_box,
    spheres_collide,
    truncation_shift,
)
from hand_recon_core.geometry.rotations import matrix_to_axis_angle
from hand_recon_core.hand_model.pose_sampler import (
    DEFAULT_NOISE_DEG,
    PRESET_NAMES,
    contact_metrics,
    sample_two_hand_interaction,
)

__all__ = ["FAMILIES", "DEFAULT_SIZES", "single", "interacting", "multi", "hand_object", "truncation"]


def _aa(rot: np.ndarray) -> np.ndarray:
    import torch

    return matrix_to_axis_angle(torch.as_tensor(np.asarray(rot, dtype=np.float64))[None])[0].numpy()


def _side(rng: np.random.Generator, left_prob: float) -> str:
    return "left" if rng.random() < left_prob else "right"


def _oriented_hand(models: HandModels, rng: np.random.Generator, side: str, presets, noise_deg,
                   uniform_view_prob: float) -> tuple[np.ndarray, np.ndarray, Hand]:
    """Random pose/shape/view of one hand at the origin: ``(hand_pose (48,), betas (10,), hand)``."""
    pose = models.samplers[side].sample(rng, 1, presets=tuple(presets), noise_deg=tuple(noise_deg))[0]
    betas = sample_betas(rng)[0]
    rot = hand_view_rotation(rng, uniform_probability=uniform_view_prob, side=side)
    hand_pose = np.concatenate([_aa(rot), pose])
    hand = pose_hands(models, [side], hand_pose[None], betas[None], np.zeros((1, 3)))[0]
    return hand_pose, betas, hand


def _shift_px_to_3d(shift_px: np.ndarray, depth: float, K: np.ndarray) -> np.ndarray:
    return np.array([shift_px[0] * depth / K[0, 0], shift_px[1] * depth / K[1, 1], 0.0])


def _frame_group(points: np.ndarray, K: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                 extent_range: tuple[float, float], center_jitter: float, truncation_prob: float) -> np.ndarray:
    """Translation framing a group of points (centred crop, optional truncation)."""
    s = float(min(size))
    centre = np.array([(size[1] - 1) / 2.0, (size[0] - 1) / 2.0]) + rng.uniform(-center_jitter, center_jitter, 2) * s
    t = frame_points(points, K, centre, rng.uniform(*extent_range) * s)
    if rng.random() < truncation_prob:
        moved = points + t
        shift = truncation_shift(projected_box(moved, K), size, rng)
        t = t + _shift_px_to_3d(shift, float(np.median(moved[:, 2])), K)
    return t


def single(rng: np.random.Generator, size: tuple[int, int], models: HandModels, *,
           focal_range: tuple[float, float] = (2.5, 6.0), extent_range: tuple[float, float] = (0.55, 0.85),
           center_jitter: float = 0.08, truncation_prob: float = 0.1, occluder_prob: float = 0.25,
           max_occluders: int = 2, left_prob: float = 0.5, presets=PRESET_NAMES,
           noise_deg=DEFAULT_NOISE_DEG, uniform_view_prob: float = 0.35) -> Scene:
    """FreiHAND-like crop: one hand, centred.

    Args:
        rng: random generator.
        size: (H, W) pixels (FreiHAND: 224).
        models: hand models.
        focal_range: focal length range as a multiple of the image side.
        extent_range: longer side of the hand's projected box as a fraction of the image side.
        center_jitter: box-centre jitter (uniform, +-fraction of the image side).
        truncation_prob: probability of pushing the hand over an image border.
        occluder_prob: probability of adding 1..``max_occluders`` free occluders in front of the hand.
        max_occluders: largest number of occluders.
        left_prob: probability of a left hand.
        presets: pose presets of :mod:`hand_recon_core.hand_model.pose_sampler`.
        noise_deg: pose noise (flexion, abduction, twist) in degrees.
        uniform_view_prob: probability of a uniformly random orientation (else palm/back towards the camera).

    Returns:
        The :class:`Scene`.
    """
    K = intrinsics(float(min(size)) * rng.uniform(*focal_range), size)
    side = _side(rng, left_prob)
    hand_pose, betas, hand0 = _oriented_hand(models, rng, side, presets, noise_deg, uniform_view_prob)
    t = _frame_group(hand0.vertices, K, size, rng, extent_range, center_jitter, truncation_prob)
    scene = Scene(family="single", size=size, K=K, hands=pose_hands(models, [side], hand_pose[None], betas[None],
                                                                    t[None]))
    if rng.random() < occluder_prob:
        add_occluders(scene, rng, int(rng.integers(1, max_occluders + 1)))
    return scene


def _push_apart(models: HandModels, sides: list[str], poses: np.ndarray, betas: np.ndarray, transl: np.ndarray,
                max_penetration: float, step: float = 0.001, max_steps: int = 25) -> np.ndarray:
    """Move hand 1 away from hand 0 (along their centroid line) until the penetration is below the limit."""
    transl = transl.copy()
    for _ in range(max_steps):
        h0, h1 = pose_hands(models, sides, poses, betas, transl)
        _, pen = contact_metrics(h0.vertices, models.faces[sides[0]], h1.vertices, models.faces[sides[1]])
        if pen <= max_penetration:
            break
        d = h1.vertices.mean(axis=0) - h0.vertices.mean(axis=0)
        transl[1] += step * d / max(np.linalg.norm(d), 1e-9)
    return transl


def interacting(rng: np.random.Generator, size: tuple[int, int], models: HandModels, *,
                focal_range: tuple[float, float] = (3.0, 6.0), extent_range: tuple[float, float] = (0.6, 0.9),
                center_jitter: float = 0.06, truncation_prob: float = 0.1, occluder_prob: float = 0.15,
                max_occluders: int = 1, presets=PRESET_NAMES, max_penetration: float = 0.003,
                contact_tolerance: float = 0.004) -> Scene:
    """InterHand2.6M-like crop: a right and a left hand in contact.

    Poses, orientations and the relative placement come from
    :func:`hand_recon_core.hand_model.pose_sampler.sample_two_hand_interaction` (computed for mean shapes);
    random shapes are then applied and, if they make the hands interpenetrate deeper than
    ``max_penetration``, the left hand is moved away from the right one in 1 mm steps.

    Args:
        rng: random generator.
        size: (H, W) pixels (InterHand2.6M crops: 256).
        models: hand models.
        focal_range: focal length range as a multiple of the image side.
        extent_range: longer side of the two hands' projected box as a fraction of the image side.
        center_jitter: box-centre jitter (+-fraction of the image side).
        truncation_prob: probability of pushing the pair over an image border.
        occluder_prob: probability of adding free occluders.
        max_occluders: largest number of occluders.
        presets: pose presets.
        max_penetration: largest accepted penetration depth, metres.
        contact_tolerance: largest gap accepted by the two-hand sampler, metres.

    Returns:
        The :class:`Scene` (hand 0 right, hand 1 left).
    """
    K = intrinsics(float(min(size)) * rng.uniform(*focal_range), size)
    for attempt in range(5):  # the sampler gives up after its own max_tries; the stream stays deterministic
        try:
            pair = sample_two_hand_interaction(rng, models.layers["right"], models.layers["left"],
                                               contact_tolerance=contact_tolerance,
                                               max_penetration=max_penetration, presets=tuple(presets))
            break
        except RuntimeError:
            if attempt == 4:
                raise
    sides = ["right", "left"]
    betas = sample_betas(rng, 2)
    poses = np.stack([np.concatenate([pair.right_orient, pair.right_pose]),
                      np.concatenate([pair.left_orient, pair.left_pose])])
    transl = np.stack([pair.right_transl, pair.left_transl]).astype(np.float64)
    # the sampler used betas = 0: keep each wrist where the sampler put it, J0(0) + t
    for k, side in enumerate(sides):
        transl[k] += rest_wrist(models, side, np.zeros(10)) - rest_wrist(models, side, betas[k])
    transl = _push_apart(models, sides, poses, betas, transl, max_penetration)
    hands0 = pose_hands(models, sides, poses, betas, transl)
    pts = np.concatenate([h.vertices for h in hands0])
    t = _frame_group(pts, K, size, rng, extent_range, center_jitter, truncation_prob)
    scene = Scene(family="interacting", size=size, K=K, hands=pose_hands(models, sides, poses, betas, transl + t),
                  meta={"same_person": True})
    if rng.random() < occluder_prob:
        add_occluders(scene, rng, int(rng.integers(1, max_occluders + 1)))
    return scene


def _overlap_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection area over the smaller box's area."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(area, 1e-9)


def multi(rng: np.random.Generator, size: tuple[int, int], models: HandModels, *,
          num_hands: tuple[int, int] = (0, 10), focal: float | None = None,
          extent_range: tuple[float, float] = (0.08, 0.55), max_overlap: float = 0.5,
          truncation_prob: float = 0.15, occluder_prob: float = 0.2, max_occluders: int = 3,
          left_prob: float = 0.5, presets=PRESET_NAMES, noise_deg=DEFAULT_NOISE_DEG,
          uniform_view_prob: float = 0.35, max_tries: int = 25) -> Scene:
    """The single-stage paper's multi-hand setting: 0-10 hands at varied scales over the whole image.

    The number of hands is uniform in ``num_hands`` (inclusive). Each hand gets a random side, pose, shape
    and orientation, a box size log-uniform in ``extent_range`` (fraction of the image side) and a box centre
    uniform over the image (pushed over a border with ``truncation_prob``). A placement is rejected (and
    re-drawn, up to ``max_tries`` times, after which the hand is dropped) when the hand's 3D bounding sphere
    intersects another hand's (hands never collide) or when its projected box overlaps another box by more than
    ``max_overlap`` of the smaller box's area (partial occlusions between hands remain).

    Args:
        rng: random generator.
        size: (H, W) pixels (the paper: 512 x 512).
        models: hand models.
        num_hands: (min, max) number of hands.
        focal: focal length in pixels; default the image side (the paper's 512 for 512 px).
        extent_range: range of the longer box side as a fraction of the image side (log-uniform).
        max_overlap: largest box overlap (intersection / smaller area) between two hands.
        truncation_prob: per-hand probability of crossing an image border.
        occluder_prob: probability of adding free occluders.
        max_occluders: largest number of occluders.
        left_prob: probability of a left hand.
        presets: pose presets.
        noise_deg: pose noise in degrees.
        uniform_view_prob: probability of a uniformly random orientation.
        max_tries: placement attempts per hand.

    Returns:
        The :class:`Scene` (possibly without hands).
    """
    s = float(min(size))
    K = intrinsics(s if focal is None else float(focal), size)
    n = int(rng.integers(num_hands[0], num_hands[1] + 1))
    sides, poses, betas, transl = [], [], [], []
    spheres: list[tuple[np.ndarray, float]] = []
    boxes: list[np.ndarray] = []
    for _ in range(n):
        side = _side(rng, left_prob)
        hand_pose, beta, hand0 = _oriented_hand(models, rng, side, presets, noise_deg, uniform_view_prob)
        for _try in range(max_tries):
            extent = s * np.exp(rng.uniform(np.log(extent_range[0]), np.log(extent_range[1])))
            centre = rng.uniform([0.0, 0.0], [size[1] - 1.0, size[0] - 1.0])
            t = frame_points(hand0.vertices, K, centre, extent)
            moved = hand0.vertices + t
            if rng.random() < truncation_prob:
                shift = truncation_shift(projected_box(moved, K), size, rng)
                t = t + _shift_px_to_3d(shift, float(np.median(moved[:, 2])), K)
                moved = hand0.vertices + t
            c = moved.mean(axis=0)
            r = float(np.max(np.linalg.norm(moved - c, axis=1)))
            box = projected_box(moved, K)
            if spheres_collide(c, r, spheres) or any(_overlap_fraction(box, b) > max_overlap for b in boxes):
                continue
            spheres.append((c, r))
            boxes.append(box)
            sides.append(side)
            poses.append(hand_pose)
            betas.append(beta)
            transl.append(t)
            break
    hands = pose_hands(models, sides, np.array(poses), np.array(betas), np.array(transl)) if sides else []
    scene = Scene(family="multi", size=size, K=K, hands=hands)
    if hands and rng.random() < occluder_prob:
        add_occluders(scene, rng, int(rng.integers(1, max_occluders + 1)))
    return scene


def hand_object(rng: np.random.Generator, size: tuple[int, int], models: HandModels, *,
                focal_range: tuple[float, float] = (2.0, 4.0), extent_range: tuple[float, float] = (0.55, 0.85),
                center_jitter: float = 0.08, truncation_prob: float = 0.1, left_prob: float = 0.5,
                kinds: tuple[str, ...] = ("box", "cylinder", "sphere"), presets=("grasp", "fist", "pinch"),
                noise_deg=(8.0, 4.0, 2.0), clearance: float = 0.001, uniform_view_prob: float = 0.35) -> Scene:
    """HO3D / Dex-YCB-like crop: one hand holding a box, cylinder or sphere.

    The grasp comes from :func:`hand_recon_core.data.synthetic.grasp.grasp_object` (object against the palm,
    digits closed onto it); hand and object are then turned together to a random view (views in which the
    object, seen from the wrist, points away from the camera by more than 12 degrees from the image plane are
    re-drawn up to 10 times, so the object is mostly visible, as in HO3D / Dex-YCB) and framed. The object is
    listed in the ground truth (``object_*`` extras, role ``grasped``, hand 0) and occludes the hand behind it.

    Args:
        rng: random generator.
        size: (H, W) pixels.
        models: hand models.
        focal_range: focal length range as a multiple of the image side.
        extent_range: longer side of the hand + object projected box as a fraction of the image side.
        center_jitter: box-centre jitter (+-fraction of the image side).
        truncation_prob: probability of pushing the group over an image border.
        left_prob: probability of a left hand.
        kinds: object kinds to draw from.
        presets: target grasp presets.
        noise_deg: noise of the target grasp angles, degrees.
        clearance: gap between the object and the hand, metres.
        uniform_view_prob: probability of a uniformly random orientation.

    Returns:
        The :class:`Scene` (one hand, one grasped object).
    """
    K = intrinsics(float(min(size)) * rng.uniform(*focal_range), size)
    side = _side(rng, left_prob)
    betas = sample_betas(rng)[0]
    g = grasp_object(rng, models, side, betas, kinds=tuple(kinds), presets=tuple(presets),
                     noise_deg=tuple(noise_deg), clearance=clearance)
    to_object = g.centre - rest_wrist(models, side, betas)
    for _ in range(10):  # views with the object behind the hand, pointing away from the camera, are re-drawn
        rot = hand_view_rotation(rng, uniform_probability=uniform_view_prob, side=side)
        if (rot @ to_object)[2] < 0.2 * np.linalg.norm(to_object):
            break
    hand_pose = np.concatenate([_aa(rot), g.finger_pose])
    hand0 = pose_hands(models, [side], hand_pose[None], betas[None], np.zeros((1, 3)))[0]
    # the hand turns about its rest wrist J0: the object follows the same rigid motion
    j0 = rest_wrist(models, side, betas)
    obj_rot = rot @ g.rotation
    obj_centre = rot @ (g.centre - j0) + j0
    obj_v, _ = object_mesh(g.kind, g.size)
    pts = np.concatenate([hand0.vertices, obj_v @ obj_rot.T + obj_centre])
    t = _frame_group(pts, K, size, rng, extent_range, center_jitter, truncation_prob)
    hand = pose_hands(models, [side], hand_pose[None], betas[None], t[None])
    obj = make_object(g.kind, g.size, obj_rot, obj_centre + t, rng, role="grasped", hand=0)
    return Scene(family="hand_object", size=size, K=K, hands=hand, objects=[obj], meta={"closure": g.closure})


def truncation(rng: np.random.Generator, size: tuple[int, int], models: HandModels, *,
               pair_prob: float = 0.4, **params) -> Scene:
    """Hands cut by an image border: a single hand (:func:`single`) or, with ``pair_prob``, an interacting pair
    (:func:`interacting`), always pushed over a border (``truncation_prob = 1``).

    Args:
        rng: random generator.
        size: (H, W) pixels.
        models: hand models.
        pair_prob: probability of an interacting pair instead of a single hand.
        params: further parameters of the chosen family (``truncation_prob`` is fixed to 1).

    Returns:
        The :class:`Scene` (family ``"truncation"``).
    """
    if "truncation_prob" in params:
        raise ValueError("the truncation family always truncates (truncation_prob is fixed to 1)")
    base = interacting if rng.random() < pair_prob else single
    scene = base(rng, size, models, truncation_prob=1.0, **params)
    scene.family = "truncation"
    return scene


#: Family name -> scene function.
FAMILIES: dict[str, Callable[..., Scene]] = {
    "single": single,
    "interacting": interacting,
    "multi": multi,
    "hand_object": hand_object,
    "truncation": truncation,
}
#: Default image side per family (pixels).
DEFAULT_SIZES: dict[str, int] = {"single": 224, "interacting": 256, "multi": 512, "hand_object": 256,
                                 "truncation": 224}

