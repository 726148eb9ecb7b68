import numpy as np
import pytest

from hand_recon_core.training.baselines import MeanHand, mean_pose_predictions
from hand_recon_core.training.evaluator import Evaluator


def _hand(rng, wrist):
    joints = rng.normal(scale=0.03, size=(21, 3))
    joints[0] = 0.0
    return joints + wrist


def test_mean_hand_is_the_root_relative_average_per_side():
    rng = np.random.default_rng(0)
    a, b = _hand(rng, [0.1, 0, 0.5]), _hand(rng, [-0.2, 0.1, 0.6])
    c = _hand(rng, [0.0, 0.0, 0.4])
    mean = MeanHand()
    mean.add({"joints_3d": np.stack([a, c]), "handedness": np.array([1, 0]), "has_3d": np.array([True, True])})
    mean.add({"joints_3d": b[None], "handedness": np.array([1]), "has_3d": np.array([True])})
    mean.add({"joints_3d": _hand(rng, [0, 0, 1])[None], "handedness": np.array([1]), "has_3d": np.array([False])})
    np.testing.assert_allclose(mean.mean(1, "joints"), ((a - a[0]) + (b - b[0])) / 2)
    np.testing.assert_allclose(mean.mean(0, "joints"), c - c[0])
    assert mean.mean(0, "vertices") is None


def test_mean_pose_baseline_keeps_the_wrist_and_loses_the_pose():
    rng = np.random.default_rng(1)
    gts = [{"joints_3d": _hand(rng, [0.05 * i, 0, 0.5])[None], "handedness": np.array([1]),
            "has_3d": np.array([True]), "joint_valid": np.ones((1, 21)), "bbox": np.array([[0, 0, 50, 50.0]])}
           for i in range(20)]
    mean = MeanHand()
    for gt in gts:
        mean.add(gt)
    perfect = [{"handedness": np.array([1]), "score": np.array([0.9]), "bbox": gt["bbox"].copy(),
                "joints_3d": gt["joints_3d"].copy()} for gt in gts]
    base = mean_pose_predictions(perfect, mean)
    assert perfect[0]["joints_3d"] is not base[0]["joints_3d"]
    for p, b in zip(perfect, base):
        np.testing.assert_allclose(b["joints_3d"][0, 0], p["joints_3d"][0, 0], atol=1e-6)  # wrist kept
    scores = {}
    for name, preds in (("model", perfect), ("baseline", base)):
        ev = Evaluator()
        for pred, gt in zip(preds, gts):
            ev.add(pred, gt)
        scores[name] = ev.compute()["metrics"]["mpjpe/wrist"]["value"]
    assert scores["model"] == pytest.approx(0.0, abs=1e-6)
    assert scores["baseline"] > 0.02  # random 3 cm joint offsets around the mean
