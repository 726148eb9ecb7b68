"""Pairing of interacting hands and their two-hand refinement.

:func:`find_pairs` (pure) decides which detected right and left hands interact, by the thresholds of
:class:`~.config.PairingConfig` (3D wrist distance, 2D box overlap, and the detector's interaction field when it
has one, e.g. ACR's ``lambda``). :class:`PairRefiner` crops each pair with the refiner's own ``encode_targets``
(DIR: the box of both hands' projected vertices; DGCL: the box of both hands' keypoints), runs the refiner and
maps its results back to the full image with the refiner's own ``predict`` — which places the crop estimates in
the camera frame with :func:`hand_recon_core.models.dir.crop_result_to_camera` /
:func:`hand_recon_core.models.dgcl.crop_to_camera` and maps 2D back through the crop's affine map — so the
pipeline adds no crop geometry of its own. Refined hands get ``refined=True`` and ``partner_slot``; hands without a
partner pass through unchanged.

A refiner is any registered method whose ``encode_targets(sample)`` accepts a full-image sample with one right
and one left hand and whose ``predict`` returns both hands (``handedness``, ``keypoints_2d``, ``joints_3d``,
``vertices_3d``, ``bbox``) in that sample's pixels and camera frame: the protocol DIR and DGCL follow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from hand_recon_core.data.sample import LEFT, RIGHT, empty_hands
from hand_recon_core.inference.config import PairingConfig
from hand_recon_core.inference.frame import HandResult

__all__ = ["PairRefiner", "box_overlap", "find_pairs", "pair_sample"]

#: Keys a refiner's ``predict`` must return per image.
REFINER_KEYS = ("handedness", "keypoints_2d", "joints_3d", "vertices_3d")


def box_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection area over the smaller box's area.

    Args:
        a: (4,) ``[u_min, v_min, u_max, v_max]`` pixels.
        b: (4,) same.

    Returns:
        Overlap in [0, 1] (0 for disjoint boxes; 1 when one box contains the other). Degenerate boxes count as
        having an area of at least 1 pixel.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    area = min(max((a[2] - a[0]) * (a[3] - a[1]), 1.0), max((b[2] - b[0]) * (b[3] - b[1]), 1.0))
    return float(min(1.0, iw * ih / area))


def find_pairs(hands: Sequence[HandResult], config: PairingConfig | None = None,
               interaction: Sequence[float] | np.ndarray | None = None) -> list[tuple[int, int]]:
    """Which right and left hands interact (rules of :class:`~.config.PairingConfig`).

    Args:
        hands: the detected hands (``joints_3d`` metres camera frame, ``bbox`` pixels).
        config: thresholds (None: the defaults).
        interaction: optional (N,) interaction intensity per hand in [0, 1] from the detector (ACR's ``lambda``;
            used when ``config.use_interaction_field``).

    Returns:
        ``(right_index, left_index)`` pairs, indices into ``hands``, sorted by the right hand's index; every hand
        appears at most once. Two hands of the same side are never paired.
    """
    cfg = config or PairingConfig()
    rights = [i for i, h in enumerate(hands) if h.handedness == RIGHT]
    lefts = [i for i, h in enumerate(hands) if h.handedness == LEFT]
    if not rights or not lefts:
        return []
    if interaction is not None:
        interaction = np.asarray(interaction, np.float64).reshape(-1)
        if len(interaction) != len(hands):
            raise ValueError(f"interaction has {len(interaction)} values for {len(hands)} hands")
    dist = np.zeros((len(rights), len(lefts)))
    ok = np.zeros_like(dist, dtype=bool)
    for a, i in enumerate(rights):
        for b, j in enumerate(lefts):
            d = float(np.linalg.norm(np.asarray(hands[i].wrist, np.float64) - np.asarray(hands[j].wrist, np.float64)))
            near = bool(np.isfinite(d) and d <= cfg.max_wrist_distance_m)
            overlap = box_overlap(hands[i].bbox, hands[j].bbox) >= cfg.min_box_overlap
            ok[a, b] = {"either": near or overlap, "both": near and overlap, "wrist": near, "box": overlap}[cfg.rule]
            if ok[a, b] and interaction is not None and cfg.use_interaction_field:
                ok[a, b] = min(interaction[i], interaction[j]) >= cfg.min_interaction
            dist[a, b] = d if np.isfinite(d) else 1e6
    if not ok.any():
        return []
    cost = np.where(ok, dist, dist + 1e9)  # non-candidates only when nothing else is left; dropped below
    rows, cols = linear_sum_assignment(cost)
    pairs = [(rights[a], lefts[b]) for a, b in zip(rows, cols) if ok[a, b]]
    return sorted(pairs)


def pair_sample(image: np.ndarray, K: np.ndarray, right: HandResult, left: HandResult, hand_model: str,
                sample_id: str = "pair") -> dict:
    """A full-image sample (:mod:`hand_recon_core.data.sample` format) holding one detected pair, for a refiner.

    Args:
        image: (H, W, 3) uint8 RGB.
        K: (3, 3) intrinsics, pixels.
        right: the right hand (its estimates act as the "labels" the refiner's crop is computed from).
        left: the left hand.
        hand_model: configured hand model name of the vertices.
        sample_id: id string.

    Returns:
        Sample with two hands (right first), every joint valid and visible, ``has_3d`` True, ``vertices_3d``,
        ``has_params`` False (the refiner does not read parameters).
    """
    s = empty_hands(2)
    s["handedness"][:] = (RIGHT, LEFT)
    for k, h in enumerate((right, left)):
        s["joints_3d"][k] = h.joints_3d
        s["keypoints_2d"][k] = h.keypoints_2d
        s["bbox"][k] = h.bbox
        for key in ("hand_pose", "betas", "transl"):
            value = getattr(h, key)
            if value is not None:
                s[key][k] = value
    s["joint_valid"][:] = 1.0
    s["joint_visible"][:] = 1.0
    s["has_3d"][:] = True
    verts = np.stack([np.asarray(right.vertices_3d, np.float32), np.asarray(left.vertices_3d, np.float32)])
    s.update(image=image, K=np.asarray(K, np.float32), dataset="inference", sample_id=sample_id,
             hand_model_id=str(hand_model), vertices_3d=verts)
    return s


class PairRefiner:
    """Runs a two-hand refiner on interacting pairs and writes its estimates back into the hands.

    Args:
        runner: a :class:`~.backends.ModelRunner` of the refiner method.
        clip_boxes: clip the refined boxes to the image (as the detectors do).

    Refined hands keep the detector's ``slot``, ``handedness``, ``score`` and ``handedness_score``; their
    ``keypoints_2d``, ``joints_3d``, ``vertices_3d`` and ``bbox`` come from the refiner, ``hand_pose``, ``betas``
    and ``transl`` are cleared to None (the refiners do not return hand-model parameters, and the detector's would
    no longer describe the refined mesh), ``refined=True`` and ``partner_slot`` = the other hand's slot.
    """

    def __init__(self, runner, clip_boxes: bool = True) -> None:
        self.runner = runner
        self.clip_boxes = bool(clip_boxes)

    @property
    def method_name(self) -> str:
        return self.runner.loaded.method_name

    def refine(self, image: np.ndarray, K: np.ndarray, hands: Sequence[HandResult],
               pairs: Sequence[tuple[int, int]]) -> list[HandResult]:
        """Refine ``pairs`` (indices into ``hands``, from :func:`find_pairs`).

        Args:
            image: (H, W, 3) uint8 RGB, the full image.
            K: (3, 3) intrinsics of ``image``, pixels.
            hands: all hands of the frame (metres camera frame / pixels).
            pairs: ``(right_index, left_index)`` pairs.

        Returns:
            A new list: refined hands replaced, the others unchanged.

        Raises:
            ValueError: the refiner's predictions lack a key, a hand or have another vertex count.
        """
        out = list(hands)
        if not pairs:
            return out
        loaded = self.runner.loaded
        method = loaded.method
        samples = [pair_sample(image, K, hands[r], hands[l], loaded.hand_model, sample_id=f"pair{k}")
                   for k, (r, l) in enumerate(pairs)]
        with torch.inference_mode():
            batch = method.collate([method.encode_targets(s) for s in samples])
            model_out, batch = self.runner.forward(batch)
            preds = self.runner.predict(model_out, batch, len(samples))
        height, width = image.shape[:2]
        for (r, l), pred in zip(pairs, preds):
            missing = [k for k in REFINER_KEYS if k not in pred]
            if missing:
                raise ValueError(f"refiner {loaded.method_name!r}: predict lacks {missing}")
            codes = np.asarray(pred["handedness"]).tolist()
            for idx, other in ((r, l), (l, r)):
                h = hands[idx]
                if h.handedness not in codes:
                    raise ValueError(f"refiner {loaded.method_name!r} returned no {h.handedness} hand: {codes}")
                k = codes.index(h.handedness)
                verts = np.asarray(pred["vertices_3d"][k], np.float32)
                if verts.shape != np.asarray(h.vertices_3d).shape:
                    raise ValueError(f"refiner {loaded.method_name!r} returned {verts.shape} vertices, the detector "
                                     f"{np.asarray(h.vertices_3d).shape}: different hand models")
                kp = np.asarray(pred["keypoints_2d"][k], np.float32)
                if "bbox" in pred:
                    box = np.asarray(pred["bbox"][k], np.float32).copy()
                else:
                    box = np.concatenate([kp.min(0), kp.max(0)]).astype(np.float32)
                if self.clip_boxes:
                    box[0::2] = np.clip(box[0::2], 0.0, width - 1.0)
                    box[1::2] = np.clip(box[1::2], 0.0, height - 1.0)
                out[idx] = dataclasses.replace(
                    h, keypoints_2d=kp, joints_3d=np.asarray(pred["joints_3d"][k], np.float32), vertices_3d=verts,
                    bbox=box, hand_pose=None, betas=None, transl=None, keypoints_2d_score=None, refined=True,
                    partner_slot=hands[other].slot)
        return out
