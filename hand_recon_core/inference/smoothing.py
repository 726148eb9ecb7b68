"""Temporal smoothing with the One-Euro filter (Casiez, Roussel, Vogel, CHI 2012); pure numpy.

The One-Euro filter is an exponential smoother whose cut-off frequency rises with the signal's speed: slow
motion (jitter around a pose) is smoothed strongly, fast motion passes with little lag. For a sample ``x`` at
time ``t`` (``dt`` since the previous one)::

    alpha(fc)  = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)          smoothing factor of cut-off fc (Hz)
    dx         = (x - x_hat_prev) / dt                              raw speed
    dx_hat     = dx_hat_prev + alpha(d_cutoff) (dx - dx_hat_prev)   filtered speed
    fc         = min_cutoff + beta |dx_hat|                         adaptive cut-off
    x_hat      = x_hat_prev + alpha(fc) (x - x_hat_prev)

:class:`OneEuroFilter` applies it element-wise to an array (the classic form). :class:`HandSmoother` keeps one
filter state per track and smooths a hand *consistently*: one cut-off per hand and frame, driven by the mean speed
of its 3D joints (metres/second), is applied to the joints, vertices, 2D keypoints and box alike. Every smoothed
quantity therefore sees the same linear filter, so any linear relation between them holds after smoothing (e.g.
joints regressed from the vertices) and the overlay keeps matching the mesh. Hand-model parameters (``hand_pose``,
``betas``, ``transl``) are left as estimated (axis-angles do not average linearly).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hand_recon_core.inference.frame import HandFrame, HandResult

__all__ = ["HandSmoother", "OneEuroConfig", "OneEuroFilter", "smoothing_factor"]


def smoothing_factor(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    """``alpha = 1 / (1 + 1 / (2 pi cutoff dt))`` of an exponential filter with cut-off ``cutoff`` Hz."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroConfig:
    """One-Euro parameters.

    Attributes:
        min_cutoff: cut-off at rest, Hz (lower: smoother, more lag at low speed). 1 Hz removes the frame-to-frame
            jitter of a 30 frames/s estimate.
        beta: cut-off increase per unit of speed, Hz per (unit/s): s/m for :class:`HandSmoother` (driven by
            3D joint speed). 10 s/m: a hand moving at 0.5 m/s is filtered at 6 Hz.
        d_cutoff: cut-off of the speed estimate, Hz.
        rate: assumed frame rate, Hz, when no timestamps are given.
    """

    min_cutoff: float = 1.0
    beta: float = 10.0
    d_cutoff: float = 1.0
    rate: float = 30.0

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.rate <= 0 or self.beta < 0:
            raise ValueError(f"invalid One-Euro parameters {self}: min_cutoff, d_cutoff, rate > 0 and beta >= 0")


