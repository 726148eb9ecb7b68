"""The node's tracking / smoothing adapter over the core's HandTracker and HandSmoother."""

from __future__ import annotations

import dataclasses

import numpy as np

from hand_recon_core.inference.frame import HandFrame, HandResult
from hand_recon_ros.temporal import Temporal


def _frame(x: float, order=(0, 1)) -> HandFrame:
    hands = []
    for slot, side in enumerate(order):
        j = np.zeros((21, 3), np.float32) + np.array([x + 0.2 * side, 0.0, 0.5], np.float32)
        u = 100.0 + 200.0 * side + 1000.0 * x
        hands.append(HandResult(slot=slot, handedness=side, score=0.9, bbox=np.array([u, 100, u + 80, 180], np.float32),
                                keypoints_2d=np.zeros((21, 2), np.float32), joints_3d=j,
                                vertices_3d=np.repeat(j[:1], 5, 0)))
    return HandFrame(hands=hands, image_size=(640, 480), K=np.eye(3), hand_model_id="open")


def test_ids_are_stable_when_the_slots_swap():
    t = Temporal(tracking=True, smoothing=False)
    assert t.available and "tracking" in t.description
    first = t(_frame(0.0), 0.0)
    ids = {h.handedness: h.track_id for h in first.hands}
    for k in range(1, 10):
        out = t(_frame(0.002 * k, order=(1, 0) if k % 2 else (0, 1)), k / 30)
        assert {h.handedness: h.track_id for h in out.hands} == ids


def test_smoothing_lags_a_step_and_stamps_going_back_restart_the_filters():
    t = Temporal(tracking=True, smoothing=True, min_cutoff=1.0, beta=0.0, d_cutoff=1.0)
    t(_frame(0.0), 0.0)
    out = t(_frame(0.01), 1 / 30)
    x = out.hands[0].joints_3d[0, 0]
    assert 0.0 < x < 0.01  # low-passed
    out = t(_frame(0.05), 0.5 / 30)  # an older stamp: no exception, filters restart (raw values pass)
    assert t.restarts == 1 and out.hands[0].joints_3d[0, 0] == np.float32(0.05)


def test_off_passes_frames_unchanged():
    t = Temporal(tracking=False, smoothing=True)
    f = _frame(0.0)
    assert t(f, 0.0) is f and not t.available and "off" in t.description
    f2 = dataclasses.replace(f)
    assert t(f2, 0.0).hands[0].track_id == -1
