"""Tests for hand_recon_core.inference.two_stage (the scaling benchmark's baseline)."""

from __future__ import annotations

import numpy as np
import torch

from hand_recon_core.hand_model.loader import load_hand_model_data
from hand_recon_core.inference.two_stage import TwoStageBaseline


def test_baseline_regresses_every_cropped_hand_into_the_camera_frame(multi_sample):
    torch.manual_seed(0)
    image, K = multi_sample["image"], np.asarray(multi_sample["K"], np.float64)
    boxes, sides = multi_sample["bbox"], multi_sample["handedness"].tolist()
    v = load_hand_model_data("open", "right").v_template.shape[0]
    for batch_crops in (False, True):
        base = TwoStageBaseline("resnet18", input_size=64, crop_size=32, batch_crops=batch_crops)
        out = base(image, K, boxes, sides)
        assert len(out) == len(sides) == 2
        for r in out:
            assert r["vertices_3d"].shape == (v, 3) and r["joints_3d"].shape == (21, 3)
            assert np.all(np.isfinite(r["vertices_3d"])) and np.all(r["joints_3d"][:, 2] > 0)
