"""Tests for hand_recon_core.metrics.detection."""

import numpy as np
import pytest

from hand_recon_core.metrics.detection import box_iou, detection_ap


def test_box_iou_hand_computed():
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 15.0, 10.0], [0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [2, 2, 2, 2]])
    # half overlap: 50 / (100 + 100 - 50) = 1/3
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 1.0, 0.0, 0.0]])
    assert box_iou(a, np.zeros((0, 4))).shape == (1, 0)


def test_ap_hand_computed():
    gt = [np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [50, 50, 60, 60]])]
    preds = [
        np.array([[0, 0, 10, 10], [20, 20, 30, 30]]),  # TP (0.9), FP (0.8)
        np.array([[0, 0, 10, 10], [0, 0, 10, 10]]),  # TP (0.7), duplicate FP (0.6)
    ]
    scores = [np.array([0.9, 0.8]), np.array([0.7, 0.6])]
    ap, precision, recall = detection_ap(preds, scores, gt, return_curve=True)
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 1 / 2])
    # all-point interpolation: 1/3 * 1 + 1/3 * 2/3 + 1/3 * 0
    assert ap == pytest.approx(5 / 9)


def test_ap_perfect_and_threshold():
    gt = [np.array([[0, 0, 10, 10]])]
    assert detection_ap([np.array([[0, 0, 10, 10]])], [np.array([0.5])], gt) == pytest.approx(1.0)
    shifted = [np.array([[5, 0, 15, 10]])]  # IoU 1/3
    assert detection_ap(shifted, [np.array([0.5])], gt, iou_threshold=0.5) == 0.0
    assert detection_ap(shifted, [np.array([0.5])], gt, iou_threshold=0.3) == pytest.approx(1.0)


def test_ap_edge_cases():
    assert np.isnan(detection_ap([np.zeros((1, 4))], [np.array([1.0])], [np.zeros((0, 4))]))
    assert detection_ap([np.zeros((0, 4))], [np.zeros(0)], [np.array([[0, 0, 1, 1]])]) == 0.0
    with pytest.raises(ValueError):
        detection_ap([np.zeros((2, 4))], [np.zeros(1)], [np.zeros((0, 4))])
