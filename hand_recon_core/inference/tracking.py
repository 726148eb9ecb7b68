"""Stable hand ids across frames (pure numpy; no ROS, no torch).

:class:`HandTracker` assigns every hand of a frame a ``track_id`` by matching it to the live tracks:

1. Each track predicts its 2D centre (box centre, pixels) and 3D wrist (metres, camera frame) with a constant
   velocity model (the last per-frame displacement, times the frames since the last match).
2. Cost of track ``t`` / hand ``h``: ``d2 / (gate_2d * diag_t) + d3 / gate_3d_m`` with ``d2`` the centre
   distance (pixels), ``diag_t`` the track's box diagonal (pixels; scale-invariant gating: a large, close hand
   moves more pixels per frame), ``d3`` the wrist distance; hands of the other side are never matched
   (handedness gating).
3. Gating: a pair is allowed only when ``d2 <= gate_2d * diag_t`` and (with ``use_3d``) ``d3 <= gate_3d_m``.
4. The Hungarian algorithm (:func:`scipy.optimize.linear_sum_assignment`) picks the cheapest allowed matching.
5. Unmatched hands start new tracks with fresh ids; ids are never reused (a counter). A track that goes
   unmatched for more than ``max_missed`` consecutive frames dies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from hand_recon_core.inference.frame import HandFrame, HandResult

__all__ = ["HandTracker", "Track", "TrackerConfig", "partner_track_ids"]

_INF = 1e9


@dataclass
class TrackerConfig:
    """Matching gates and track life (module docstring).

    Attributes:
        gate_2d: largest centre displacement per match, in units of the track's box diagonal (0.75: a hand may
            move three quarters of its own size between two frames).
        gate_3d_m: largest wrist displacement per match, metres (0.15 m: 4.5 m/s at 30 frames/s).
        use_3d: also gate and cost on the 3D wrist (set False when depth is unreliable).
        max_missed: frames a track survives without a match before it dies.
        use_velocity: predict positions with the last displacement (constant velocity).
    """

    gate_2d: float = 0.75
    gate_3d_m: float = 0.15
    use_3d: bool = True
    max_missed: int = 5
    use_velocity: bool = True

    def __post_init__(self) -> None:
        if self.gate_2d <= 0 or self.gate_3d_m <= 0:
            raise ValueError("gate_2d and gate_3d_m must be > 0")
        if self.max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {self.max_missed}")


@dataclass
class Track:
    """One live track.

    Attributes:
        track_id: the id (never reused).
        handedness: ``RIGHT`` / ``LEFT``.
        centre: (2,) last matched box centre, pixels.
        wrist: (3,) last matched wrist, metres, camera frame.
        diag: last box diagonal, pixels (>= 1).
        velocity_2d: (2,) pixels per frame; velocity_3d: (3,) metres per frame.
        missed: consecutive frames without a match.
        hits: frames matched so far.
    """

    track_id: int
    handedness: int
    centre: np.ndarray
    wrist: np.ndarray
    diag: float
    velocity_2d: np.ndarray
    velocity_3d: np.ndarray
    missed: int = 0
    hits: int = 1

    def predicted(self, use_velocity: bool) -> tuple[np.ndarray, np.ndarray]:
        """(centre (2,), wrist (3,)) expected in the current frame."""
        if not use_velocity:
            return self.centre, self.wrist
        steps = self.missed + 1
        return self.centre + steps * self.velocity_2d, self.wrist + steps * self.velocity_3d


def _centre(h: HandResult) -> np.ndarray:
    b = np.asarray(h.bbox, np.float64)
    return 0.5 * (b[:2] + b[2:])


def _diag(h: HandResult) -> float:
    b = np.asarray(h.bbox, np.float64)
    return max(float(np.hypot(b[2] - b[0], b[3] - b[1])), 1.0)


class HandTracker:
    """Assigns stable ``track_id`` s to the hands of consecutive frames (module docstring).

    Args:
        config: gates and track life (None: :class:`TrackerConfig` defaults).

    Example::

        tracker = HandTracker()
        for image in frames:
            frame = tracker.update(pipeline(image, K))   # frame.hands[i].track_id set
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self._next_id = 0

    def reset(self) -> None:
        """Forget every track (ids keep increasing: they are never reused)."""
        self.tracks = []

    @property
    def active_ids(self) -> list[int]:
        """Ids of the live tracks."""
        return [t.track_id for t in self.tracks]

    def _cost(self, hands: Sequence[HandResult]) -> np.ndarray:
        cfg = self.config
        cost = np.full((len(self.tracks), len(hands)), _INF)
        for a, t in enumerate(self.tracks):
            centre, wrist = t.predicted(cfg.use_velocity)
            for b, h in enumerate(hands):
                if int(h.handedness) != t.handedness:
                    continue
                d2 = float(np.linalg.norm(_centre(h) - centre)) / (cfg.gate_2d * t.diag)
                if d2 > 1.0:
                    continue
                c = d2
                if cfg.use_3d:
                    d3 = float(np.linalg.norm(np.asarray(h.wrist, np.float64) - wrist)) / cfg.gate_3d_m
                    if not np.isfinite(d3) or d3 > 1.0:
                        continue
                    c += d3
                cost[a, b] = c
        return cost

    def update_hands(self, hands: Sequence[HandResult]) -> list[HandResult]:
        """Match one frame's hands; returns copies with ``track_id`` set (same order)."""
        cfg = self.config
        ids = [-1] * len(hands)
        matched_tracks: set[int] = set()
        if self.tracks and hands:
            cost = self._cost(hands)
            rows, cols = linear_sum_assignment(cost)
            for a, b in zip(rows, cols):
                if cost[a, b] >= _INF:
                    continue
                t, h = self.tracks[a], hands[b]
                centre, wrist, prev_missed = _centre(h), np.asarray(h.wrist, np.float64), t.missed
                t.velocity_2d = (centre - t.centre) / (prev_missed + 1)
                t.velocity_3d = (wrist - t.wrist) / (prev_missed + 1)
                t.centre, t.wrist, t.diag = centre, wrist, _diag(h)
                t.missed, t.hits = 0, t.hits + 1
                ids[b] = t.track_id
                matched_tracks.add(a)
        survivors = []
        for a, t in enumerate(self.tracks):
            if a not in matched_tracks:
                t.missed += 1
            if t.missed <= cfg.max_missed:
                survivors.append(t)
        self.tracks = survivors
        for b, h in enumerate(hands):
            if ids[b] < 0:
                ids[b] = self._next_id
                self._next_id += 1
                self.tracks.append(Track(ids[b], int(h.handedness), _centre(h), np.asarray(h.wrist, np.float64),
                                         _diag(h), np.zeros(2), np.zeros(3)))
        return [dataclasses.replace(h, track_id=i) for h, i in zip(hands, ids)]

    def update(self, frame: HandFrame) -> HandFrame:
        """:meth:`update_hands` on a frame; returns a new :class:`HandFrame` (the input is not modified)."""
        return dataclasses.replace(frame, hands=self.update_hands(frame.hands))


def partner_track_ids(hands: Sequence[HandResult]) -> list[int]:
    """Track id of each hand's refinement partner (``partner_slot`` resolved), -1 when it has none.

    Args:
        hands: one frame's hands (after tracking).
    """
    by_slot = {h.slot: h.track_id for h in hands}
    return [by_slot.get(h.partner_slot, -1) if h.partner_slot >= 0 else -1 for h in hands]
