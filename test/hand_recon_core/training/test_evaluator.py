"""Matching of predicted to ground-truth hands and the evaluation outputs (metrics.json, per_sample.csv)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hand_recon_core.data.sample import LEFT, RIGHT, empty_hands
from hand_recon_core.metrics import describe_alignment
from hand_recon_core.training.evaluator import PROTOCOLS, Evaluator, match_hands

RNG = np.random.default_rng(0)
JOINTS = (RNG.normal(size=(21, 3)) * 0.03).astype(np.float32)
VERTS = (RNG.normal(size=(40, 3)) * 0.04).astype(np.float32)


def _gt(hands: list[tuple[int, tuple[float, float, float, float], float]]) -> dict:
    """Ground truth: (handedness, box, x offset in metres) per hand, joints/vertices at z = 0.5 m."""
    h = empty_hands(len(hands))
    verts = []
    for i, (code, box, dx) in enumerate(hands):
        h["handedness"][i] = code
        h["bbox"][i] = box
        h["joints_3d"][i] = JOINTS + [dx, 0.0, 0.5]
        h["keypoints_2d"][i] = 10.0 * i
        h["joint_valid"][i] = 1
        h["has_3d"][i] = True
        verts.append(VERTS + [dx, 0.0, 0.5])
    return {**h, "vertices_3d": np.stack(verts).astype(np.float32) if verts else np.zeros((0, 40, 3), np.float32),
            "sample_id": "img", "dataset": "unit"}


def _pred(gt: dict, order: list[int], shift=(0.01, 0.0, 0.0), flip_hand: int | None = None) -> dict:
    """Prediction of the GT hands ``order`` (in that order), translated by ``shift`` metres."""
    hand = gt["handedness"][order].copy()
    if flip_hand is not None:
        hand[flip_hand] = 1 - hand[flip_hand]
    return {"handedness": hand, "score": np.linspace(0.9, 0.5, len(order)), "bbox": gt["bbox"][order],
            "joints_3d": gt["joints_3d"][order] + np.asarray(shift, np.float32),
            "keypoints_2d": gt["keypoints_2d"][order] + 3.0,
            "vertices_3d": gt["vertices_3d"][order] + np.asarray(shift, np.float32)}


def test_matching_by_box_iou_and_handedness():
    gt = _gt([(RIGHT, (0, 0, 10, 10), 0.0), (LEFT, (20, 0, 30, 10), 0.1)])
    pred = {"handedness": np.array([LEFT, RIGHT, RIGHT]), "bbox": np.array([[21, 0, 31, 10], [0, 0, 10, 10],
                                                                             [50, 50, 60, 60]], np.float32)}
    pairs, aff = match_hands(pred, gt)
    assert pairs == [(1, 0), (0, 1)] and aff.shape == (3, 2)
    # two predictions on one box: the one with the right handedness wins even with a lower IoU
    pred = {"handedness": np.array([LEFT, RIGHT]), "bbox": np.array([[0, 0, 10, 10], [1, 0, 11, 10]], np.float32)}
    assert match_hands(pred, _gt([(RIGHT, (0, 0, 10, 10), 0.0)]))[0] == [(1, 0)]
    # the only candidate is matched even with the wrong handedness
    assert match_hands({"handedness": np.array([LEFT]), "bbox": gt["bbox"][:1]}, gt)[0] == [(0, 0)]


def test_matching_without_boxes_uses_2d_centres_then_wrists():
    gt = _gt([(RIGHT, (0, 0, 10, 10), 0.0), (RIGHT, (100, 0, 110, 10), 0.2)])
    kp = np.zeros((2, 21, 2), np.float32)
    kp[0] += (105, 5)
    kp[1] += (5, 5)
    assert match_hands({"handedness": np.array([RIGHT, RIGHT]), "keypoints_2d": kp}, gt)[0] == [(1, 0), (0, 1)]
    j = gt["joints_3d"][[1, 0]]
    assert match_hands({"handedness": np.array([RIGHT, RIGHT]), "joints_3d": j}, gt)[0] == [(1, 0), (0, 1)]


def test_metrics_on_a_known_offset(tmp_path):
    ev = Evaluator()
    gt = _gt([(RIGHT, (0, 0, 10, 10), 0.0), (LEFT, (20, 0, 30, 10), 0.1)])
    ev.add(_pred(gt, [1, 0]), gt)  # both hands, shifted 1 cm; order swapped
    gt1 = _gt([(RIGHT, (0, 0, 10, 10), 0.0)])
    ev.add({"handedness": np.zeros(0, np.int64), "score": np.zeros(0), "bbox": np.zeros((0, 4))}, gt1)  # a miss
    result = ev.write(tmp_path, extra={"checkpoint": "x.pt"})
    m = result["metrics"]
    assert result["checkpoint"] == "x.pt" and result["num_images"] == 2
    assert result["num_gt_hands"] == 3 and result["num_matched"] == 2
    assert m["mpjpe/abs"]["value"] == pytest.approx(0.01, abs=1e-6)
    assert m["mpvpe/abs"]["value"] == pytest.approx(0.01, abs=1e-6)
    assert m["rotation_error_deg"]["value"] == pytest.approx(0.0, abs=1e-3)  # a translation: no rotation
    assert m["rotation_error_deg"]["count"] == 2
    for name in ("wrist", "wrist_bone", "middle_mcp_bone", "pa"):
        assert m[f"mpjpe/{name}"]["value"] == pytest.approx(0.0, abs=1e-6)
        assert m[f"mpvpe/{name}"]["value"] == pytest.approx(0.0, abs=1e-6)
    for name, kw in PROTOCOLS.items():
        assert m[f"mpjpe/{name}"]["alignment"] == describe_alignment(**kw)
        assert m[f"mpjpe/{name}"]["unit"] == "m" and m[f"mpjpe/{name}"]["count"] == 2
    assert m["pck_auc/pa"]["value"] == pytest.approx(1.0, abs=0.006)  # the 0 mm threshold may count as a miss
    assert m["f@5mm/pa"]["value"] == pytest.approx(1.0) and m["f@15mm/pa"]["value"] == pytest.approx(1.0)
    assert m["kp2d_epe_px"]["value"] == pytest.approx(3.0 * np.sqrt(2))
    assert m["detection_ap50"]["value"] == pytest.approx(2 / 3)  # 2 of 3 boxes found, no false positive
    assert m["detection_ap50/left"]["value"] == pytest.approx(1.0)
    assert m["handedness_accuracy"]["value"] == 1.0 and m["recall"]["value"] == pytest.approx(2 / 3)
    assert m["mrrpe"]["value"] == pytest.approx(0.0, abs=1e-6) and m["mrrpe"]["count"] == 1
    for entry in m.values():
        assert {"value", "unit", "alignment", "count"} == set(entry) and entry["alignment"]

    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    with (tmp_path / "per_sample.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert {"sample_id", "gt_index", "pred_index", "gt_handedness", "pred_handedness", "mpjpe/pa", "mpvpe/abs",
            "f@5mm/pa", "kp2d_epe_px"} <= set(rows[0])
    assert [(r["gt_index"], r["pred_index"]) for r in rows] == [("0", "1"), ("1", "0"), ("0", "-1")]
    assert float(rows[0]["mpjpe/abs"]) == pytest.approx(0.01, abs=1e-6) and rows[2]["mpjpe/abs"] == ""


def test_mrrpe_handedness_and_false_positives():
    ev = Evaluator()
    gt = _gt([(RIGHT, (0, 0, 10, 10), 0.0), (LEFT, (20, 0, 30, 10), 0.1)])
    pred = _pred(gt, [0, 1], shift=(0.0, 0.0, 0.0), flip_hand=None)
    pred["joints_3d"][1] += [0.0, 0.02, 0.0]  # left hand 2 cm off relative to the right one
    pred = {k: np.concatenate([v, v[:1] + (100 if k == "bbox" else 0)]) for k, v in pred.items()}  # + a false pos.
    ev.add(pred, gt)
    result = ev.compute()
    assert result["metrics"]["mrrpe"]["value"] == pytest.approx(0.02, abs=1e-6)
    assert result["num_pred_hands"] == 3 and len(ev.rows) == 3 and ev.rows[2]["gt_index"] == -1
    ev2 = Evaluator()
    ev2.add(_pred(gt, [0, 1], flip_hand=0), gt)
    m = ev2.compute()["metrics"]
    assert m["handedness_accuracy"]["value"] == 0.5


def test_missing_prediction_keys_give_nan_not_errors():
    ev = Evaluator()
    gt = _gt([(RIGHT, (0, 0, 10, 10), 0.0)])
    ev.add({"handedness": np.array([RIGHT]), "keypoints_2d": gt["keypoints_2d"]}, gt)
    m = ev.compute()["metrics"]
    assert np.isnan(m["mpjpe/abs"]["value"]) and m["mpjpe/abs"]["count"] == 0
    assert m["kp2d_epe_px"]["value"] == 0.0 and "detection_ap50" not in m


def test_miaa_and_interpenetration_of_two_hand_images():
    from hand_recon_core.render.primitives import sphere_mesh

    verts, faces = sphere_mesh(0.03, rings=12, segments=24)  # closed 3 cm sphere
    verts, faces = np.asarray(verts, np.float32), np.asarray(faces)
    gt = _gt([(RIGHT, (0, 0, 10, 10), 0.0), (LEFT, (5, 0, 15, 10), 0.1)])
    gt["vertices_3d"] = np.stack([verts + [0.0, 0, 0.5], verts + [0.1, 0, 0.5]]).astype(np.float32)  # apart
    gt["K"] = np.array([[500.0, 0, 64], [0, 500.0, 64], [0, 0, 1]])
    pred = _pred(gt, [0, 1], shift=(0.0, 0.0, 0.0))
    pred["vertices_3d"] = gt["vertices_3d"].copy()
    pred["vertices_3d"][1, :, 0] -= 0.07  # the left sphere moved 7 cm: centres 3 cm apart, 3 cm overlap
    ev = Evaluator(faces={RIGHT: faces, LEFT: faces})
    ev.add(pred, gt)
    m = ev.compute()["metrics"]
    # MIAA: right hand exact (0 px), left hand shifted 0.07 m at ~0.5 m depth = ~70 px (perspective: slightly more)
    assert m["miaa"]["value"] == pytest.approx(35.0, rel=5e-3) and m["miaa"]["count"] == 2
    cap = np.pi * 0.015**2 * (3 * 0.03 - 0.015) / 3  # lens of r = 3 cm spheres 3 cm apart: two caps, h = 1.5 cm
    assert m["penetration_volume"]["value"] == pytest.approx(2 * cap, rel=0.15)
    assert m["penetration_volume/gt"]["value"] == 0.0
    assert "penetration_volume" not in Evaluator().compute()["metrics"]  # only with faces


def test_ground_truth_volume_is_computed_once_for_evaluators_sharing_a_cache(monkeypatch):
    from hand_recon_core.render.primitives import sphere_mesh
    from hand_recon_core.training import evaluator as evaluator_module

    verts, faces = sphere_mesh(0.03, rings=8, segments=12)
    verts, faces = np.asarray(verts, np.float32), np.asarray(faces)
    gt = _gt([(RIGHT, (0, 0, 10, 10), 0.0), (LEFT, (5, 0, 15, 10), 0.1)])
    gt["vertices_3d"] = np.stack([verts + [0.0, 0, 0.5], verts + [0.04, 0, 0.5]]).astype(np.float32)  # overlap
    pred = _pred(gt, [0, 1], shift=(0.0, 0.0, 0.0))
    pred["vertices_3d"] = gt["vertices_3d"].copy()
    calls = []
    real = evaluator_module.interpenetration_volume
    monkeypatch.setattr(evaluator_module, "interpenetration_volume", lambda *a: calls.append(1) or real(*a))
    model = Evaluator(faces={RIGHT: faces, LEFT: faces})
    model.add(pred, gt)
    baseline = Evaluator(faces={RIGHT: faces, LEFT: faces}, gt_volume_cache=model.gt_volume_cache)
    baseline.add(pred, gt)
    assert len(calls) == 3  # model: predicted + ground truth; baseline: predicted only
    a, b = model.compute()["metrics"], baseline.compute()["metrics"]
    assert a["penetration_volume/gt"]["value"] == b["penetration_volume/gt"]["value"] > 0


def test_interpenetration_can_be_limited_to_the_first_images(monkeypatch):
    from hand_recon_core.render.primitives import sphere_mesh
    from hand_recon_core.training import evaluator as evaluator_module

    verts, faces = sphere_mesh(0.03, rings=6, segments=8)
    verts, faces = np.asarray(verts, np.float32), np.asarray(faces)
    gt = _gt([(RIGHT, (0, 0, 10, 10), 0.0), (LEFT, (5, 0, 15, 10), 0.1)])
    gt["vertices_3d"] = np.stack([verts + [0.0, 0, 0.5], verts + [0.04, 0, 0.5]]).astype(np.float32)
    pred = _pred(gt, [0, 1], shift=(0.0, 0.0, 0.0))
    pred["vertices_3d"] = gt["vertices_3d"].copy()
    calls = []
    real = evaluator_module.interpenetration_volume
    monkeypatch.setattr(evaluator_module, "interpenetration_volume", lambda *a: calls.append(1) or real(*a))
    ev = Evaluator(faces={RIGHT: faces, LEFT: faces}, penetration_images=2)
    for image in range(3):
        ev.add(pred, {**gt, "sample_id": f"s{image}"})
    m = ev.compute()["metrics"]
    assert m["penetration_volume"]["count"] == 2 and m["penetration_volume/gt"]["count"] == 2 and len(calls) == 4
    assert m["mpjpe/abs"]["count"] == 6  # every other metric still sees the three images
