"""HO3D loader on a tiny fixture written in the dataset's real on-disk format (v2 png and v3 jpg frames)."""

from __future__ import annotations

import os
import pickle

import cv2
import numpy as np
import pytest

from hand_recon_core.data.datasets import build_dataset
from hand_recon_core.data.datasets.ho3d import DEPTH_SCALE, HO3DDataset
from hand_recon_core.data.sample import RIGHT, validate_sample
from hand_recon_core.hand_model.joint_orders import JOINT_NAMES

HEIGHT, WIDTH = 12, 16  # real frames are 640 x 480
CAM = np.array([[600.0, 0.0, 8.0], [0.0, 610.0, 6.0], [0.0, 0.0, 1.0]])
MANO21 = JOINT_NAMES["mano21"]
POSE, BETAS, TRANS = np.linspace(-0.4, 0.4, 48), np.linspace(-1, 1, 10), np.array([0.03, 0.05, -0.45])


class _Evil:
    def __reduce__(self):
        return os.system, ("true",)


def _object_keys():
    return {"objRot": np.zeros((3, 1)), "objTrans": np.zeros(3), "objName": "006_mustard_bottle",
            "objLabel": 5, "objCorners3D": np.zeros((8, 3)), "objCorners3DRest": np.zeros((8, 3))}  # fmt: skip


def _write_meta(path, meta):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(meta, protocol=2))


def write_fixture(root, tools):
    """train: ABF10/0000 (png), ABF10/0001 (jpg, unannotated); evaluation: SM1/0000 (root + box only).

    Joints are given in HO3D's OpenGL frame (z < 0 in front of the camera) in the MANO+tips order.
    """
    joints_cv = tools.hand_joints([0.02, 0.03, 0.45], seed=7)
    joints_cv[0] = [0.03, -0.012, 0.4]  # wrist -> pixel (53.0, -12.3)
    joints_gl = joints_cv * [1.0, -1.0, -1.0]
    (root / "train.txt").write_text("ABF10/0000\nABF10/0001\n")
    (root / "evaluation.txt").write_text("SM1/0000\n")
    tools.write_image(root / "train" / "ABF10" / "rgb" / "0000.png", HEIGHT, WIDTH, (250, 120, 0))
    tools.write_image(root / "train" / "ABF10" / "rgb" / "0001.jpg", HEIGHT, WIDTH, (0, 0, 0))
    tools.write_image(root / "evaluation" / "SM1" / "rgb" / "0000.png", HEIGHT, WIDTH, (0, 0, 0))
    _write_meta(root / "train" / "ABF10" / "meta" / "0000.pkl", {
        "handJoints3D": joints_gl, "handPose": POSE, "handBeta": BETAS, "handTrans": TRANS, "camMat": CAM,
        **_object_keys()})  # fmt: skip
    _write_meta(root / "train" / "ABF10" / "meta" / "0001.pkl", {
        "handJoints3D": None, "handPose": None, "handBeta": None, "handTrans": None, "camMat": CAM,
        "objRot": None, "objTrans": None, "objName": None})  # fmt: skip
    _write_meta(root / "evaluation" / "SM1" / "meta" / "0000.pkl", {
        "handJoints3D": joints_gl[0], "handBoundingBox": np.array([2.0, 1.0, 14.0, 11.0]), "camMat": CAM,
        **_object_keys()})  # fmt: skip
    depth_bgr = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    depth_bgr[..., 2], depth_bgr[..., 1] = 17, 13  # R = low byte, G = high byte
    (root / "train" / "ABF10" / "depth").mkdir(parents=True)
    assert cv2.imwrite(str(root / "train" / "ABF10" / "depth" / "0000.png"), depth_bgr)
    return joints_cv


