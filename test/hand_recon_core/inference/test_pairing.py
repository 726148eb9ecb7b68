"""Tests for hand_recon_core.inference.pairing: the pairing rules and the refiner integration."""

from __future__ import annotations

import numpy as np
import pytest

from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.inference.backends import ModelRunner
from hand_recon_core.inference.config import BackendOptions, PairingConfig
from hand_recon_core.inference.frame import HandResult
from hand_recon_core.inference.pairing import PairRefiner, box_overlap, find_pairs
from hand_recon_core.inference.pipeline import Pipeline


def _hand(slot: int, side: int, wrist, box) -> HandResult:
    joints = np.zeros((21, 3), np.float32) + np.asarray(wrist, np.float32)
    return HandResult(slot=slot, handedness=side, score=0.9, bbox=np.asarray(box, np.float32),
                      keypoints_2d=np.zeros((21, 2), np.float32), joints_3d=joints,
                      vertices_3d=np.zeros((4, 3), np.float32) + np.asarray(wrist, np.float32))


def _gt_hands(sample: dict) -> list[HandResult]:
    """The sample's ground-truth hands as pipeline results (right first)."""
    hands = []
    for i in np.argsort(sample["handedness"], kind="stable"):
        hands.append(HandResult(slot=len(hands), handedness=int(sample["handedness"][i]), score=0.9,
                                bbox=sample["bbox"][i].copy(), keypoints_2d=sample["keypoints_2d"][i].copy(),
                                joints_3d=sample["joints_3d"][i].copy(), vertices_3d=sample["vertices_3d"][i].copy(),
                                hand_pose=sample["hand_pose"][i].copy(), betas=sample["betas"][i].copy(),
                                transl=sample["transl"][i].copy()))
    return hands


# ---------------------------------------------------------------------------------------------- rules
def test_box_overlap_by_hand():
    assert box_overlap([0, 0, 10, 10], [5, 5, 15, 15]) == pytest.approx(25 / 100)
    assert box_overlap([0, 0, 10, 10], [2, 2, 4, 4]) == pytest.approx(1.0)  # contained
    assert box_overlap([0, 0, 10, 10], [11, 0, 20, 10]) == 0.0
    assert box_overlap([0, 0, 10, 10], [0, 0, 40, 5]) == pytest.approx(50 / 100)  # over the smaller box


def test_a_close_left_right_pair_is_paired_and_a_distant_one_is_not():
    right = _hand(0, RIGHT, (0.0, 0.0, 0.5), (100, 100, 200, 200))
    close_left = _hand(1, LEFT, (0.1, 0.0, 0.5), (180, 110, 280, 210))
    far_left = _hand(1, LEFT, (1.0, 0.0, 0.5), (600, 100, 700, 200))
    assert find_pairs([right, close_left]) == [(0, 1)]
    assert find_pairs([right, far_left]) == []
    assert find_pairs([close_left, right]) == [(1, 0)]  # (right index, left index)


def test_two_right_hands_are_never_paired():
    a = _hand(0, RIGHT, (0.0, 0.0, 0.5), (100, 100, 200, 200))
    b = _hand(1, RIGHT, (0.05, 0.0, 0.5), (120, 100, 220, 200))
    assert find_pairs([a, b]) == []
    assert find_pairs([]) == []


def test_rules_combine_the_wrist_distance_and_the_box_overlap():
    right = _hand(0, RIGHT, (0.0, 0.0, 0.5), (100, 100, 200, 200))
    near_apart = _hand(1, LEFT, (0.2, 0.0, 0.5), (300, 100, 400, 200))  # wrists 0.2 m apart, boxes disjoint
    far_overlap = _hand(1, LEFT, (0.0, 0.0, 1.5), (150, 100, 250, 200))  # boxes overlap, wrists 1 m apart
    for rule, expect_near, expect_far in (("either", True, True), ("both", False, False), ("wrist", True, False),
                                          ("box", False, True)):
        cfg = PairingConfig(rule=rule)
        assert bool(find_pairs([right, near_apart], cfg)) is expect_near, rule
        assert bool(find_pairs([right, far_overlap], cfg)) is expect_far, rule
    with pytest.raises(ValueError, match="rule"):
        PairingConfig(rule="any")


def test_each_hand_joins_at_most_one_pair_the_closest():
    r0 = _hand(0, RIGHT, (0.0, 0.0, 0.5), (0, 0, 10, 10))
    r1 = _hand(1, RIGHT, (0.5, 0.0, 0.5), (50, 0, 60, 10))
    l0 = _hand(2, LEFT, (0.45, 0.0, 0.5), (45, 0, 55, 10))
    l1 = _hand(3, LEFT, (0.05, 0.0, 0.5), (5, 0, 15, 10))
    cfg = PairingConfig(max_wrist_distance_m=1.0)  # every right/left combination is a candidate
    assert find_pairs([r0, r1, l0, l1], cfg) == [(0, 3), (1, 2)]


