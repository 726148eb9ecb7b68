"""RHD loader on a tiny fixture written in the dataset's real on-disk format."""

from __future__ import annotations

import os
import pickle

import cv2
import numpy as np
import pytest

from hand_recon_core.data.datasets import build_dataset
from hand_recon_core.data.datasets.rhd import RHD21_NAMES, RHDDataset
from hand_recon_core.data.sample import LEFT, RIGHT, validate_sample
from hand_recon_core.hand_model.joint_orders import JOINT_NAMES

SIZE = 20  # real images are 320 x 320
K = np.array([[280.0, 0.0, 10.0], [0.0, 281.0, 9.0], [0.0, 0.0, 1.0]])
MANO21 = JOINT_NAMES["mano21"]


class _Evil:
    def __reduce__(self):
        return os.system, ("true",)


def write_fixture(root, tools, split="training"):
    """Sample 0: left hand visible, right hand hidden; sample 7: both hands.

    Left keypoints 0-20, right 21-41, each hand: wrist, thumb tip..base, index tip..base, ... (RHD order).
    """
    d = root / split
    for sub in ("color", "mask", "depth"):
        (d / sub).mkdir(parents=True)
    annotations = {}
    masks = {0: np.zeros((SIZE, SIZE), np.uint8), 7: np.zeros((SIZE, SIZE), np.uint8)}
    for sample_id, seed in ((0, 1), (7, 2)):
        xyz = np.concatenate([tools.hand_joints([-0.03, 0.0, 0.6], seed), tools.hand_joints([0.04, 0, 0.5], seed + 9)])
        xyz[0] = [-0.03, 0.015, 0.6]  # left wrist -> pixel (-4.0, 16.025)
        vis = np.ones(42)
        vis[[3, 8]] = 0  # left thumb MCP-ish and index base occluded
        if sample_id == 0:
            vis[21:] = 0  # right hand entirely hidden
        masks[sample_id][1:3, 1:3] = 1  # person
        masks[sample_id][5:7, 5:7] = 9  # a left-hand part
        if sample_id == 7:
            masks[7][12:14, 12:15] = 25  # a right-hand part
        annotations[sample_id] = {"xyz": xyz.astype(np.float32), "K": K.astype(np.float32),
                                  "uv_vis": np.c_[tools.project(xyz, K), vis].astype(np.float32)}  # fmt: skip
        tools.write_image(d / "color" / f"{sample_id:05d}.png", SIZE, SIZE, (5, 150, 250))
        assert cv2.imwrite(str(d / "mask" / f"{sample_id:05d}.png"), masks[sample_id])
        depth = np.zeros((SIZE, SIZE, 3), np.uint8)
        depth[..., 2], depth[..., 1] = 3, 200  # R = high byte, G = low byte (BGR on disk via cv2)
        assert cv2.imwrite(str(d / "depth" / f"{sample_id:05d}.png"), depth)
    (d / f"anno_{split}.pickle").write_bytes(pickle.dumps(annotations, protocol=2))
    return annotations


def test_rhd_order_names():
    assert RHD21_NAMES[:5] == ("wrist", "thumb_tip", "thumb_ip", "thumb_mcp", "thumb_cmc")
    assert RHD21_NAMES[-1] == "pinky_mcp" and len(set(RHD21_NAMES)) == 21


def test_single_visible_hand(tmp_path, tools):
    annotations = write_fixture(tmp_path, tools)
    ds = RHDDataset(tmp_path, "training", load_depth=True)
    assert len(ds) == 2
    sample = ds[0]
    validate_sample(sample)
    assert sample["sample_id"] == "training/color/00000.png"
    assert sample["handedness"].tolist() == [LEFT]
    assert np.allclose(sample["image"][0, 0], (5, 150, 250))
    xyz = annotations[0]["xyz"]
    j3d = sample["joints_3d"][0]
    assert np.allclose(j3d[MANO21.index("wrist")], [-0.03, 0.015, 0.6])
    assert np.allclose(j3d[MANO21.index("thumb_tip")], xyz[1])
    assert np.allclose(j3d[MANO21.index("thumb_cmc")], xyz[4])
    assert np.allclose(j3d[MANO21.index("index_mcp")], xyz[8])
    assert np.allclose(j3d[MANO21.index("pinky_tip")], xyz[17])
    assert np.allclose(sample["keypoints_2d"][0, 0], [280 * -0.03 / 0.6 + 10, 281 * 0.015 / 0.6 + 9], atol=1e-4)
    assert np.all(sample["joint_valid"] == 1)
    hidden = {MANO21.index("thumb_mcp"), MANO21.index("index_mcp")}  # RHD 3 and 8
    assert {i for i in range(21) if sample["joint_visible"][0, i] == 0} == hidden
    mask = sample["mask"]
    assert mask[5, 5] == 0 and mask[1, 1] == -1 and (mask == 0).sum() == 4
    assert np.allclose(sample["depth"], (256 * 3 + 200) / 65535 * 5.0)


def test_two_hands_and_instance_mask(tmp_path, tools):
    annotations = write_fixture(tmp_path, tools)
    sample = build_dataset("rhd", tmp_path, "train")[1]
    validate_sample(sample)
    assert sample["sample_id"] == "training/color/00007.png"
    assert sample["handedness"].tolist() == [RIGHT, LEFT]
    assert np.allclose(sample["joints_3d"][0, 0], annotations[7]["xyz"][21])  # right wrist
    assert sample["mask"][12, 12] == 0 and sample["mask"][5, 5] == 1
    assert np.allclose(sample["keypoints_2d"], np.stack([
        tools.project(sample["joints_3d"][0], K), tools.project(sample["joints_3d"][1], K)]), atol=1e-3)  # fmt: skip


def test_errors(tmp_path, tools):
    with pytest.raises(FileNotFoundError, match="RHD root"):
        RHDDataset(tmp_path / "nowhere")
    write_fixture(tmp_path, tools)
    with pytest.raises(FileNotFoundError, match="evaluation"):
        RHDDataset(tmp_path, "evaluation")
    (tmp_path / "training" / "anno_training.pickle").write_bytes(pickle.dumps({0: {"xyz": _Evil()}}))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        RHDDataset(tmp_path, "training")
    (tmp_path / "training" / "anno_training.pickle").unlink()
    with pytest.raises(FileNotFoundError, match="anno_training.pickle"):
        RHDDataset(tmp_path, "training")
