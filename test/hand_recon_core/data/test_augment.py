"""Tests for the label-consistent augmentations, on small hand-made samples (no renderer, no hand model)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hand_recon_core.data.augment import (
    AugmentConfig,
    AugmentedDataset,
    ColorJitter,
    Compose,
    CropResize,
    HorizontalFlip,
    MotionBlur,
    RandomAffineCrop,
    RandomRotation,
    RandomScale,
    RandomTranslation,
    RestRootJoints,
    affine_intrinsics,
    as_generator,
    build_augmentation,
    flip_sample,
    motion_blur_kernel,
    select_hands,
    swap_part_seg_sides,
    warp_sample,
)
from hand_recon_core.data.sample import LEFT, RIGHT, empty_hands, validate_sample
from hand_recon_core.geometry.cameras import project_points
from hand_recon_core.geometry.rotations import axis_angle_to_matrix

MIRROR = np.array([-1.0, 1.0, 1.0])
J0_RIGHT = np.array([0.09, 0.006, 0.005])  # rest root joint of the toy "hand model", metres
SPACING = 0.012  # metres between neighbouring toy joints
# 21 toy joints on a 7 x 3 grid in the right hand's model frame, wrist (joint 0) at the origin.
LOCAL_RIGHT = np.array([[(j % 7) * SPACING, (j // 7 - 1) * SPACING, 0.002 * (j % 3)] for j in range(21)])
LOCAL_RIGHT -= LOCAL_RIGHT[0]
LOCAL_VERTS_RIGHT = np.random.default_rng(7).uniform(-0.01, 0.08, size=(30, 3)) * [1.0, 0.3, 0.3]


def local_joints(h: int) -> np.ndarray:
    return LOCAL_RIGHT if h == RIGHT else LOCAL_RIGHT * MIRROR


def rest_root(h: int) -> np.ndarray:
    return J0_RIGHT if h == RIGHT else J0_RIGHT * MIRROR


def rot(aa) -> np.ndarray:
    return axis_angle_to_matrix(torch.as_tensor(np.asarray(aa, np.float64))).numpy()


def project(K, points) -> np.ndarray:
    return project_points(torch.as_tensor(np.asarray(points, np.float64)), torch.as_tensor(np.asarray(K, np.float64)))\
        .numpy()


def block_label(h: int, j: int) -> int:
    """part_seg label of the 5x5 marker block drawn at joint j of a hand of handedness h."""
    return 1 + 16 * h + 1 + (j % 15)


def make_sample(width: int = 160, height: int = 120, centres=((28.0, 40.0), (110.0, 78.0)),
                handedness=(RIGHT, LEFT), fx: float = 300.0, fy: float = 300.0, angles=(0.2, -0.3)) -> dict:
    """Toy sample: hands are rectangles (mask, part_seg) with marker blocks at their keypoints."""
    K = np.array([[fx, 0.0, width / 2 - 3.3], [0.0, fy, height / 2 + 1.7], [0.0, 0.0, 1.0]])
    n = len(centres)
    hands = empty_hands(n)
    rng = np.random.default_rng(1)
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 200, width, dtype=np.uint8)[None]
    image[..., 1] = np.linspace(30, 120, height, dtype=np.uint8)[:, None]
    mask = np.full((height, width), -1, np.int16)
    part = np.zeros((height, width), np.uint8)
    depth = np.zeros((height, width), np.float32)
    verts = np.zeros((n, 30, 3), np.float32)
    for i, ((u, v), h, ang) in enumerate(zip(centres, handedness, angles)):
        z = 0.5 + 0.05 * i
        wrist = z * np.linalg.inv(K) @ [u - 20.0 if h == RIGHT else u + 20.0, v, 1.0]
        aa = np.array([0.15, -0.1, ang])
        r = rot(aa)
        joints = wrist + local_joints(h) @ r.T
        kp = project(K, joints)
        hands["handedness"][i] = h
        hands["joints_3d"][i] = joints
        hands["keypoints_2d"][i] = kp
        hands["joint_valid"][i] = 1.0
        hands["joint_visible"][i] = 1.0
        hands["joint_visible"][i, 3] = 0.0  # an occluded joint: must never become visible
        hands["bbox"][i] = [*kp.min(0), *kp.max(0)]
        hands["has_3d"][i] = True
        hands["hand_pose"][i, :3] = aa
        hands["hand_pose"][i, 3:] = rng.normal(0, 0.2, 45)
        hands["betas"][i] = rng.normal(0, 1, 10)
        hands["transl"][i] = wrist - rest_root(h)
        hands["has_params"][i] = True
        verts[i] = wrist + (LOCAL_VERTS_RIGHT * (MIRROR if h == LEFT else 1.0)) @ r.T
        x0, y0 = np.floor(kp.min(0)).astype(int) - 4
        x1, y1 = np.ceil(kp.max(0)).astype(int) + 4
        mask[y0 : y1 + 1, x0 : x1 + 1] = i
        part[y0 : y1 + 1, x0 : x1 + 1] = 1 + 16 * h
        depth[y0 : y1 + 1, x0 : x1 + 1] = joints[0, 2]
        image[y0 : y1 + 1, x0 : x1 + 1] = (220, 40 + 100 * i, 60)
        for j, (ku, kv) in enumerate(np.rint(kp).astype(int)):
            part[kv - 2 : kv + 3, ku - 2 : ku + 3] = block_label(h, j)
            image[kv - 2 : kv + 3, ku - 2 : ku + 3] = (20 * (j % 7), 250, 12 * j)
    # One invalid joint (format: coordinates 0).
    for key in ("joint_valid", "joint_visible", "joints_3d", "keypoints_2d"):
        hands[key][n - 1, 20] = 0.0
    sample = {"image": image, "K": K.astype(np.float32), **hands, "vertices_3d": verts, "mask": mask,
              "part_seg": part, "depth": depth, "dataset": "toy", "sample_id": "toy/0", "hand_model_id": "toy"}
    validate_sample(sample)
    return sample


def check_labels(s: dict, edge: float = 3.0) -> None:
    """Every label of a toy sample agrees with the image, the camera and the hand parameters."""
    validate_sample(s)
    height, width = s["image"].shape[:2]
    for i, h in enumerate(s["handedness"]):
        valid = s["joint_valid"][i] > 0
        assert np.all(s["keypoints_2d"][i][~valid] == 0) and np.all(s["joints_3d"][i][~valid] == 0)
        if s["has_3d"][i]:
            np.testing.assert_allclose(project(s["K"], s["joints_3d"][i][valid]), s["keypoints_2d"][i][valid],
                                       atol=1e-3)
        if s["has_params"][i] and valid[0]:
            r = rot(s["hand_pose"][i, :3])
            wrist = s["joints_3d"][i, 0]
            np.testing.assert_allclose(wrist + local_joints(h)[valid] @ r.T, s["joints_3d"][i][valid], atol=2e-6)
            np.testing.assert_allclose(rest_root(h) + s["transl"][i], wrist, atol=2e-6)
            vl = LOCAL_VERTS_RIGHT * (MIRROR if h == LEFT else 1.0)
            np.testing.assert_allclose(wrist + vl @ r.T, s["vertices_3d"][i], atol=2e-6)
        uv = s["keypoints_2d"][i]
        inside = (uv[:, 0] >= edge) & (uv[:, 0] < width - 1 - edge) & (uv[:, 1] >= edge) & (uv[:, 1] < height - 1
                                                                                             - edge)
        for j in np.flatnonzero(valid & inside):
            u, v = np.rint(uv[j]).astype(int)
            assert s["mask"][v, u] == i, (i, j)
            assert s["part_seg"][v, u] == block_label(int(h), j), (i, j, s["part_seg"][v, u])
            if valid[0]:
                assert s["depth"][v, u] == pytest.approx(s["joints_3d"][i, 0, 2], abs=1e-6)
        assert s["joint_visible"][i, 3] == 0
        out = ~((uv[:, 0] >= -0.5) & (uv[:, 0] < width - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] < height - 0.5))
        assert np.all(s["joint_visible"][i][out & valid] == 0)


def test_toy_sample_is_consistent():
    check_labels(make_sample())


def test_affine_intrinsics_rotation_square_pixels():
    K = np.array([[400.0, 0.0, 50.0], [0.0, 400.0, 40.0], [0.0, 0.0, 1.0]])
    a = math.radians(30.0)
    m = 1.5 * np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])
    m[:, 2] = [7.0, -3.0]
    k_new, q = affine_intrinsics(K, m)
    np.testing.assert_allclose(k_new[:2, :2], 600.0 * np.eye(2), atol=1e-9)
    np.testing.assert_allclose(q[:2, :2], m[:, :2] / 1.5, atol=1e-12)
    k_scale, q_scale = affine_intrinsics(K, [[2.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    assert np.array_equal(q_scale, np.eye(3))
    np.testing.assert_allclose(k_scale, [[800.0, 0.0, 101.0], [0.0, 800.0, 80.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="orientation"):
        affine_intrinsics(K, [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def test_affine_intrinsics_general_is_exact():
    rng = np.random.default_rng(0)
    K = np.array([[420.0, 3.0, 61.0], [0.0, 380.0, 45.0], [0.0, 0.0, 1.0]])
    pts = rng.uniform([-0.1, -0.1, 0.4], [0.1, 0.1, 0.9], size=(50, 3))
    for _ in range(10):
        a = rng.normal(size=(2, 2)) + 2 * np.eye(2)
        if np.linalg.det(a) <= 0:
            continue
        m = np.hstack([a, rng.normal(size=(2, 1)) * 20])
        k_new, q = affine_intrinsics(K, m)
        assert k_new[1, 0] == 0 and k_new[0, 0] > 0 and k_new[1, 1] > 0
        np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(project(k_new, pts @ q.T), project(K, pts) @ a.T + m[:, 2], atol=1e-8)


GEOMETRIC = [
    RandomScale(scale_range=(0.8, 1.25)),
    RandomRotation(rotation_range=(-180.0, 180.0)),
    RandomTranslation(translation_range=(-8.0, 8.0)),
    CropResize(out_size=(96, 96), mode="hands", margin=1.3),
    CropResize(out_size=(200, 128), mode="image"),
    RandomAffineCrop(out_size=(128, 128), mode="image"),
    RandomAffineCrop(out_size=(100, 90), mode="hands", margin=2.5, scale_range=(0.9, 1.1)),
]


@pytest.mark.parametrize("transform", GEOMETRIC, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geometric_transforms_keep_every_label_consistent(transform, seed):
    sample = make_sample()
    before = {k: v.copy() for k, v in sample.items() if isinstance(v, np.ndarray)}
    out = transform(sample, np.random.default_rng(seed))
    check_labels(out)
    assert len(out["handedness"]) == 2
    for k, v in before.items():  # the input is untouched
        assert np.array_equal(sample[k], v)


def test_rotation_rotates_camera_about_optical_axis():
    sample = make_sample()
    c = ((160 - 1) / 2, (120 - 1) / 2)
    a = math.radians(90.0)
    m = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])
    m[:, 2] = np.asarray(c) - m[:, :2] @ c
    out = warp_sample(sample, m, drop_outside=False)
    q = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(out["joints_3d"], sample["joints_3d"] @ q.T, atol=1e-7)
    np.testing.assert_allclose(out["K"][:2, :2], sample["K"][:2, :2], atol=1e-4)
    check_labels(out)


def test_rotation_with_rest_root_fn_and_without_3d():
    sample = make_sample()
    sample["has_3d"][:] = False  # the wrist-based fallback for J0 is no longer available
    rt = RandomRotation(rotation_range=(40.0, 40.0))
    out = rt(sample, 0)
    assert not out["has_params"].any()
    validate_sample(out)

    class ToyModel:
        def __init__(self, h):
            self.v_template = np.tile(rest_root(h), (2, 1))
            self.shapedirs = np.zeros((2, 3, 10))

        def dense_regressor(self):
            return np.array([[0.5, 0.5]] + [[0.0, 0.0]] * 15)

    root_fn = RestRootJoints({RIGHT: ToyModel(RIGHT), LEFT: ToyModel(LEFT)}, model_id="toy")
    np.testing.assert_allclose(root_fn(np.zeros((2, 10)), np.array([RIGHT, LEFT]), "toy"),
                               [rest_root(RIGHT), rest_root(LEFT)])
    out = RandomRotation(rotation_range=(40.0, 40.0), rest_root_fn=root_fn)(sample, 0)
    assert out["has_params"].all()
    out["has_3d"][:] = True  # joints_3d were still rotated: check everything
    check_labels(out)
    with pytest.raises(ValueError, match="toy"):
        root_fn(np.zeros((1, 10)), np.array([RIGHT]), "mano")


def test_out_of_image_flags_and_dropped_hands():
    sample = make_sample()
    # Partly outside: hand 0 spans u ~ 6..51; shift left by 30 px.
    out = warp_sample(sample, [[1.0, 0.0, -30.0], [0.0, 1.0, 0.0]])
    check_labels(out)
    np.testing.assert_allclose(out["keypoints_2d"][0], sample["keypoints_2d"][0] - [30.0, 0.0], atol=1e-4)
    outside = out["keypoints_2d"][0, :, 0] < -0.5
    assert outside.any() and not outside.all()
    assert np.all(out["joint_visible"][0][outside] == 0) and np.all(out["joint_valid"][0] == 1)
    strict = warp_sample(sample, [[1.0, 0.0, -30.0], [0.0, 1.0, 0.0]], invalidate_outside=True)
    assert np.all(strict["joint_valid"][0][outside] == 0) and np.all(strict["keypoints_2d"][0][outside] == 0)
    check_labels(strict)
    # Fully outside: hand 0 is dropped from every per-hand array, the mask ids are renumbered.
    gone = warp_sample(sample, [[1.0, 0.0, -90.0], [0.0, 1.0, 0.0]])
    assert len(gone["handedness"]) == 1 and gone["handedness"][0] == LEFT
    assert gone["vertices_3d"].shape == (1, 30, 3)
    np.testing.assert_allclose(gone["joints_3d"][0], sample["joints_3d"][1])
    assert set(np.unique(gone["mask"])) == {-1, 0}
    check_labels(gone)


def test_select_hands_reorders_mask_and_clears_part_seg():
    sample = make_sample()
    out = select_hands(sample, np.array([False, True]))
    assert np.all(out["mask"][sample["mask"] == 1] == 0)
    assert np.all(out["mask"][sample["mask"] == 0] == -1)
    assert np.all(out["part_seg"][sample["mask"] == 0] == 0)
    swapped = select_hands(sample, np.array([1, 0]))
    assert np.array_equal(swapped["handedness"], [LEFT, RIGHT])
    check_labels(swapped)


def test_flip_swaps_sides_and_keeps_2d_3d_consistent():
    sample = make_sample()
    out = flip_sample(sample)
    check_labels(out)
    assert np.array_equal(out["handedness"], 1 - sample["handedness"])
    right = (sample["part_seg"] >= 1) & (sample["part_seg"] <= 16)
    np.testing.assert_array_equal(out["part_seg"][:, ::-1][right], sample["part_seg"][right] + 16)
    np.testing.assert_allclose(out["K"][0, 2], 160 - 1 - sample["K"][0, 2], atol=1e-4)
    valid = sample["joint_valid"] > 0
    np.testing.assert_allclose(out["keypoints_2d"][..., 0][valid], 159.0 - sample["keypoints_2d"][..., 0][valid],
                               atol=1e-4)
    # flip twice is the identity
    twice = flip_sample(out)
    for key, value in sample.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_allclose(twice[key], value, atol=1e-5, err_msg=key)
    assert np.array_equal(swap_part_seg_sides(swap_part_seg_sides(np.arange(33, dtype=np.uint8))), np.arange(33))


def test_horizontal_flip_probability():
    sample = make_sample()
    assert HorizontalFlip(prob=1.0)(sample, 0)["handedness"].tolist() == [LEFT, RIGHT]
    assert HorizontalFlip(prob=0.0)(sample, 0)["handedness"].tolist() == [RIGHT, LEFT]


def test_color_jitter_changes_only_the_image():
    sample = make_sample()
    out = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)(sample, 3)
    assert not np.array_equal(out["image"], sample["image"])
    assert out["image"].dtype == np.uint8 and out["image"].shape == sample["image"].shape
    for key, value in sample.items():
        if key != "image":
            assert out[key] is value
    # hue shift of 0 and factors of 1 are the identity
    same = ColorJitter(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)(sample, 3)
    assert np.array_equal(same["image"], sample["image"])


def test_motion_blur_kernel_and_labels():
    k = motion_blur_kernel(9, 0.7)
    assert k.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(k, k[::-1, ::-1])
    ys, xs = np.mgrid[:9, :9]
    assert (k * xs).sum() == pytest.approx(4.0) and (k * ys).sum() == pytest.approx(4.0)
    with pytest.raises(ValueError):
        motion_blur_kernel(4, 0.0)
    sample = make_sample()
    sample["image"][:] = 0
    sample["image"][60, 80] = 255
    out = MotionBlur(kernel_range=(7, 7), prob=1.0)(sample, 1)
    w = out["image"][..., 0].astype(np.float64)
    ys, xs = np.mgrid[: w.shape[0], : w.shape[1]]
    assert (w * xs).sum() / w.sum() == pytest.approx(80.0, abs=0.05)
    assert (w * ys).sum() / w.sum() == pytest.approx(60.0, abs=0.05)
    assert np.count_nonzero(w) > 3
    for key, value in sample.items():
        if key != "image":
            assert out[key] is value


def test_compose_is_deterministic_per_seed():
    sample = make_sample()
    aug = build_augmentation(AugmentConfig(out_size=(128, 96), blur_prob=1.0))
    a, b = aug(sample, np.random.default_rng(5)), aug(sample, 5)
    c = aug(sample, 6)
    for key, value in a.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, b[key]), key
    assert not np.array_equal(a["image"], c["image"])
    check_labels(a, edge=4.0)
    check_labels(c, edge=4.0)
    with pytest.raises(ValueError, match="explicit"):
        as_generator(None)


def test_single_hand_preset_and_augmented_dataset():
    cfg = AugmentConfig.single_hand(color_prob=0.0, blur_prob=0.0)
    assert cfg.out_size == (256, 256) and cfg.crop_mode == "hands"
    data = [make_sample(), make_sample(centres=((60.0, 60.0),), handedness=(LEFT,), angles=(0.5,))]
    ds = AugmentedDataset(data, Compose([RandomAffineCrop(out_size=(64, 64), mode="hands", margin=2.0)]), seed=3)
    assert len(ds) == 2
    first = ds[1]
    assert np.array_equal(first["image"], ds[1]["image"])
    ds.set_epoch(1)
    assert not np.array_equal(first["image"], ds[1]["image"])
    check_labels(first)