def test_the_interaction_field_gates_candidates_when_given():
    right = _hand(0, RIGHT, (0.0, 0.0, 0.5), (100, 100, 200, 200))
    left = _hand(1, LEFT, (0.1, 0.0, 0.5), (180, 110, 280, 210))
    assert find_pairs([right, left], interaction=[0.1, 0.1]) == []
    assert find_pairs([right, left], interaction=[0.9, 0.9]) == [(0, 1)]
    assert find_pairs([right, left], PairingConfig(use_interaction_field=False), interaction=[0.1, 0.1]) == [(0, 1)]
    with pytest.raises(ValueError, match="interaction"):
        find_pairs([right, left], interaction=[0.9])


# ---------------------------------------------------------------------------------------------- refiners
def test_refined_pair_is_mapped_back_to_the_camera_frame(tiny_model, interacting_sample):
    refiner = tiny_model("stub_refiner")
    shift = refiner.method.shift
    hands = _gt_hands(interacting_sample)
    lonely = _hand(2, RIGHT, (0.5, 0.0, 2.0), (0, 0, 5, 5))  # no partner: passes through unchanged
    hands.append(lonely)
    pairs = find_pairs(hands)
    assert pairs == [(0, 1)]
    image, K = interacting_sample["image"], np.asarray(interacting_sample["K"], np.float64)
    out = PairRefiner(ModelRunner(refiner, BackendOptions())).refine(image, K, hands, pairs)
    assert out[2] is lonely
    for idx, partner in ((0, 1), (1, 0)):
        h, ref = hands[idx], out[idx]
        assert ref.refined and ref.partner_slot == partner and ref.slot == h.slot
        assert ref.handedness == h.handedness and ref.score == h.score
        assert ref.joints_3d == pytest.approx(h.joints_3d + shift, abs=1e-6)
        assert ref.vertices_3d == pytest.approx(h.vertices_3d + shift, abs=1e-6)
        uvw = (h.joints_3d + shift).astype(np.float64) @ K.T
        assert ref.keypoints_2d == pytest.approx(uvw[:, :2] / uvw[:, 2:], abs=1e-3)
        assert ref.hand_pose is None and ref.betas is None and ref.transl is None
        assert 0 <= ref.bbox[0] <= ref.bbox[2] <= 127 and 0 <= ref.bbox[1] <= ref.bbox[3] <= 127
    assert not hands[0].refined  # inputs untouched


@pytest.mark.parametrize("name", ["dir", "dgcl"])
def test_real_refiners_with_random_weights_return_camera_frame_pairs(tiny_model, interacting_sample, name):
    refiner = tiny_model(name)
    hands = _gt_hands(interacting_sample)
    image, K = interacting_sample["image"], np.asarray(interacting_sample["K"], np.float64)
    out = PairRefiner(ModelRunner(refiner, BackendOptions())).refine(image, K, hands, find_pairs(hands))
    union = np.concatenate([np.minimum(hands[0].bbox[:2], hands[1].bbox[:2]),
                            np.maximum(hands[0].bbox[2:], hands[1].bbox[2:])])
    for ref, h in zip(out, hands):
        assert ref.refined and ref.vertices_3d.shape == h.vertices_3d.shape and ref.joints_3d.shape == (21, 3)
        assert np.all(np.isfinite(ref.vertices_3d)) and np.all(ref.vertices_3d[:, 2] > 0)
        # untrained refiners start from a zero camera offset: the wrist lands at the crop centre, i.e. inside the
        # pair's box, at a positive depth (crop frame -> camera frame mapping)
        uvw = ref.joints_3d[0].astype(np.float64) @ K.T
        u, v = uvw[:2] / uvw[2]
        assert union[0] - 2 <= u <= union[2] + 2 and union[1] - 2 <= v <= union[3] + 2


def test_pipeline_refines_the_detected_pair_with_the_chosen_refiner(tiny_model, interacting_sample):
    image, K = interacting_sample["image"], interacting_sample["K"]
    pairing = PairingConfig(max_wrist_distance_m=100.0, use_interaction_field=False)
    plain = Pipeline(tiny_model("acr"), score_threshold=0.0, pairing=pairing)(image, K)
    pipe = Pipeline(tiny_model("acr"), tiny_model("stub_refiner"), score_threshold=0.0, pairing=pairing)
    assert pipe.refiner_name == "stub_refiner"
    frame = pipe(image, K)
    assert sorted(h.handedness for h in frame.hands) == [RIGHT, LEFT]
    shift = pipe.refiner_model.method.shift
    for h, p in zip(frame.hands, plain.hands):
        assert h.refined and h.partner_slot == 1 - h.slot
        assert h.joints_3d == pytest.approx(p.joints_3d + shift, abs=1e-5)
    assert frame.timings_ms["refiner"] > 0
