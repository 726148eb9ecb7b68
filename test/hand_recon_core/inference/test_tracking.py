"""Tests for hand_recon_core.inference.tracking (hand-made trajectories)."""

from __future__ import annotations

import numpy as np
import pytest

from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.inference.frame import HandFrame, HandResult
from hand_recon_core.inference.tracking import HandTracker, TrackerConfig, partner_track_ids

K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
HALF_BOX = 40.0  # pixels


def _hand(side: int, wrist, slot: int = 0, partner: int = -1) -> HandResult:
    """A hand whose box is centred on its projected wrist."""
    wrist = np.asarray(wrist, np.float64)
    uv = (K @ wrist)[:2] / wrist[2]
    box = np.concatenate([uv - HALF_BOX, uv + HALF_BOX]).astype(np.float32)
    joints = np.tile(wrist, (21, 1)).astype(np.float32)
    return HandResult(slot=slot, handedness=side, score=0.9, bbox=box, keypoints_2d=np.tile(uv, (21, 1)).astype(
        np.float32), joints_3d=joints, vertices_3d=joints[:4].copy(), partner_slot=partner)


def test_ids_are_stable_over_20_frames_of_a_moving_pair():
    rng = np.random.default_rng(0)
    tracker = HandTracker()
    ids = []
    for f in range(20):
        # the pair moves right and towards the camera, 8 mm apart from each other; detection order shuffled
        centre = np.array([-0.15 + 0.012 * f, 0.02 * np.sin(f / 3.0), 0.6 - 0.005 * f])
        right = _hand(RIGHT, centre + [0.05, 0.0, 0.0] + rng.normal(0, 0.002, 3))
        left = _hand(LEFT, centre - [0.05, 0.0, 0.0] + rng.normal(0, 0.002, 3))
        hands = [right, left] if rng.random() < 0.5 else [left, right]
        out = tracker.update_hands(hands)
        ids.append({h.handedness: h.track_id for h in out})
    assert all(i == ids[0] for i in ids)
    assert sorted(ids[0].values()) == [0, 1]


def test_a_hand_leaving_and_a_new_one_entering_gets_a_new_id():
    tracker = HandTracker(TrackerConfig(max_missed=2))
    right, left = _hand(RIGHT, (0.1, 0.0, 0.6)), _hand(LEFT, (-0.1, 0.0, 0.6))
    first = tracker.update_hands([right, left])
    id_right, id_left = first[0].track_id, first[1].track_id
    # the left hand leaves; a new left hand enters elsewhere while the old track is still alive (gated out)
    out = tracker.update_hands([right])
    assert out[0].track_id == id_right
    newcomer = tracker.update_hands([right, _hand(LEFT, (0.3, 0.2, 1.2))])
    id_new = newcomer[1].track_id
    assert id_new not in (id_right, id_left)
    # the old left track dies after max_missed frames: a hand reappearing at its place gets a fresh id
    for _ in range(3):
        tracker.update_hands([right])
    assert id_left not in tracker.active_ids
    back = tracker.update_hands([right, _hand(LEFT, (-0.1, 0.0, 0.6))])
    assert back[0].track_id == id_right and back[1].track_id not in (id_right, id_left, id_new)


def test_handedness_gates_matching():
    tracker = HandTracker()
    a = tracker.update_hands([_hand(RIGHT, (0.0, 0.0, 0.6))])[0].track_id
    b = tracker.update_hands([_hand(LEFT, (0.0, 0.0, 0.6))])[0].track_id  # same place, other side
    assert a != b


def test_a_jump_beyond_the_gates_starts_a_new_track():
    tracker = HandTracker(TrackerConfig(gate_3d_m=0.1))
    a = tracker.update_hands([_hand(RIGHT, (0.0, 0.0, 0.6))])[0].track_id
    assert tracker.update_hands([_hand(RIGHT, (0.005, 0.0, 0.6))])[0].track_id == a
    assert tracker.update_hands([_hand(RIGHT, (0.0, 0.0, 0.9))])[0].track_id != a  # 0.3 m in depth, same pixels


def test_frames_and_partner_ids():
    tracker = HandTracker()
    frame = HandFrame(hands=[_hand(RIGHT, (0.05, 0, 0.6), 0, partner=1), _hand(LEFT, (-0.05, 0, 0.6), 1, partner=0),
                             _hand(RIGHT, (0.4, 0, 0.6), 2)], image_size=(640, 480), K=K, hand_model_id="open")
    tracker.update(frame)
    out = tracker.update(frame)
    assert [h.track_id for h in frame.hands] == [-1, -1, -1]  # input untouched
    assert [h.track_id for h in out.hands] == [0, 1, 2]
    assert partner_track_ids(out.hands) == [1, 0, -1]
    with pytest.raises(ValueError):
        TrackerConfig(max_missed=-1)