class OneEuroFilter:
    """Element-wise One-Euro filter of an array signal (module docstring).

    Args:
        min_cutoff, beta, d_cutoff, rate: :class:`OneEuroConfig` fields.

    ``filter(x, t)`` takes an array of any fixed shape and a time in seconds (None: the previous time plus
    ``1 / rate``) and returns the filtered array (float64). The first sample passes unchanged.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 10.0, d_cutoff: float = 1.0, rate: float = 30.0) -> None:
        self.config = OneEuroConfig(min_cutoff, beta, d_cutoff, rate)
        self.reset()

    def reset(self) -> None:
        """Forget the state (the next sample passes unchanged)."""
        self.x_hat: np.ndarray | None = None
        self.dx_hat: np.ndarray | None = None
        self.t: float | None = None

    def __call__(self, x: np.ndarray, t: float | None = None) -> np.ndarray:
        cfg = self.config
        x = np.asarray(x, np.float64)
        if self.x_hat is None:
            self.x_hat, self.dx_hat = x.copy(), np.zeros_like(x)
            self.t = 0.0 if t is None else float(t)
            return x.copy()
        if x.shape != self.x_hat.shape:
            raise ValueError(f"OneEuroFilter: shape changed from {self.x_hat.shape} to {x.shape}")
        t = self.t + 1.0 / cfg.rate if t is None else float(t)
        dt = t - self.t
        if dt <= 0:
            raise ValueError(f"OneEuroFilter: timestamps must increase (got {t} after {self.t})")
        dx = (x - self.x_hat) / dt
        self.dx_hat = self.dx_hat + smoothing_factor(cfg.d_cutoff, dt) * (dx - self.dx_hat)
        alpha = smoothing_factor(cfg.min_cutoff + cfg.beta * np.abs(self.dx_hat), dt)
        self.x_hat = self.x_hat + alpha * (x - self.x_hat)
        self.t = t
        return self.x_hat.copy()


#: HandResult fields smoothed by :class:`HandSmoother` (shared cut-off per hand).
SMOOTHED_FIELDS = ("joints_3d", "vertices_3d", "keypoints_2d", "bbox")


@dataclass
class _HandState:
    t: float
    values: dict[str, np.ndarray]
    joint_speed: np.ndarray  # (21, 3) filtered joint velocity, m/s


class HandSmoother:
    """One-Euro smoothing per track, with one cut-off per hand and frame (module docstring).

    Args:
        config: filter parameters (``beta`` in s/m, driven by the mean 3D joint speed).
        stale_after_s: a track's state absent for longer than this (seconds) is dropped (a returning id then
            restarts unfiltered); shorter gaps continue the filter (larger ``dt``).

    Hands with ``track_id < 0`` (untracked) pass unchanged. A state also restarts when the vertex count changes.
    """

    def __init__(self, config: OneEuroConfig | None = None, stale_after_s: float = 0.5) -> None:
        self.config = config or OneEuroConfig()
        self.stale_after_s = float(stale_after_s)
        self._states: dict[int, _HandState] = {}
        self._t: float | None = None

    def reset(self) -> None:
        self._states = {}
        self._t = None

    def smooth_hands(self, hands: Sequence[HandResult], t: float | None = None) -> list[HandResult]:
        """Smooth one frame's tracked hands.

        Args:
            hands: the frame's hands, ``track_id`` set (:class:`~.tracking.HandTracker`).
            t: frame time, seconds (None: previous time + ``1 / rate``).

        Returns:
            Copies with smoothed ``joints_3d``, ``vertices_3d``, ``keypoints_2d`` and ``bbox`` (float32).
        """
        cfg = self.config
        t = (0.0 if self._t is None else self._t + 1.0 / cfg.rate) if t is None else float(t)
        if self._t is not None and t <= self._t:
            raise ValueError(f"HandSmoother: timestamps must increase (got {t} after {self._t})")
        self._t = t
        out, seen = [], set()
        for h in hands:
            if h.track_id < 0:
                out.append(h)
                continue
            seen.add(h.track_id)
            raw = {k: np.asarray(getattr(h, k), np.float64) for k in SMOOTHED_FIELDS}
            state = self._states.get(h.track_id)
            if state is None or any(state.values[k].shape != raw[k].shape for k in SMOOTHED_FIELDS):
                self._states[h.track_id] = _HandState(t, raw, np.zeros_like(raw["joints_3d"]))
                out.append(h)
                continue
            dt = t - state.t
            speed = (raw["joints_3d"] - state.values["joints_3d"]) / dt
            state.joint_speed = state.joint_speed + smoothing_factor(cfg.d_cutoff, dt) * (speed - state.joint_speed)
            mean_speed = float(np.linalg.norm(state.joint_speed, axis=-1).mean())
            alpha = float(smoothing_factor(cfg.min_cutoff + cfg.beta * mean_speed, dt))
            for k in SMOOTHED_FIELDS:
                state.values[k] = state.values[k] + alpha * (raw[k] - state.values[k])
            state.t = t
            out.append(dataclasses.replace(h, **{k: state.values[k].astype(np.float32) for k in SMOOTHED_FIELDS}))
        for track_id, state in list(self._states.items()):
            if track_id not in seen and t - state.t > self.stale_after_s:
                del self._states[track_id]
        return out

    def smooth(self, frame: HandFrame, t: float | None = None) -> HandFrame:
        """:meth:`smooth_hands` on a frame; returns a new :class:`HandFrame`."""
        return dataclasses.replace(frame, hands=self.smooth_hands(frame.hands, t))
