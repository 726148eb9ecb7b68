"""Tests for the multi-hand paste augmentation, on small hand-made samples (no renderer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_recon_core.data.paste import (
    HandCrop,
    PasteConfig,
    PasteDataset,
    Slot,
    extract_hand_crops,
    make_canvas,
    paste_hands,
    plan_layout,
)
from hand_recon_core.data.sample import LEFT, RIGHT, empty_hands, validate_sample
from hand_recon_core.geometry.cameras import project_points

SPACING_PX = 6  # pixels between neighbouring toy keypoints (7 x 3 grid)


def block_label(h: int, j: int) -> int:
    """part_seg label of the 5x5 marker block at joint j of a hand of handedness h (side follows h)."""
    return 1 + 16 * h + 1 + (j % 15)


def make_source(hands=((40.0, 35.0, RIGHT), (110.0, 80.0, LEFT)), width: int = 160, height: int = 120,
                square: bool = False, sample_id: str = "toy/0") -> dict:
    """Hands are rectangles (or squares) of mask / part_seg with marker blocks at the keypoints; 3D consistent."""
    K = np.array([[300.0, 0.0, width / 2], [0.0, 300.0, height / 2], [0.0, 0.0, 1.0]])
    n = len(hands)
    arrays = empty_hands(n)
    image = np.full((height, width, 3), 90, np.uint8)
    mask = np.full((height, width), -1, np.int16)
    part = np.zeros((height, width), np.uint8)
    grid = np.array([[((j % 7) - 3) * SPACING_PX, ((j // 7) - 1) * SPACING_PX] for j in range(21)], np.float64)
    for i, (u, v, h) in enumerate(hands):
        kp = grid * ([1.0, 1.0] if h == RIGHT else [-1.0, 1.0]) + [u, v]
        z = 0.5 + 0.1 * i
        joints = np.concatenate([(kp - K[:2, 2]) / 300.0 * z, np.full((21, 1), z)], axis=1)
        arrays["handedness"][i] = h
        arrays["keypoints_2d"][i] = kp
        arrays["joints_3d"][i] = joints
        arrays["joint_valid"][i] = 1.0
        arrays["joint_visible"][i] = 1.0
        arrays["bbox"][i] = [*kp.min(0), *kp.max(0)]
        arrays["has_3d"][i] = True
        arrays["betas"][i] = 0.1 * (i + 1)
        arrays["hand_pose"][i, :3] = [0.1, 0.2, 0.3]
        lo, hi = kp.min(0) - 4, kp.max(0) + 4
        if square:
            c, half = (lo + hi) / 2, (hi - lo).max() / 2
            lo, hi = c - half, c + half
        x0, y0 = np.floor(lo).astype(int)
        x1, y1 = np.ceil(hi).astype(int)
        mask[y0:y1, x0:x1] = i
        part[y0:y1, x0:x1] = 1 + 16 * h
        image[y0:y1, x0:x1] = (200, 60 + 80 * i, 50)
        for j, (ku, kv) in enumerate(np.rint(kp).astype(int)):
            part[kv - 2 : kv + 3, ku - 2 : ku + 3] = block_label(h, j)
    sample = {"image": image, "K": K.astype(np.float32), **arrays, "mask": mask, "part_seg": part,
              "dataset": "toy", "sample_id": sample_id, "hand_model_id": "toy"}
    validate_sample(sample)
    return sample


def check_pasted(out: dict, config: PasteConfig) -> None:
    """Valid sample; visible keypoints lie on their own mask with the right part label; 3D consistent where kept."""
    validate_sample(out)
    n = len(out["handedness"])
    assert n <= config.max_hands
    assert out["image"].shape == (config.canvas_size, config.canvas_size, 3)
    for i in range(n):
        vis = np.flatnonzero(out["joint_visible"][i] > 0)
        for j in vis:
            u, v = np.rint(out["keypoints_2d"][i, j]).astype(int)
            assert out["mask"][v, u] == i, (i, j)
            assert out["part_seg"][v, u] == block_label(int(out["handedness"][i]), j), (i, j)
        if out["has_3d"][i]:
            uv = project_points(torch.as_tensor(out["joints_3d"][i], dtype=torch.float64),
                                torch.as_tensor(out["K"], dtype=torch.float64)).numpy()
            np.testing.assert_allclose(uv, out["keypoints_2d"][i], atol=1e-3)
        else:
            assert np.all(out["joints_3d"][i] == 0) and not out["has_params"][i]


@pytest.mark.parametrize("seed", range(6))
def test_plan_layout_greedy_rows_from_lower_right(seed):
    config = PasteConfig()
    slots = plan_layout(seed, config, max_slots=10)
    assert 1 <= len(slots) <= 10
    first = slots[0]
    assert first.x + first.size == 512 and first.y + first.size == 512
    occupied = np.zeros((512, 512), np.int32)
    for s in slots:
        assert config.min_size <= s.size <= config.max_size
        assert s.x >= 0 and s.y >= 0 and s.x + s.size <= 512 and s.y + s.size <= 512
        occupied[s.y : s.y + s.size, s.x : s.x + s.size] += 1
    assert occupied.max() == 1  # no overlap
    bottoms = [s.y + s.size for s in slots]
    assert bottoms == sorted(bottoms, reverse=True)  # layers go upwards
    for a, b in zip(slots, slots[1:]):
        if a.y + a.size == b.y + b.size:
            assert b.x + b.size == a.x  # right to left within a layer
    if len(slots) < 10:  # stopped for lack of room: the free band above the last layer is too small
        top = min(s.y for s in slots if s.y + s.size == bottoms[-1])
        last_row_left = min(s.x for s in slots if s.y + s.size == bottoms[-1])
        assert top < config.min_size or last_row_left < config.min_size
    assert len(plan_layout(seed, config, max_slots=2)) <= 2


def test_extract_hand_crops_cover_mask_and_keypoints():
    src = make_source()
    crops = extract_hand_crops(src, margin=1.2)
    assert [c.hand for c in crops] == [0, 1]
    for c in crops:
        kp = src["keypoints_2d"][c.hand] + 0.5
        assert np.all(kp >= [c.left, c.top]) and np.all(kp <= [c.left + c.side, c.top + c.side])
    no_mask = {k: v for k, v in src.items() if k != "mask"}
    with pytest.raises(ValueError, match="mask"):
        extract_hand_crops(no_mask)


@pytest.mark.parametrize("seed", range(4))
def test_paste_on_procedural_canvas(seed):
    config = PasteConfig(background="procedural")
    rng = np.random.default_rng(seed)
    canvas = make_canvas(None, rng, config)
    assert len(canvas["handedness"]) == 0
    slots = plan_layout(rng, config, config.max_hands)
    sources = [make_source(sample_id=f"toy/{k}") for k in range(3)]
    crops = [c for s in sources for c in extract_hand_crops(s)]
    out = paste_hands(canvas, crops, slots, rng, config)
    check_pasted(out, config)
    assert len(out["handedness"]) == min(len(slots), len(crops))
    assert not out["has_3d"].any() and out["dataset"] == "paste:toy"
    # every joint of every patch is visible (patches never overlap) and lies inside its slot
    assert np.all(out["joint_visible"] == 1)
    for i, s in enumerate(slots[: len(out["handedness"])]):
        kp = out["keypoints_2d"][i]
        assert np.all(kp >= [s.x - 0.5, s.y - 0.5]) and np.all(kp <= [s.x + s.size - 0.5, s.y + s.size - 0.5])
        box = out["bbox"][i]
        assert box[0] >= s.x - 0.5 and box[2] <= s.x + s.size - 0.5


def test_flipped_patch_swaps_handedness_and_parts():
    config = PasteConfig(background="procedural", flip_prob=1.0)
    src = make_source(hands=((40.0, 35.0, RIGHT),))
    crop = extract_hand_crops(src)[0]
    out = paste_hands(make_canvas(None, 0, config), [crop], [Slot(100, 100, 150)], 0, config)
    assert out["handedness"].tolist() == [LEFT]
    assert set(np.unique(out["part_seg"])) - {0} <= set(range(17, 33))
    check_pasted(out, config)
    # mirrored: the leftmost source keypoint is now the rightmost
    assert np.argmax(out["keypoints_2d"][0, :, 0]) == np.argmin(src["keypoints_2d"][0, :, 0])


def test_occlusion_by_later_layer_and_fully_covered_hand_dropped():
    config = PasteConfig(flip_prob=0.0, crop_margin=1.0)
    background = make_source()
    canvas = make_canvas(background, 0, config)  # 160 x 120 -> 512 x 384, centred (64 px bands)
    assert len(canvas["handedness"]) == 2 and canvas["has_3d"].all()
    check_pasted(canvas, config)
    blocker = make_source(hands=((60.0, 60.0, RIGHT),), square=True, sample_id="blocker")
    crop = extract_hand_crops(blocker, margin=1.0)[0]
    kp0 = canvas["keypoints_2d"][0]
    # Cover the left half of background hand 0.
    x_mid = int(np.median(kp0[:, 0]))
    slot = Slot(x_mid - 120, int(kp0[:, 1].mean()) - 60, 120)
    out = paste_hands(canvas, [crop], [slot], 0, config)
    check_pasted(out, config)
    assert len(out["handedness"]) == 3
    covered = out["mask"][np.rint(kp0[:, 1]).astype(int), np.rint(kp0[:, 0]).astype(int)] == 2
    assert covered.any() and not covered.all()
    np.testing.assert_array_equal(out["joint_visible"][0], (~covered).astype(np.float32))
    assert out["has_3d"][0] and not out["has_3d"][2]
    # Cover all of background hand 0: it is dropped, the patch becomes hand 1.
    ys, xs = np.nonzero(canvas["mask"] == 0)
    side = int(max(xs.max() - xs.min(), ys.max() - ys.min())) + 20
    big = Slot(int(xs.min()) - 10, int(ys.min()) - 10, side)
    out = paste_hands(canvas, [crop], [big], 0, config)
    check_pasted(out, config)
    assert len(out["handedness"]) == 2 and out["handedness"].tolist() == [LEFT, RIGHT]
    assert out["has_3d"].tolist() == [True, False]
    assert not np.any(out["mask"] == 2)


def test_paste_dataset_is_deterministic_and_valid():
    sources = [make_source(sample_id=f"toy/{k}") for k in range(3)]
    sources.append(make_source(hands=((80.0, 60.0, RIGHT),), square=True, sample_id="toy/3"))
    config = PasteConfig()
    ds = PasteDataset(sources, config, seed=11, length=6)
    assert len(ds) == 6
    counts = []
    for index in range(len(ds)):
        a, b = ds[index], ds[index]
        for key, value in a.items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(value, b[key]), key
        check_pasted(a, config)
        counts.append(len(a["handedness"]))
        assert a["has_3d"].sum() <= 2  # only the background's hands keep 3D
    assert max(counts) <= 10 and min(counts) >= 3
    assert not np.array_equal(ds[0]["image"], ds[1]["image"])
    ds.set_epoch(1)
    assert not np.array_equal(ds[0]["image"], PasteDataset(sources, config, seed=11, length=6)[0]["image"])
    with pytest.raises(IndexError):
        ds[6]


def test_paste_dataset_procedural_and_transform():
    sources = [make_source(sample_id=f"toy/{k}") for k in range(2)]
    seen = []

    def transform(sample, rng):
        seen.append(isinstance(rng, np.random.Generator))
        return sample

    ds = PasteDataset(sources, PasteConfig(background="procedural", max_hands=3), seed=0, transform=transform)
    out = ds[0]
    check_pasted(out, PasteConfig(max_hands=3))
    assert 1 <= len(out["handedness"]) <= 3 and seen == [True]


def test_paste_requires_masks():
    src = make_source()
    del src["mask"]
    with pytest.raises(ValueError, match="mask"):
        make_canvas(src, 0, PasteConfig())
    crop = HandCrop(src, 0, 0.0, 0.0, 10.0)
    with pytest.raises(ValueError, match="mask"):
        paste_hands(make_canvas(None, 0, PasteConfig()), [crop], [Slot(0, 0, 96)], 0, PasteConfig())


def test_paste_from_engine_samples():
    """The augmentation on real engine crops (masks, part maps, 3D labels from the hand model)."""
    from hand_recon_core.data.synthetic import SyntheticDataset

    source = SyntheticDataset("single", count=12, size=96, seed=2)
    config = PasteConfig()
    ds = PasteDataset(source, config, seed=5, length=3)
    on_mask = []
    for index in range(len(ds)):
        out = ds[index]
        validate_sample(out)
        n = len(out["handedness"])
        assert 1 <= n <= config.max_hands
        for i in range(n):
            vis = np.flatnonzero(out["joint_visible"][i] > 0)
            uv = np.rint(out["keypoints_2d"][i, vis]).astype(int)
            on_mask.extend(out["mask"][uv[:, 1], uv[:, 0]] == i)
            classes = out["part_seg"][out["mask"] == i]
            lo = 1 if out["handedness"][i] == RIGHT else 17  # the pasted hand keeps its side's part classes
            assert np.all((classes >= lo) & (classes < lo + 16))
            if out["has_3d"][i]:
                uv3 = project_points(torch.as_tensor(out["joints_3d"][i], dtype=torch.float64),
                                     torch.as_tensor(out["K"], dtype=torch.float64)).numpy()
                np.testing.assert_allclose(uv3, out["keypoints_2d"][i], atol=1e-3)
    assert np.mean(on_mask) > 0.95  # visible keypoints sit on their own hand
