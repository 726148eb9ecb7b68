"""InterHand2.6M loader on a tiny fixture written in the dataset's real on-disk format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hand_recon_core.data.datasets import build_dataset
from hand_recon_core.data.datasets.interhand import InterHand26MDataset
from hand_recon_core.data.sample import LEFT, RIGHT, collate_samples, validate_sample
from hand_recon_core.hand_model.joint_orders import JOINT_NAMES

CAMPOS = np.array([100.0, -50.0, 30.0])  # mm, world frame
FOCAL, PRINCPT = [1200.0, 1210.0], [20.0, 30.0]
WIDTH, HEIGHT = 40, 64
WRIST_CAM = np.array([0.01, -0.02, 0.5])  # metres, camera frame -> pixel (44.0, -18.4)
MANO21 = JOINT_NAMES["mano21"]


def _camrot(tools):
    return tools.rotation("y", 30.0) @ tools.rotation("x", -10.0)


def _to_world(cam_m, camrot):
    """Inverse of the dataset's world -> camera map ``R (X - campos)`` (mm)."""
    return (np.asarray(cam_m) * 1000.0) @ camrot + CAMPOS


def write_fixture(root, tools, split="train"):
    """Two images of capture 0, camera 400002: an interacting-hands frame and a right-hand frame.

    Camera-frame joints (metres), InterHand order (thumb tip first, wrist at 20): right hand around the
    wrist ``WRIST_CAM``; the left hand misses its annotation for InterHand joints 2 and 7.
    """
    camrot = _camrot(tools)
    right = tools.hand_joints([0.01, -0.02, 0.5], seed=3)
    right[20] = WRIST_CAM
    left = tools.hand_joints([-0.05, 0.0, 0.55], seed=4)
    world = _to_world(np.concatenate([right, left]), camrot)
    valid_both = np.ones(42)
    valid_both[[21 + 2, 21 + 7]] = 0
    valid_right = np.r_[np.ones(21), np.zeros(21)]
    annot = root / "annotations" / split
    annot.mkdir(parents=True)
    prefix = f"InterHand2.6M_{split}_"
    files = ["Capture0/0001_seq/cam400002/image0005.jpg", "Capture0/0002_seq/cam400002/image0010.jpg"]
    data = {
        "images": [
            {"id": 7 + i, "file_name": f, "width": WIDTH, "height": HEIGHT, "capture": 0, "subject": 0,
             "seq_name": f.split("/")[1], "camera": "400002", "frame_idx": frame}
            for i, (f, frame) in enumerate(zip(files, (5, 10)))
        ],
        "annotations": [
            {"id": 70, "image_id": 7, "bbox": [1.0, 2.0, 30.0, 40.0], "joint_valid": [[v] for v in valid_both],
             "hand_type": "interacting", "hand_type_valid": 1},
            {"id": 71, "image_id": 8, "bbox": [3.0, 4.0, 10.0, 10.0], "joint_valid": [[v] for v in valid_right],
             "hand_type": "right", "hand_type_valid": 1},
        ],
    }  # fmt: skip
    cameras = {"0": {"campos": {"400002": CAMPOS.tolist()}, "camrot": {"400002": camrot.tolist()},
                     "focal": {"400002": FOCAL}, "princpt": {"400002": PRINCPT}}}  # fmt: skip
    joints = {"0": {str(f): {"world_coord": world.tolist(), "joint_valid": [[True]] * 42,
                             "hand_type": "interacting", "hand_type_valid": True} for f in (5, 10)}}  # fmt: skip
    mano = {"0": {"5": {"right": {"pose": np.linspace(-0.3, 0.3, 48).tolist(), "shape": np.linspace(1, -1, 10)
                                  .tolist(), "trans": [0.2, -0.1, 0.05]}, "left": None}}}  # fmt: skip
    for name, content in (("data", data), ("camera", cameras), ("joint_3d", joints), ("MANO_NeuralAnnot", mano)):
        (annot / f"{prefix}{name}.json").write_text(json.dumps(content))
    for i, f in enumerate(files):
        tools.write_image(root / "images" / split / f, HEIGHT, WIDTH, (200, 40 * i, 10))
    return right, left


