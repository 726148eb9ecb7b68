"""FreiHAND loader on a tiny fixture written in the dataset's real on-disk format."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hand_recon_core.data.datasets import build_dataset
from hand_recon_core.data.datasets.freihand import SAMPLE_VERSIONS, FreiHANDDataset
from hand_recon_core.data.sample import RIGHT, validate_sample
from hand_recon_core.hand_model.joint_orders import JOINT_NAMES

SIZE = 24  # real images are 224 x 224
N = 2  # unique annotations (32560 in the release)
K0 = np.array([[30.0, 0.0, 12.0], [0.0, 31.0, 11.0], [0.0, 0.0, 1.0]])
MANO21 = JOINT_NAMES["mano21"]


def _image_colour(image_id: int) -> tuple[int, int, int]:
    return (10 * image_id + 5, 100, 200 - 10 * image_id)


def write_fixture(root, tools, with_eval_xyz=True):
    """Training: N annotations x 4 versions of images, masks; evaluation: N gs images."""
    xyz = [tools.hand_joints([0.0, 0.01 * a, 0.4], seed=10 + a) for a in range(N)]  # OpenPose order, metres
    xyz[0][0] = [0.02, -0.01, 0.4]  # wrist of sample 0 -> pixel (13.5, 10.225)
    K = [K0.tolist(), (K0 * [[1.1], [1.1], [1]]).tolist()]
    mano = [[np.r_[np.linspace(-0.5, 0.5, 48), np.linspace(0.2, -0.2, 10), [13.0, 9.0], [70.0]].tolist()]
            for _ in range(N)]  # fmt: skip
    verts = [np.full((5, 3), a + 0.5).tolist() for a in range(N)]
    for split in ("training", "evaluation"):
        files = {"K": K, "mano": mano, "verts": verts}
        if split == "training" or with_eval_xyz:
            files["xyz"] = [x.tolist() for x in xyz]
        for kind, content in files.items():
            (root / f"{split}_{kind}.json").write_text(json.dumps(content))
    for image_id in range(N * len(SAMPLE_VERSIONS)):
        tools.write_image(root / "training" / "rgb" / f"{image_id:08d}.jpg", SIZE, SIZE, _image_colour(image_id))
    (root / "training" / "mask").mkdir()
    for image_id in range(N):
        tools.write_image(root / "evaluation" / "rgb" / f"{image_id:08d}.jpg", SIZE, SIZE, (0, 0, 0))
        mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
        mask[4:10, 5:9] = 255
        assert cv2.imwrite(str(root / "training" / "mask" / f"{image_id:08d}.jpg"), mask)
    return xyz


def test_versions_index_the_images_and_share_annotations(tmp_path, tools):
    xyz = write_fixture(tmp_path, tools)
    ds = FreiHANDDataset(tmp_path, "training")
    assert len(ds) == N * 4
    # index 3 = version 1 ("hom") of annotation 1 -> image 1 + N * 1 = 3
    sample = ds[3]
    validate_sample(sample)
    assert np.allclose(sample["image"][8, 8], _image_colour(3), atol=3)
    assert sample["sample_id"] == "training/rgb/00000003.jpg"
    assert np.allclose(sample["joints_3d"][0, MANO21.index("wrist")], xyz[1][0], atol=1e-6)
    assert np.allclose(sample["K"], np.array(K0) * [[1.1], [1.1], [1]])
    only_gs = FreiHANDDataset(tmp_path, "train", versions=("gs",))
    assert len(only_gs) == N and only_gs[1]["sample_id"] == "training/rgb/00000001.jpg"


def test_joints_order_units_projection_and_mask(tmp_path, tools):
    xyz = write_fixture(tmp_path, tools)
    sample = FreiHANDDataset(tmp_path, "training")[0]
    validate_sample(sample)
    assert sample["handedness"].tolist() == [RIGHT] and sample["has_3d"].tolist() == [True]
    j3d = sample["joints_3d"][0]
    assert np.allclose(j3d[MANO21.index("wrist")], [0.02, -0.01, 0.4])
    assert np.allclose(j3d[MANO21.index("thumb_tip")], xyz[0][4], atol=1e-6)  # OpenPose 4
    assert np.allclose(j3d[MANO21.index("pinky_mcp")], xyz[0][17], atol=1e-6)  # OpenPose 17
    uv = sample["keypoints_2d"][0]
    assert np.allclose(uv[MANO21.index("wrist")], [30 * 0.02 / 0.4 + 12, 31 * -0.01 / 0.4 + 11], atol=1e-4)
    assert np.all(sample["joint_valid"] == 1) and np.all(sample["joint_visible"] == 1)
    mask = sample["mask"]
    assert mask.dtype == np.int16 and mask[6, 6] == 0 and mask[0, 0] == -1 and mask[20, 20] == -1
    assert not sample["has_params"].any() and "vertices_3d" not in sample


def test_mano_fit_is_placed_by_uv_root_and_scale(tmp_path, tools, hand_models):
    write_fixture(tmp_path, tools)
    right = hand_models[0]
    sample = FreiHANDDataset(tmp_path, "training", hand_models=[right], load_vertices=True)[1]
    validate_sample(sample)
    assert sample["has_params"].tolist() == [True]
    pose, betas = np.linspace(-0.5, 0.5, 48), np.linspace(0.2, -0.2, 10)
    assert np.allclose(sample["hand_pose"][0, :3], pose[:3])
    assert np.allclose(sample["hand_pose"][0, 3:], right.hands_mean + pose[3:], atol=1e-6)
    # The toolbox puts the middle MCP (MANO joint 4, child of the wrist) at ((u-cx)/s, (v-cy)/s, f/s).
    K = K0 * [[1.1], [1.1], [1]]
    expected_root = np.array([(13.0 - K[0, 2]) / 70.0, (9.0 - K[1, 2]) / 70.0, 0.5 * (K[0, 0] + K[1, 1]) / 70])
    shaped = right.v_template + right.shapedirs @ betas
    rest = right.dense_regressor() @ shaped
    rot = cv2.Rodrigues(pose[:3])[0]
    middle_mcp = rot @ (rest[4] - rest[0]) + rest[0] + sample["transl"][0]
    assert np.allclose(middle_mcp, expected_root, atol=1e-6)
    hp = sample["hand_pose"][0]
    _, joints = tools.layer_forward(right, hp[:3], hp[3:], sample["betas"][0], sample["transl"][0], True)
    assert np.allclose(joints[MANO21.index("middle_mcp")], expected_root, atol=1e-6)
    assert sample["vertices_3d"].shape == (1, 5, 3) and np.allclose(sample["vertices_3d"], 1.5)


def test_evaluation_split(tmp_path, tools):
    write_fixture(tmp_path, tools, with_eval_xyz=False)  # the v1 release: no evaluation joints
    ds = FreiHANDDataset(tmp_path, "evaluation")
    assert len(ds) == N
    sample = ds[0]
    validate_sample(sample)
    assert sample["has_3d"].tolist() == [False] and np.all(sample["joint_valid"] == 0)
    assert "mask" not in sample
    with pytest.raises(ValueError, match="versions"):
        FreiHANDDataset(tmp_path, "evaluation", versions=("hom",))


def test_errors_name_the_missing_path(tmp_path, tools):
    with pytest.raises(FileNotFoundError, match="FreiHAND root"):
        FreiHANDDataset(tmp_path / "nowhere")
    write_fixture(tmp_path, tools)
    (tmp_path / "training_xyz.json").unlink()
    with pytest.raises(FileNotFoundError, match="training_xyz.json"):
        build_dataset("freihand", tmp_path, "training")
    (tmp_path / "training" / "rgb" / "00000002.jpg").unlink()
    ds = FreiHANDDataset(tmp_path, "evaluation")
    assert len(ds) == N
    with pytest.raises(ValueError, match="split"):
        FreiHANDDataset(tmp_path, "val")
