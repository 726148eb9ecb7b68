"""Tests for hand_recon_core.inference.pipeline (tiny random-weight models on small synthetic images)."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest

from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.hand_model.loader import load_hand_model_data
from hand_recon_core.inference import pipeline as pipeline_mod
from hand_recon_core.inference.config import DEFAULT_FOCAL_RATIO
from hand_recon_core.inference.frame import HandFrame
from hand_recon_core.inference.inputs import InputError, default_intrinsics
from hand_recon_core.inference.pipeline import STAGES, Pipeline, predictions_to_hands

TINY_SS = {"input_size": 64, "fuse_channels": 16, "head_channels": 16}


@pytest.fixture
def detector(tiny_model, perturb):
    loaded = tiny_model("single_stage")
    perturb(loaded)
    return loaded


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    uvw = np.asarray(points, np.float64) @ np.asarray(K, np.float64).T
    return uvw[..., :2] / uvw[..., 2:]


def test_random_weights_frame_has_the_documented_types_shapes_and_frames(multi_sample, caplog):
    with caplog.at_level(logging.WARNING, logger="hand_recon_core.inference"):
        pipe = Pipeline.from_config("single_stage", "open", method_kwargs=TINY_SS, backbone="resnet18",
                                    score_threshold=0.0, max_hands=3)
    assert "RANDOM WEIGHTS" in caplog.text and pipe.random_weights
    image, K = multi_sample["image"], multi_sample["K"]
    frame = pipe(image, K)
    assert isinstance(frame, HandFrame)
    assert frame.image_size == (128, 96)
    assert frame.K.dtype == np.float64 and np.array_equal(frame.K, np.asarray(K, np.float64))
    expected_id = load_hand_model_data("open", "right").model_id
    assert frame.hand_model_id == expected_id == pipe.hand_model_id
    num_vertices = load_hand_model_data("open", "right").v_template.shape[0]
    for side in (RIGHT, LEFT):
        assert frame.faces[side].dtype == np.int32 and frame.faces[side].shape[1] == 3
    assert set(frame.timings_ms) == set(STAGES)
    assert all(v >= 0 for v in frame.timings_ms.values())
    parts = sum(frame.timings_ms[s] for s in STAGES if s != "total")
    assert parts <= frame.timings_ms["total"] + 1e-6
    assert len(frame.hands) == 3
    scores = [h.score for h in frame.hands]
    assert scores == sorted(scores, reverse=True)
    for slot, h in enumerate(frame.hands):
        assert h.slot == slot and h.handedness in (RIGHT, LEFT) and 0.0 <= h.score <= 1.0
        assert h.bbox.shape == (4,) and h.bbox.dtype == np.float32
        assert h.keypoints_2d.shape == (21, 2) and h.keypoints_2d.dtype == np.float32
        assert h.joints_3d.shape == (21, 3) and h.joints_3d.dtype == np.float32
        assert h.vertices_3d.shape == (num_vertices, 3) and h.vertices_3d.dtype == np.float32
        assert h.hand_pose.shape == (48,) and h.betas.shape == (10,) and h.transl.shape == (3,)
        assert not h.refined and h.partner_slot == -1 and h.track_id == -1
        # frames: the 2D keypoints are the camera-frame joints projected with the image's K
        assert np.all(h.joints_3d[:, 2] > 0)
        assert _project(h.joints_3d, frame.K) == pytest.approx(h.keypoints_2d, abs=1e-2)
        assert h.bbox[0] >= 0 and h.bbox[2] <= 127 and h.bbox[1] >= 0 and h.bbox[3] <= 95
    json.dumps(frame.to_json())


@pytest.mark.parametrize("image, message", [
    ([[0, 1, 2]], "numpy array"),
    (np.zeros((8, 8, 3), np.float32), "uint8"),
    (np.zeros((8, 8), np.uint8), "single-channel"),
    (np.zeros((8, 8, 4), np.uint8), "drop the alpha"),
    (np.zeros((8, 8, 3, 1), np.uint8), "4 dimensions"),
    (np.zeros((0, 8, 3), np.uint8), "empty"),
])
def test_invalid_images_raise_clear_errors(detector, image, message):
    pipe = Pipeline(detector)
    with pytest.raises(InputError, match=message):
        pipe(image)


@pytest.mark.parametrize("K, message", [
    (np.full((3, 3), np.nan), "NaN"),
    (np.zeros((3, 3)), "non-positive focal"),
    (np.eye(2), "shape"),
    (np.array([[100.0, 0, 32], [0, 100.0, 32], [0.1, 0, 1]]), "last row"),
    ("K", "array of numbers"),
])
def test_invalid_intrinsics_raise_clear_errors(detector, K, message):
    pipe = Pipeline(detector)
    with pytest.raises(InputError, match=message):
        pipe(np.zeros((32, 48, 3), np.uint8), K)


def test_flat_camera_info_k_is_accepted(detector, multi_sample):
    pipe = Pipeline(detector, score_threshold=0.0, max_hands=2)
    a = pipe(multi_sample["image"], multi_sample["K"])
    b = pipe(multi_sample["image"], np.asarray(multi_sample["K"]).reshape(9).tolist())
    assert np.array_equal(a.K, b.K) and np.array_equal(a.hands[0].vertices_3d, b.hands[0].vertices_3d)


def test_without_K_the_documented_default_is_used_and_logged_once(detector, multi_sample, caplog):
    pipe = Pipeline(detector, score_threshold=0.0, max_hands=2)
    image = multi_sample["image"]  # 128 wide, 96 high
    with caplog.at_level(logging.WARNING, logger="hand_recon_core.inference"):
        frame = pipe(image)
        pipe(image)
    expected = np.array([[DEFAULT_FOCAL_RATIO * 128, 0.0, 63.5], [0.0, DEFAULT_FOCAL_RATIO * 128, 47.5], [0, 0, 1]])
    assert np.array_equal(frame.K, expected) and np.array_equal(default_intrinsics(128, 96), expected)
    assert sum("no camera intrinsics" in r.getMessage() for r in caplog.records) == 1
    explicit = pipe(image, expected)
    for a, b in zip(frame.hands, explicit.hands):
        assert np.array_equal(a.vertices_3d, b.vertices_3d)


def test_score_threshold_and_max_hands(detector, multi_sample):
    image, K = multi_sample["image"], multi_sample["K"]
    assert len(Pipeline(detector, score_threshold=0.0, max_hands=2)(image, K).hands) == 2
    none = Pipeline(detector, score_threshold=1.0)(image, K)
    assert none.hands == [] and set(none.timings_ms) == set(STAGES)
    with pytest.raises(ValueError, match="max_hands"):
        Pipeline(detector, max_hands=0)
    with pytest.raises(ValueError, match="score_threshold"):
        Pipeline(detector, score_threshold=1.5)


def test_predictions_to_hands_sorts_filters_and_checks_keys():
    n, v = 3, 5
    pred = {"handedness": np.array([0, 1, 0]), "score": np.array([0.2, 0.9, 0.5], np.float32),
            "bbox": np.zeros((n, 4)), "keypoints_2d": np.zeros((n, 21, 2)),
            "joints_3d": np.arange(n, dtype=np.float32)[:, None, None] * np.ones((n, 21, 3)),
            "vertices_3d": np.zeros((n, v, 3))}
    hands = predictions_to_hands(pred, score_threshold=0.3)
    assert [h.score for h in hands] == pytest.approx([0.9, 0.5]) and [h.slot for h in hands] == [0, 1]
    assert [h.handedness for h in hands] == [1, 0] and hands[0].joints_3d[0, 0] == 1.0
    assert hands[0].hand_pose is None and hands[0].handedness_score == 1.0
    assert len(predictions_to_hands(pred, max_hands=1)) == 1
    del pred["vertices_3d"]
    with pytest.raises(ValueError, match="vertices_3d"):
        predictions_to_hands(pred)


def test_from_checkpoint_reproduces_the_saved_model(detector, write_checkpoint, tmp_path, multi_sample, caplog):
    path = write_checkpoint(tmp_path / "det.pt", detector)
    with caplog.at_level(logging.WARNING, logger="hand_recon_core.inference"):
        pipe = Pipeline.from_checkpoint(path, "cpu", "torch", score_threshold=0.0, max_hands=3)
    assert not pipe.random_weights and "RANDOM WEIGHTS" not in caplog.text
    ref = Pipeline(detector, score_threshold=0.0, max_hands=3)
    a, b = pipe(multi_sample["image"], multi_sample["K"]), ref(multi_sample["image"], multi_sample["K"])
    assert len(a.hands) == len(b.hands) == 3
    for ha, hb in zip(a.hands, b.hands):
        assert np.array_equal(ha.vertices_3d, hb.vertices_3d)
    assert pipe.describe()["detector_source"] == str(path)


def test_default_uses_the_packaged_checkpoint_or_falls_back_loudly(monkeypatch, tmp_path, detector, write_checkpoint,
                                                                  caplog):
    monkeypatch.setattr(pipeline_mod, "assets_dir", lambda: tmp_path)
    monkeypatch.setattr(pipeline_mod, "FALLBACK_DETECTOR", {"method": "single_stage", "backbone": "resnet18",
                                                            "method_kwargs": TINY_SS})
    with caplog.at_level(logging.WARNING, logger="hand_recon_core.inference"):
        pipe = Pipeline.default()
    assert pipe.random_weights and pipe.detector_name == "single_stage" and pipe.refiner_name is None
    assert "no packaged detector checkpoint" in caplog.text and "RANDOM WEIGHTS" in caplog.text
    write_checkpoint(tmp_path / "detector_default.pt", detector)
    pipe = Pipeline.default()
    assert not pipe.random_weights and pipe.describe()["detector_source"] == str(tmp_path / "detector_default.pt")


def test_a_refiner_of_another_hand_model_is_rejected(detector, tiny_model):
    from hand_recon_core.training.checkpoint import HandModelMismatchError

    refiner = dataclasses.replace(tiny_model("stub_refiner"), hand_model_id="mano-right-abc")
    with pytest.raises(HandModelMismatchError, match="hand model"):
        Pipeline(detector, refiner)


def test_an_unknown_refiner_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="neither a checkpoint file nor a registered method"):
        Pipeline.from_config("single_stage", method_kwargs=TINY_SS, backbone="resnet18", refiner="no_such_refiner")


def test_default_picks_the_packaged_detector_of_the_named_method(monkeypatch, tmp_path, detector, write_checkpoint,
                                                                 caplog):
    monkeypatch.setattr(pipeline_mod, "assets_dir", lambda: tmp_path)
    assert not pipeline_mod.packaged_default_exists("acr")
    write_checkpoint(tmp_path / "acr_default.pt", detector)  # any detector checkpoint stands in for the file
    assert pipeline_mod.packaged_default_exists("acr") and not pipeline_mod.packaged_default_exists("single_stage")
    pipe = Pipeline.default(detector="acr")
    assert not pipe.random_weights and pipe.describe()["detector_source"] == str(tmp_path / "acr_default.pt")
    with pytest.raises(ValueError, match="no packaged default for detector 'dir'"):
        Pipeline.default(detector="dir")
    assert not pipeline_mod.packaged_default_exists("dir")
