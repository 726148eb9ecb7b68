"""Dex-YCB loader on a tiny fixture written in the dataset's real on-disk format."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from hand_recon_core.data.datasets import build_dataset
from hand_recon_core.data.datasets.dexycb import DexYCBDataset
from hand_recon_core.data.sample import LEFT, validate_sample
from hand_recon_core.hand_model.joint_orders import JOINT_NAMES

HEIGHT, WIDTH = 12, 16  # real frames are 640 x 480
SERIAL = "836212060125"
SEQ = "20200709-subject-01/20200709_141754"
MANO21 = JOINT_NAMES["mano21"]
POSE_M = np.r_[[0.3, -0.2, 0.1], np.linspace(-1, 1, 45), [0.05, 0.02, 0.6]]
BETAS = np.linspace(0.3, -0.3, 10)


def write_fixture(root, tools):
    """One subject, one left-hand sequence, one camera, two frames (the second without hand)."""
    seq_dir = root / SEQ
    cam_dir = seq_dir / SERIAL
    cam_dir.mkdir(parents=True)
    meta = {"serials": [SERIAL], "num_frames": 2, "ycb_ids": [5], "ycb_grasp_ind": 0,
            "mano_sides": ["left"], "mano_calib": ["20200709-subject-01"], "extrinsics": "20200702_151821"}
    (seq_dir / "meta.yml").write_text(yaml.safe_dump(meta))
    intr = root / "calibration" / "intrinsics"
    intr.mkdir(parents=True)
    (intr / f"{SERIAL}_640x480.yml").write_text(yaml.safe_dump(
        {"color": {"fx": 615.0, "fy": 614.0, "ppx": 8.0, "ppy": 6.0}, "depth": {"fx": 1.0}}))  # fmt: skip
    calib = root / "calibration" / "mano_20200709-subject-01"
    calib.mkdir(parents=True)
    (calib / "mano.yml").write_text(yaml.safe_dump({"betas": BETAS.tolist()}))
    (root / "models").mkdir()

    K = np.array([[615.0, 0, 8.0], [0, 614.0, 6.0], [0, 0, 1]])
    joints = tools.hand_joints([0.0, 0.02, 0.7], seed=9)  # OpenPose order, metres, OpenCV camera frame
    joints[0] = [0.014, 0.0, 0.7]  # wrist -> pixel (20.3, 6.0)
    seg = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    seg[2:5, 3:6] = 255  # hand
    seg[8:10, 8:12] = 5  # object (YCB id 5)
    np.savez(cam_dir / "labels_000000.npz", seg=seg, pose_y=np.zeros((1, 3, 4), np.float32),
             pose_m=POSE_M[None].astype(np.float32), joint_3d=joints[None].astype(np.float32),
             joint_2d=tools.project(joints, K)[None].astype(np.float32))  # fmt: skip
    np.savez(cam_dir / "labels_000001.npz", seg=np.zeros((HEIGHT, WIDTH), np.uint8),
             pose_y=np.zeros((1, 3, 4), np.float32), pose_m=np.zeros((1, 51), np.float32),
             joint_3d=-np.ones((1, 21, 3), np.float32), joint_2d=-np.ones((1, 21, 2), np.float32))  # fmt: skip
    for f in range(2):
        tools.write_image(cam_dir / f"color_{f:06d}.jpg", HEIGHT, WIDTH, (30, 60, 240))
    assert cv2.imwrite(str(cam_dir / "aligned_depth_to_color_000000.png"), np.full((HEIGHT, WIDTH), 734, np.uint16))
    return joints, K


def test_hand_frame(tmp_path, tools):
    joints, K = write_fixture(tmp_path, tools)
    ds = DexYCBDataset(tmp_path, "train", load_depth=True)  # s0 train: sequence index 0 is in (0 % 5 != 4)
    assert len(ds) == 2
    sample = ds[0]
    validate_sample(sample)
    assert sample["sample_id"] == f"{SEQ}/{SERIAL}/color_000000.jpg"
    assert sample["handedness"].tolist() == [LEFT]
    assert np.allclose(sample["K"], K)
    assert np.allclose(sample["image"][5, 5], (30, 60, 240), atol=3)
    j3d = sample["joints_3d"][0]
    assert np.allclose(j3d[MANO21.index("wrist")], [0.014, 0.0, 0.7])
    assert np.allclose(j3d[MANO21.index("thumb_cmc")], joints[1], atol=1e-6)  # Dex-YCB "thumb_mcp"
    assert np.allclose(j3d[MANO21.index("thumb_tip")], joints[4], atol=1e-6)
    assert np.allclose(j3d[MANO21.index("ring_dip")], joints[15], atol=1e-6)
    assert np.allclose(sample["keypoints_2d"][0, 0], [615 * 0.014 / 0.7 + 8, 6.0], atol=1e-4)
    mask = sample["mask"]
    assert (mask == 0).sum() == 9 and mask[3, 4] == 0 and mask[9, 9] == -1
    assert np.allclose(sample["depth"], 0.734)
    assert not sample["has_params"].any()


def test_frame_without_hand(tmp_path, tools):
    write_fixture(tmp_path, tools)
    sample = DexYCBDataset(tmp_path, "train")[1]
    validate_sample(sample)
    assert sample["handedness"].shape == (0,) and np.all(sample["mask"] == -1)


def test_pca_pose_is_converted(tmp_path, tools, hand_models):
    write_fixture(tmp_path, tools)
    with pytest.raises(ValueError, match="left hand model"):
        DexYCBDataset(tmp_path, "train", hand_models=[hand_models[0]])
    left = hand_models[1]
    sample = DexYCBDataset(tmp_path, "train", hand_models=hand_models)[0]
    validate_sample(sample)
    assert sample["has_params"].tolist() == [True]
    expected = left.hands_mean + POSE_M[3:48] @ left.hands_components
    assert np.allclose(sample["hand_pose"][0, 3:], expected, atol=1e-5)
    assert np.allclose(sample["hand_pose"][0, :3], POSE_M[:3])
    assert np.allclose(sample["transl"][0], POSE_M[48:]) and np.allclose(sample["betas"][0], BETAS)
    # manopth-style PCA layer (mean added) vs the sample's absolute axis-angle
    pca, _ = tools.layer_forward(left, POSE_M[:3], POSE_M[3:48], BETAS, POSE_M[48:], False, pose_repr="pca")
    hp = sample["hand_pose"][0]
    got, _ = tools.layer_forward(left, hp[:3], hp[3:], sample["betas"][0], sample["transl"][0], True)
    assert np.allclose(got, pca, atol=1e-5)


def test_setups_select_sequences(tmp_path, tools):
    write_fixture(tmp_path, tools)
    assert len(DexYCBDataset(tmp_path, "val")) == 0  # s0 val: sequences with index % 5 == 4
    assert len(DexYCBDataset(tmp_path, "test", setup="s1")) == 0  # s1 test: subjects 7 and 8
    assert len(DexYCBDataset(tmp_path, "train", setup="s2")) == 2  # s2 train: serials 0-5
    assert len(build_dataset("dexycb", tmp_path, "all")) == 2
    with pytest.raises(ValueError, match="setup"):
        DexYCBDataset(tmp_path, "train", setup="s4")


def test_errors_name_the_missing_path(tmp_path, tools):
    with pytest.raises(FileNotFoundError, match="no subject folders"):
        DexYCBDataset(tmp_path)
    write_fixture(tmp_path, tools)
    (tmp_path / "calibration" / "intrinsics" / f"{SERIAL}_640x480.yml").unlink()
    with pytest.raises(FileNotFoundError, match=f"{SERIAL}_640x480.yml"):
        DexYCBDataset(tmp_path)
