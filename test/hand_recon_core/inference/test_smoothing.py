"""Tests for hand_recon_core.inference.smoothing (One-Euro filter on synthetic signals)."""

from __future__ import annotations

import numpy as np
import pytest

from hand_recon_core.data.sample import RIGHT
from hand_recon_core.inference.frame import HandResult
from hand_recon_core.inference.smoothing import HandSmoother, OneEuroConfig, OneEuroFilter, smoothing_factor

RATE = 30.0


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Causal moving average (the usual alternative smoother)."""
    out = np.empty_like(x)
    for i in range(len(x)):
        out[i] = x[max(0, i - window + 1): i + 1].mean()
    return out


def test_smoothing_factor_by_hand():
    # tau = 1 / (2 pi 1 Hz) = 0.159 s, dt = 1/30 s: alpha = 1 / (1 + 4.775) = 0.1732
    assert smoothing_factor(1.0, 1 / 30) == pytest.approx(1.0 / (1.0 + 30.0 / (2 * np.pi)), rel=1e-12)


def test_one_euro_reduces_jitter_on_a_noisy_constant_signal():
    rng = np.random.default_rng(0)
    noisy = 0.5 + rng.normal(0.0, 0.005, size=(300, 3))  # a still wrist, 5 mm jitter
    f = OneEuroFilter(min_cutoff=1.0, beta=10.0, d_cutoff=1.0)
    out = np.stack([f(x, i / RATE) for i, x in enumerate(noisy)])
    assert np.array_equal(out[0], noisy[0])  # the first sample passes
    settled = slice(30, None)
    assert out[settled].var(axis=0).max() < 0.3 * noisy[settled].var(axis=0).min()
    assert np.abs(out[settled].mean(axis=0) - 0.5).max() < 0.002  # no bias


def test_one_euro_lags_less_than_a_moving_average_on_a_ramp():
    t = np.arange(120) / RATE
    ramp = 0.5 * t  # 0.5 m/s
    f = OneEuroFilter(min_cutoff=1.0, beta=10.0, d_cutoff=1.0)
    euro = np.array([f(np.array([x]), ti)[0] for x, ti in zip(ramp, t)])
    # window 10: the moving average that removes as much white noise as a 1 Hz exponential filter at 30 Hz
    # (variance ratios 1/10 vs alpha / (2 - alpha) = 0.095)
    ma = _moving_average(ramp, 10)
    lag_euro = np.abs(ramp - euro)[60:].mean()
    lag_ma = np.abs(ramp - ma)[60:].mean()
    assert lag_ma == pytest.approx(4.5 * 0.5 / RATE, rel=1e-6)  # (window - 1) / 2 samples behind
    assert lag_euro < 0.5 * lag_ma
    # without the speed term (beta = 0) the filter is a plain 1 Hz low-pass and lags more than the average
    slow = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    plain = np.array([slow(np.array([x]), ti)[0] for x, ti in zip(ramp, t)])
    assert np.abs(ramp - plain)[60:].mean() > lag_ma


def test_one_euro_checks_time_and_shape():
    f = OneEuroFilter()
    f(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="increase"):
        f(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="shape"):
        f(np.zeros(4), 1.0)
    with pytest.raises(ValueError):
        OneEuroConfig(min_cutoff=0.0)


def _hand(track_id: int, offset: np.ndarray, rng: np.random.Generator) -> HandResult:
    verts = (np.array([[0.0, 0.0, 0.5], [0.02, 0.0, 0.5], [0.0, 0.02, 0.5], [0.02, 0.02, 0.52]])
             + offset + rng.normal(0, 0.003, (4, 3))).astype(np.float32)
    joints = np.repeat(verts.mean(axis=0, keepdims=True), 21, axis=0)  # a linear function of the vertices
    kp = (joints[:, :2] / joints[:, 2:] * 500.0 + 320.0).astype(np.float32)
    return HandResult(slot=0, handedness=RIGHT, score=1.0, bbox=np.array([0, 0, 10, 10], np.float32),
                      keypoints_2d=kp, joints_3d=joints, vertices_3d=verts, track_id=track_id)


def test_hand_smoother_is_consistent_per_hand_and_per_track():
    rng = np.random.default_rng(1)
    smoother = HandSmoother()
    raw_j, out_j = [], []
    for f in range(60):
        hands = [_hand(7, np.zeros(3), rng), _hand(-1, np.zeros(3), rng)]
        out = smoother.smooth_hands(hands, f / RATE)
        assert out[1] is hands[1]  # untracked hands pass unchanged
        if f == 0:
            assert out[0] is hands[0]  # the first sample of a track passes unchanged
        h = out[0]
        # one shared linear filter per hand: joints stay the mean of the smoothed vertices
        assert h.joints_3d[0] == pytest.approx(h.vertices_3d.mean(axis=0), abs=1e-6)
        raw_j.append(hands[0].joints_3d[0])
        out_j.append(h.joints_3d[0])
    assert np.var(np.array(out_j)[20:], axis=0).max() < 0.5 * np.var(np.array(raw_j)[20:], axis=0).min()
    with pytest.raises(ValueError, match="increase"):
        smoother.smooth_hands([_hand(7, np.zeros(3), rng)], 0.5)
