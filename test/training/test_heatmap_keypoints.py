"""training/heatmap_keypoints.py: arg-max pixels of heatmaps and the error summary."""

from __future__ import annotations

import pytest
import torch


def test_argmax_lands_on_the_cell_centre(hk):
    hm = torch.zeros(1, 2, 8, 8)
    hm[0, 0, 3, 5] = 1.0  # row 3, column 5
    hm[0, 1, 7, 0] = 2.0
    px = hk.heatmap_argmax_pixels(hm, stride=4)
    assert px[0, 0].tolist() == [5 * 4 + 1.5, 3 * 4 + 1.5]
    assert px[0, 1].tolist() == [1.5, 7 * 4 + 1.5]


def test_errors_count_only_visible_joints_and_compare_with_the_constant_guess(hk):
    gt = torch.tensor([[[0.0, 0.0], [10.0, 0.0]], [[20.0, 0.0], [30.0, 0.0]]])
    pred = gt + torch.tensor([3.0, 4.0])  # 5 px everywhere
    ok = torch.tensor([[True, True], [True, False]])
    pred[1, 1] = 1000.0  # invisible: ignored
    r = hk.keypoint_errors(pred, gt, ok)
    assert r["joints"] == 3 and r["mean"] == pytest.approx(5.0) and r["pck10"] == 1.0
    # joint 0 mean position (10, 0): errors 10, 10; joint 1 (visible once) mean (10, 0): error 0
    assert r["const_mean"] == pytest.approx(20.0 / 3) and r["const_pck10"] == pytest.approx(1 / 3)
