"""Track ids and temporal smoothing for the node, by ``hand_recon_core.inference.tracking`` / ``smoothing``.

The ROS layer holds no tracking or filtering logic: this adapter builds the core's :class:`HandTracker` and
:class:`HandSmoother` (One-Euro, one cut-off per hand) from the node's parameters and applies them to each
:class:`~hand_recon_core.inference.frame.HandFrame`, timed by the image stamps. Stamps that do not increase (a
replayed bag, a restarted camera) restart the filters instead of failing.
"""

from __future__ import annotations

__all__ = ["Temporal"]


class Temporal:
    """Tracking (stable ``track_id``) then smoothing of one camera's frames.

    Args:
        tracking: assign track ids (:class:`hand_recon_core.inference.tracking.HandTracker`).
        smoothing: One-Euro filter per track (:class:`hand_recon_core.inference.smoothing.HandSmoother`; needs
            ``tracking``).
        min_cutoff: One-Euro cut-off at rest, Hz.
        beta: One-Euro cut-off increase per m/s of mean joint speed, s/m.
        d_cutoff: One-Euro cut-off of the speed estimate, Hz.

    Attributes:
        available: False when the core modules cannot be imported (``description`` says why; frames pass
            unchanged).
        description: one line for logs and diagnostics.
        restarts: times the filters restarted on a stamp that did not increase.
    """

    def __init__(self, tracking: bool, smoothing: bool, min_cutoff: float = 1.0, beta: float = 10.0,
                 d_cutoff: float = 1.0) -> None:
        self.tracking = bool(tracking)
        self.smoothing = bool(smoothing) and self.tracking
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.available = False
        self.description = "off (ids are detection slots)"
        self.restarts = 0
        self._tracker = None
        self._smoother = None
        self._last_t: float | None = None
        if self.tracking:
            self._build()

    def _build(self) -> None:
        try:
            from hand_recon_core.inference.smoothing import HandSmoother, OneEuroConfig
            from hand_recon_core.inference.tracking import HandTracker
        except ImportError as exc:
            self.description = f"unavailable ({exc}); ids are detection slots"
            return
        self._tracker = HandTracker()
        self._smoother = HandSmoother(OneEuroConfig(self.min_cutoff, self.beta, self.d_cutoff)) \
            if self.smoothing else None
        self._last_t = None
        self.available = True
        self.description = "tracking" + (
            f" + One-Euro (min_cutoff {self.min_cutoff:g} Hz, beta {self.beta:g} s/m, d_cutoff {self.d_cutoff:g} Hz)"
            if self._smoother is not None else "")

    def __call__(self, frame, t: float):
        """Track (and smooth) one frame.

        Args:
            frame: the pipeline's HandFrame (hands already filtered by score / count).
            t: the image's time, seconds (its header stamp).

        Returns:
            A new HandFrame with ``track_id`` set (and smoothed joints, vertices, keypoints, boxes), or ``frame``
            unchanged when unavailable.
        """
        if not self.available:
            return frame
        if self._last_t is not None and t <= self._last_t:
            self.restarts += 1
            self._tracker.reset()
            if self._smoother is not None:
                self._smoother.reset()
        self._last_t = t
        frame = self._tracker.update(frame)
        if self._smoother is not None:
            frame = self._smoother.smooth(frame, t)
        return frame

    def reset(self) -> None:
        """Forget every track and filter state (ids keep increasing; they are never reused)."""
        if self._tracker is not None:
            self._tracker.reset()
        if self._smoother is not None:
            self._smoother.reset()
        self._last_t = None
