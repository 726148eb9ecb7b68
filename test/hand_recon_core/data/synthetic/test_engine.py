"""End-to-end properties of generated samples (every family)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_recon_core.data.sample import LEFT, PART_SEG_PARTS_PER_HAND, RIGHT, validate_sample
from hand_recon_core.data.synthetic import SyntheticDataset, build_synthetic_dataset, generate_sample, split_extras
from hand_recon_core.data.synthetic.camera import intrinsics, project, upright_rotation
from hand_recon_core.data.synthetic.ground_truth import (
    JOINT_PARTS,
    JOINT_VISIBILITY_TOLERANCE,
)
from hand_recon_core.data.synthetic.hands import get_hand_models, pose_hands
from hand_recon_core.hand_model.loader import load_hand_model

from .conftest import TEST_SIZES

FAMILIES = tuple(TEST_SIZES)


def _all(family_samples):
    return [s for f in FAMILIES for s in family_samples[f]]


@pytest.mark.parametrize("family", FAMILIES)
def test_samples_pass_validation(family_samples, family):
    for s in family_samples[family]:
        core, extras = split_extras(s)
        validate_sample(core)
        assert s["dataset"] == f"synthetic-{family}" and s["hand_model_id"] == "open"
        assert s["image"].shape == (TEST_SIZES[family], TEST_SIZES[family], 3)
        n = len(s["handedness"])
        assert core["dense"].shape == s["image"].shape and core["dense"].dtype == np.float32
        assert extras["center"].shape == (n, 2) and extras["albedo"].shape[:1] == (n,)
        assert extras["object_mask"].shape == s["mask"].shape


def test_family_structure(family_samples):
    assert all(len(s["handedness"]) == 1 for s in family_samples["single"])
    for s in family_samples["interacting"]:
        assert s["handedness"].tolist() == [RIGHT, LEFT]
        assert s["interaction_pairs"].tolist() == [[0, 1]]  # the two hands touch
    for s in family_samples["hand_object"]:
        assert len(s["handedness"]) == 1
        assert s["object_role"].tolist() == [1] and s["object_hand"].tolist() == [0]
    assert all(len(s["handedness"]) <= 10 for s in family_samples["multi"])


def test_same_seed_is_bitwise_identical_and_seeds_differ(hand_models):
    a = generate_sample("interacting", 5, 11, 96, extras=True)
    b = SyntheticDataset("two-hand", count=8, size=96, seed=11, extras=True)[5]
    assert set(a) == set(b)
    for k in a:
        if isinstance(a[k], str):
            assert a[k] == b[k]
        else:
            assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), k
    c = generate_sample("interacting", 5, 12, 96)
    assert not np.array_equal(a["image"], c["image"])
    assert not np.array_equal(a["hand_pose"], c["hand_pose"])


def test_dataloader_workers_give_the_same_samples(hand_models):
    ds = SyntheticDataset("single", count=3, size=64, seed=2)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    for i, s in enumerate(loader):
        ref = ds[i]
        assert np.array_equal(s["image"], ref["image"]) and np.array_equal(s["joints_3d"], ref["joints_3d"])


def test_joints_equal_the_layer_output_for_the_stored_params(family_samples):
    layers = {side: load_hand_model("open", side=side, flat_hand_mean=True) for side in ("right", "left")}
    for s in _all(family_samples):
        for i, code in enumerate(s["handedness"]):
            layer = layers["left" if code == LEFT else "right"]
            hp = torch.from_numpy(s["hand_pose"][i:i + 1])
            out = layer(global_orient=hp[:, :3], hand_pose=hp[:, 3:], betas=torch.from_numpy(s["betas"][i:i + 1]),
                        transl=torch.from_numpy(s["transl"][i:i + 1]))
            np.testing.assert_allclose(out.joints[0].numpy(), s["joints_3d"][i], atol=1e-6)
            np.testing.assert_allclose(out.vertices[0].numpy(), s["vertices_3d"][i], atol=1e-6)
            np.testing.assert_allclose(project(s["joints_3d"][i], s["K"]), s["keypoints_2d"][i], atol=1e-3)


def test_part_seg_classes_follow_handedness_and_mask(family_samples):
    for s in _all(family_samples):
        seg, mask = s["part_seg"], s["mask"]
        assert np.all(seg[mask < 0] == 0) and np.all(seg[mask >= 0] > 0)
        for i, code in enumerate(s["handedness"]):
            classes = seg[mask == i]
            lo = 1 if code == RIGHT else 1 + PART_SEG_PARTS_PER_HAND
            assert np.all((classes >= lo) & (classes < lo + PART_SEG_PARTS_PER_HAND))


def test_dense_map_is_zero_off_the_hands(family_samples):
    for s in _all(family_samples):
        assert np.all(s["dense"][s["mask"] < 0] == 0)
        assert np.all((s["dense"] >= 0) & (s["dense"] <= 1))


def test_projected_visible_vertices_fall_inside_their_mask(family_samples):
    hits = total = 0
    for s in _all(family_samples):
        h, w = s["mask"].shape
        for i in range(len(s["handedness"])):
            v = s["vertices_3d"][i].astype(np.float64)
            uv = project(v, s["K"])
            col, row = np.rint(uv[:, 0]).astype(int), np.rint(uv[:, 1]).astype(int)
            inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
            col, row = np.clip(col, 0, w - 1), np.clip(row, 0, h - 1)
            # visible: the depth buffer at the vertex's pixel is the vertex's own depth
            visible = inside & (np.abs(s["depth"][row, col] - v[:, 2]) < 0.003)
            total += visible.sum()
            hits += (visible & (s["mask"][row, col] == i)).sum()
    assert total > 1000
    assert hits / total >= 0.99


def test_keypoint_visibility_agrees_with_the_depth_buffer(family_samples):
    checked = 0
    for s in _all(family_samples):
        h, w = s["mask"].shape
        for i in range(len(s["handedness"])):
            verts = s["vertices_3d"][i].astype(np.float64)
            labels = get_hand_models("open").part_labels
            for j in range(21):
                u, v = s["keypoints_2d"][i, j]
                z = float(s["joints_3d"][i, j, 2])
                part = verts[labels == JOINT_PARTS[j]]
                r = np.min(np.linalg.norm(part - s["joints_3d"][i, j], axis=1))
                c0, r0 = int(np.rint(u)), int(np.rint(v))
                expect = False
                if 0 <= c0 < w and 0 <= r0 < h:
                    for rr in range(max(r0 - 1, 0), min(r0 + 2, h)):
                        for cc in range(max(c0 - 1, 0), min(c0 + 2, w)):
                            if s["mask"][rr, cc] == i and s["depth"][rr, cc] >= z - r - JOINT_VISIBILITY_TOLERANCE:
                                expect = True
                assert bool(s["joint_visible"][i, j]) == expect
                checked += 1
    assert checked > 100
    vis = np.concatenate([s["joint_visible"].reshape(-1) for s in _all(family_samples)])
    assert 0.2 < vis.mean() < 0.95  # some joints are occluded, most are not


def test_center_is_the_mean_of_the_visible_keypoints(family_samples):
    for s in _all(family_samples):
        for i in range(len(s["handedness"])):
            vis = s["joint_visible"][i] > 0
            if vis.any():
                np.testing.assert_allclose(s["center"][i], s["keypoints_2d"][i][vis].mean(0), atol=1e-4)
                assert s["center_valid"][i]


def test_multi_scene_without_hands_is_valid(hand_models):
    s = generate_sample("multi", 0, 0, 96, extras=True, num_hands=(0, 0))
    core, _ = split_extras(s)
    validate_sample(core)
    assert len(s["handedness"]) == 0 and s["vertices_3d"].shape == (0, hand_models.num_vertices, 3)
    assert np.all(s["mask"] == -1) and np.all(s["part_seg"] == 0) and s["interaction_pairs"].shape == (0, 2)


def test_truncation_puts_hands_over_the_border(hand_models):
    s = generate_sample("single", 0, 0, 96, truncation_prob=1.0)
    uv = s["keypoints_2d"][0]
    outside = (uv < -0.5) | (uv > 95.5)
    assert outside.any() and s["mask"].max() == 0


def test_truncation_family_always_cuts_hands_at_a_border(hand_models):
    pairs = 0
    for i in range(6):
        s = generate_sample("truncation", i, 3, 96)
        uv = project(s["vertices_3d"].reshape(-1, 3), s["K"])
        assert ((uv < -0.5) | (uv > 95.5)).any(), i  # the hand surface crosses an image border
        validate_sample(s)  # raises on a malformed sample
        pairs += len(s["handedness"]) == 2
    assert 0 < pairs < 6  # single hands and interacting pairs
    with pytest.raises(ValueError, match="always truncates"):
        generate_sample("truncation", 0, 0, 96, truncation_prob=0.5)


def test_build_synthetic_dataset_resolves_aliases(hand_models):
    ds = build_synthetic_dataset("two-hand", count=4, seed=7)
    assert isinstance(ds, SyntheticDataset) and ds.family == "interacting" and len(ds) == 4 and ds.size == 256
    with pytest.raises(KeyError):
        build_synthetic_dataset("nope")


def test_upright_views_put_the_thumb_on_the_expected_side(hand_models):
    """Palm towards the camera, fingers up: a right thumb is on the image's right, a left thumb on its left."""
    from hand_recon_core.geometry.rotations import matrix_to_axis_angle

    K = intrinsics(400.0, (128, 128))
    for side, back, thumb_right in (("right", False, True), ("right", True, False), ("left", False, False),
                                    ("left", True, True)):
        rot = torch.as_tensor(upright_rotation(0.0, back, side))[None]
        hp = np.zeros((1, 48))
        hp[0, :3] = matrix_to_axis_angle(rot)[0].numpy()
        hand = pose_hands(hand_models, [side], hp, np.zeros((1, 10)), np.array([[0.0, 0.05, 0.5]]))[0]
        uv = project(hand.joints, K)
        assert (uv[16, 0] > uv[20, 0]) == thumb_right  # thumb tip vs little fingertip
        assert uv[18, 1] < uv[0, 1]  # middle tip above the wrist
        # the palm normal (model -y for both sides) points at the camera (-z) exactly when not ``back``
        palm_normal = rot[0].numpy() @ np.array([0.0, -1.0, 0.0])
        assert (palm_normal[2] < 0) == (not back)


def test_background_images_from_a_folder(tmp_path, hand_models):
    import cv2

    red = np.zeros((40, 60, 3), np.uint8)
    red[..., 2] = 255  # BGR on disk
    cv2.imwrite(str(tmp_path / "red.png"), red)
    corners = [generate_sample("single", i, 0, 64, background_dir=tmp_path)["image"][0, 0] for i in range(6)]
    assert any(c[0] > 200 and c[1] < 40 and c[2] < 40 for c in corners)