def test_training_frame_flips_opengl_to_opencv_and_keeps_mano_order(tmp_path, tools):
    joints_cv = write_fixture(tmp_path, tools)
    ds = HO3DDataset(tmp_path, "train", load_depth=True)
    assert len(ds) == 2
    sample = ds[0]
    validate_sample(sample)
    assert sample["sample_id"] == "train/ABF10/0000" and sample["handedness"].tolist() == [RIGHT]
    assert np.allclose(sample["image"][0, 0], (250, 120, 0))
    j3d = sample["joints_3d"][0]
    assert np.allclose(j3d[MANO21.index("wrist")], [0.03, -0.012, 0.4])  # z > 0: in front, OpenCV frame
    assert np.allclose(j3d[MANO21.index("thumb_tip")], joints_cv[16], atol=1e-6)  # HO3D order = mano21
    assert np.allclose(j3d[MANO21.index("index_mcp")], joints_cv[1], atol=1e-6)
    assert np.allclose(sample["keypoints_2d"][0, 0], [600 * 0.03 / 0.4 + 8, 610 * -0.012 / 0.4 + 6], atol=1e-4)
    assert np.allclose(sample["keypoints_2d"][0], tools.project(j3d, CAM), atol=1e-3)
    assert np.all(sample["joint_valid"] == 1) and not sample["has_params"].any()
    assert np.allclose(sample["depth"], (17 + 256 * 13) * DEPTH_SCALE)


def test_unannotated_frame_and_v3_jpg(tmp_path, tools):
    write_fixture(tmp_path, tools)
    sample = HO3DDataset(tmp_path, "train")[1]
    validate_sample(sample)
    assert sample["handedness"].shape == (0,) and sample["joints_3d"].shape == (0, 21, 3)


def test_mano_fit_is_moved_to_the_opencv_frame(tmp_path, tools, hand_models):
    write_fixture(tmp_path, tools)
    right = hand_models[0]
    sample = HO3DDataset(tmp_path, "train", hand_models=[right])[0]
    validate_sample(sample)
    assert sample["has_params"].tolist() == [True]
    expected = tools.rigid_mesh(right, BETAS, POSE[:3], TRANS) * [1.0, -1.0, -1.0]
    got = tools.rigid_mesh(right, sample["betas"][0], sample["hand_pose"][0, :3], sample["transl"][0])
    assert np.allclose(got, expected, atol=1e-5)
    assert np.allclose(sample["hand_pose"][0, 3:], POSE[3:])  # already absolute (flat_hand_mean=True)
    gl, _ = tools.layer_forward(right, POSE[:3], POSE[3:], BETAS, TRANS, flat_hand_mean=True)
    hp = sample["hand_pose"][0]
    got, _ = tools.layer_forward(right, hp[:3], hp[3:], sample["betas"][0], sample["transl"][0], True)
    assert np.allclose(got, gl * [1.0, -1.0, -1.0], atol=1e-5)


def test_evaluation_frame_has_root_and_box_only(tmp_path, tools):
    joints_cv = write_fixture(tmp_path, tools)
    sample = build_dataset("ho3d", tmp_path, "evaluation")[0]
    validate_sample(sample)
    wrist = MANO21.index("wrist")
    assert sample["joint_valid"][0].nonzero()[0].tolist() == [wrist]
    assert np.allclose(sample["joints_3d"][0, wrist], joints_cv[0])
    assert np.allclose(sample["keypoints_2d"][0, wrist], tools.project(joints_cv[0], CAM), atol=1e-4)
    assert np.allclose(sample["bbox"][0], [2, 1, 14, 11])
    assert not sample["has_params"].any()


def test_errors(tmp_path, tools):
    with pytest.raises(FileNotFoundError, match="HO3D root"):
        HO3DDataset(tmp_path / "nowhere")
    write_fixture(tmp_path, tools)
    (tmp_path / "evaluation.txt").unlink()
    with pytest.raises(FileNotFoundError, match="evaluation.txt"):
        HO3DDataset(tmp_path, "evaluation")
    ds = HO3DDataset(tmp_path, "train")
    (tmp_path / "train" / "ABF10" / "rgb" / "0000.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"ABF10/rgb/0000\.jpg or \.png"):
        ds[0]
    _write_meta(tmp_path / "train" / "ABF10" / "meta" / "0001.pkl", {"camMat": _Evil()})
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        ds[1]