def test_joints_are_metric_camera_frame_mano21_and_project_through_K(tmp_path, tools):
    right, left = write_fixture(tmp_path, tools)
    ds = InterHand26MDataset(tmp_path, "train")
    assert len(ds) == 2
    sample = ds[0]
    validate_sample(sample)
    assert sample["dataset"] == "interhand" and sample["hand_model_id"] == "mano"
    assert sample["sample_id"] == "train/Capture0/0001_seq/cam400002/image0005.jpg"
    assert sample["image"].shape == (HEIGHT, WIDTH, 3)
    assert np.allclose(sample["image"][0, 0], (200, 0, 10), atol=3)  # RGB, not BGR
    assert np.allclose(sample["K"], [[1200, 0, 20], [0, 1210, 30], [0, 0, 1]])
    assert sample["handedness"].tolist() == [RIGHT, LEFT]

    j3d, uv = sample["joints_3d"], sample["keypoints_2d"]
    wrist, thumb_tip, index_mcp = MANO21.index("wrist"), MANO21.index("thumb_tip"), MANO21.index("index_mcp")
    assert np.allclose(j3d[0, wrist], WRIST_CAM, atol=1e-6)  # InterHand joint 20
    assert np.allclose(j3d[0, thumb_tip], right[0], atol=1e-6)  # InterHand joint 0
    assert np.allclose(j3d[0, index_mcp], right[7], atol=1e-6)  # index tip..base = 4..7
    assert np.allclose(uv[0, wrist], [1200 * 0.01 / 0.5 + 20, 1210 * -0.02 / 0.5 + 30], atol=1e-3)
    assert np.allclose(uv[0], tools.project(j3d[0], sample["K"]), atol=1e-3)
    assert sample["has_3d"].tolist() == [True, True]


def test_invalid_joints_are_flagged_and_zeroed(tmp_path, tools):
    write_fixture(tmp_path, tools)
    sample = InterHand26MDataset(tmp_path, "train")[0]
    left_valid = sample["joint_valid"][1]
    # InterHand joints 2 (thumb MCP) and 7 (index MCP) of the left hand are unannotated
    missing = {MANO21.index("thumb_mcp"), MANO21.index("index_mcp")}
    assert {i for i in range(21) if left_valid[i] == 0} == missing
    assert np.all(sample["joints_3d"][1, sorted(missing)] == 0)
    assert np.array_equal(sample["joint_visible"], sample["joint_valid"])
    box = sample["bbox"][1]
    kp = sample["keypoints_2d"][1][left_valid > 0]
    assert np.allclose(box, [*np.clip(kp.min(0), 0, [WIDTH, HEIGHT]), *np.clip(kp.max(0), 0, [WIDTH, HEIGHT])])


def test_single_hand_frame_has_one_hand(tmp_path, tools):
    write_fixture(tmp_path, tools)
    sample = InterHand26MDataset(tmp_path, "train")[1]
    validate_sample(sample)
    assert sample["handedness"].tolist() == [RIGHT]
    assert not sample["has_params"].any()
    batch = collate_samples([InterHand26MDataset(tmp_path, "train")[0], sample])
    assert batch["num_hands"].tolist() == [2, 1]


def test_mano_fit_is_moved_to_the_camera_frame(tmp_path, tools, hand_models):
    write_fixture(tmp_path, tools)
    sample = InterHand26MDataset(tmp_path, "train", hand_models=hand_models)[0]
    validate_sample(sample)
    assert sample["has_params"].tolist() == [True, False]  # the left fit is null
    right_model = hand_models[0]
    pose, betas = np.linspace(-0.3, 0.3, 48), np.linspace(1, -1, 10)
    trans = np.array([0.2, -0.1, 0.05])
    # world mesh in metres, taken to the camera like the joints: R (X - campos / 1000)
    world = tools.rigid_mesh(right_model, betas, pose[:3], trans)
    expected = (world - CAMPOS / 1000.0) @ _camrot(tools).T
    got = tools.rigid_mesh(right_model, sample["betas"][0], sample["hand_pose"][0, :3], sample["transl"][0])
    assert np.allclose(got, expected, atol=1e-5)
    # articulated, with the project's layer: dataset fit (mean-relative) vs sample params (absolute)
    world, _ = tools.layer_forward(right_model, pose[:3], pose[3:], betas, trans, flat_hand_mean=False)
    hp = sample["hand_pose"][0]
    got, _ = tools.layer_forward(right_model, hp[:3], hp[3:], sample["betas"][0], sample["transl"][0], True)
    assert np.allclose(got, (world - CAMPOS / 1000.0) @ _camrot(tools).T, atol=1e-5)
    assert np.allclose(sample["hand_pose"][0, 3:], right_model.hands_mean + pose[3:], atol=1e-6)
    assert np.allclose(sample["betas"][0], betas)


def test_errors_name_the_missing_path(tmp_path, tools):
    with pytest.raises(FileNotFoundError, match="InterHand2.6M root"):
        InterHand26MDataset(tmp_path / "nowhere", "train")
    write_fixture(tmp_path, tools)
    with pytest.raises(FileNotFoundError, match=r"annotations/val"):
        InterHand26MDataset(tmp_path, "val")
    with pytest.raises(ValueError, match="split"):
        InterHand26MDataset(tmp_path, "training")
    (tmp_path / "annotations" / "train" / "InterHand2.6M_train_camera.json").unlink()
    with pytest.raises(FileNotFoundError, match="InterHand2.6M_train_camera.json"):
        build_dataset("interhand", tmp_path, "train")


def test_missing_image_is_reported_when_read(tmp_path, tools):
    write_fixture(tmp_path, tools)
    (tmp_path / "images/train/Capture0/0002_seq/cam400002/image0010.jpg").unlink()
    ds = InterHand26MDataset(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="image0010.jpg"):
        ds[1]
