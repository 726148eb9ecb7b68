"""What the inference pipeline returns for one image: :class:`HandFrame` holding :class:`HandResult` s.

Frames and units (the same as :mod:`hand_recon_core.data.sample` and ``msg/HandMesh.msg``): 3D in the camera's
optical frame (x right, y down, z forward) in metres; 2D in pixels of the input image with pixel centres at
integer coordinates; joints in the canonical ``mano21`` order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hand_recon_core.data.sample import LEFT, RIGHT

__all__ = ["HandFrame", "HandResult", "LEFT", "RIGHT"]


@dataclass
class HandResult:
    """One reconstructed hand.

    Attributes:
        slot: index of the hand within its frame (detection order); tracking assigns stable ids later.
        handedness: :data:`RIGHT` (0) or :data:`LEFT` (1).
        score: detection confidence in [0, 1].
        bbox: (4,) float32 ``[u_min, v_min, u_max, v_max]`` pixels.
        keypoints_2d: (21, 2) float32 pixels.
        joints_3d: (21, 3) float32 metres, camera frame.
        vertices_3d: (V, 3) float32 metres, camera frame, in ``hand_model_id``'s vertex order.
        hand_pose: (48,) float32 axis-angle radians: global orientation in the camera frame (3) + 15 x 3 finger
            joints (flat-hand zero), or None when the method does not regress parameters.
        betas: (10,) float32 shape coefficients, or None.
        transl: (3,) float32 metres (smplx semantics, see the sample format), or None.
        handedness_score: probability of ``handedness``.
        keypoints_2d_score: (21,) float32 per-joint confidence, or None.
        refined: True when a two-hand refiner produced this estimate.
        partner_slot: slot of the interacting hand it was refined with, else -1.
        track_id: stable id assigned by a tracker (-1 until tracked).
    """

    slot: int
    handedness: int
    score: float
    bbox: np.ndarray
    keypoints_2d: np.ndarray
    joints_3d: np.ndarray
    vertices_3d: np.ndarray
    hand_pose: np.ndarray | None = None
    betas: np.ndarray | None = None
    transl: np.ndarray | None = None
    handedness_score: float = 1.0
    keypoints_2d_score: np.ndarray | None = None
    refined: bool = False
    partner_slot: int = -1
    track_id: int = -1

    @property
    def wrist(self) -> np.ndarray:
        """(3,) wrist position, metres, camera frame (``mano21`` joint 0)."""
        return self.joints_3d[0]


@dataclass
class HandFrame:
    """All hands of one image plus timing.

    Attributes:
        hands: the reconstructed hands (any number, possibly none).
        image_size: ``(width, height)`` of the input image, pixels.
        K: (3, 3) float64 intrinsics used (given, or the default focal when none was given).
        hand_model_id: hand model of ``vertices_3d`` / the parameters (faces: :attr:`faces`).
        faces: ``{RIGHT: (F, 3), LEFT: (F, 3)}`` int32 triangles per handedness (counter-clockwise from
            outside), static per model.
        timings_ms: stage name -> milliseconds (e.g. ``preprocess``, ``detector``, ``refiner``, ``total``).
    """

    hands: list[HandResult]
    image_size: tuple[int, int]
    K: np.ndarray
    hand_model_id: str
    faces: dict[int, np.ndarray] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        """A JSON-serialisable dict (lists of floats), e.g. for ``hand-recon infer``'s per-frame files."""

        def arr(a):
            return None if a is None else np.asarray(a, dtype=np.float64).round(6).tolist()

        return {
            "image_size": list(self.image_size),
            "K": arr(self.K),
            "hand_model_id": self.hand_model_id,
            "timings_ms": {k: round(float(v), 3) for k, v in self.timings_ms.items()},
            "hands": [
                {
                    "slot": h.slot, "track_id": h.track_id,
                    "handedness": "left" if h.handedness == LEFT else "right",
                    "score": round(float(h.score), 6), "handedness_score": round(float(h.handedness_score), 6),
                    "bbox": arr(h.bbox), "keypoints_2d": arr(h.keypoints_2d), "joints_3d": arr(h.joints_3d),
                    "vertices_3d": arr(h.vertices_3d), "hand_pose": arr(h.hand_pose), "betas": arr(h.betas),
                    "transl": arr(h.transl), "refined": h.refined, "partner_slot": h.partner_slot,
                }
                for h in self.hands
            ],
        }
