"""Tests for the common sample format: validation, helpers and batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hand_recon_core.data.sample import (
    HANDEDNESS_NAMES,
    LEFT,
    MASK_BACKGROUND,
    PART_SEG_NUM_CLASSES,
    PER_HAND_KEYS,
    RIGHT,
    collate_samples,
    empty_hands,
    handedness_from_name,
    validate_sample,
)


def make_sample(num_hands: int = 2, height: int = 6, width: int = 8, **extra) -> dict:
    hands = empty_hands(num_hands)
    hands["handedness"][:] = [RIGHT, LEFT][:num_hands]
    hands["joint_valid"][:] = 1.0
    hands["joint_visible"][:, :10] = 1.0
    hands["bbox"][:] = [1.0, 2.0, 5.0, 6.0]
    sample = {
        "image": np.zeros((height, width, 3), dtype=np.uint8),
        "K": np.eye(3, dtype=np.float32),
        **hands,
        "dataset": "toy",
        "sample_id": "a/b.png",
        "hand_model_id": "mano",
    }
    sample.update(extra)
    return sample


def test_constants():
    assert (RIGHT, LEFT) == (0, 1)
    assert HANDEDNESS_NAMES[RIGHT] == "right" and HANDEDNESS_NAMES[LEFT] == "left"
    assert PART_SEG_NUM_CLASSES == 33
    assert MASK_BACKGROUND == -1


def test_handedness_from_name():
    assert handedness_from_name("Right") == RIGHT
    assert handedness_from_name(" left ") == LEFT
    with pytest.raises(ValueError, match="unknown handedness"):
        handedness_from_name("both")


def test_empty_hands_shapes_and_dtypes():
    hands = empty_hands(3)
    assert hands["joints_3d"].shape == (3, 21, 3) and hands["joints_3d"].dtype == np.float32
    assert hands["keypoints_2d"].shape == (3, 21, 2)
    assert hands["hand_pose"].shape == (3, 48) and hands["betas"].shape == (3, 10)
    assert hands["handedness"].dtype == np.int64 and hands["has_params"].dtype == np.bool_
    assert set(hands) == set(PER_HAND_KEYS)
    assert all(v.shape[0] == 0 for v in empty_hands(0).values())
    with pytest.raises(ValueError):
        empty_hands(-1)


def test_valid_samples_pass():
    validate_sample(make_sample(0))
    mask = np.full((6, 8), -1, dtype=np.int16)
    mask[2, 3] = 1
    validate_sample(
        make_sample(
            2,
            mask=mask,
            part_seg=np.full((6, 8), 32, dtype=np.uint8),
            depth=np.ones((6, 8), dtype=np.float32),
            vertices_3d=np.zeros((2, 778, 3), dtype=np.float32),
        )
    )


def _with(key, value, **kw):
    sample = make_sample(**kw)
    sample[key] = value
    return sample


@pytest.mark.parametrize(
    ("sample", "key", "message"),
    [
        ({k: v for k, v in make_sample().items() if k != "betas"}, "betas", "missing"),
        (_with("image", np.zeros((6, 8, 3), dtype=np.float32)), "image", "dtype uint8"),
        (_with("image", np.zeros((6, 8), dtype=np.uint8)), "image", "shape"),
        (_with("K", np.eye(3)), "K", "dtype float32"),
        (_with("K", [[1, 0, 0], [0, 1, 0], [0, 0, 1]]), "K", "numpy array"),
        (_with("joints_3d", np.zeros((3, 21, 3), dtype=np.float32)), "joints_3d", r"\(2, 21, 3\)"),
        (_with("keypoints_2d", np.zeros((2, 20, 2), dtype=np.float32)), "keypoints_2d", "shape"),
        (_with("has_3d", np.zeros(2, dtype=np.float32)), "has_3d", "dtype bool"),
        (_with("joints_3d", np.full((2, 21, 3), np.nan, dtype=np.float32)), "joints_3d", "NaN"),
        (_with("joint_valid", np.full((2, 21), 0.5, dtype=np.float32)), "joint_valid", "0 or 1"),
        (_with("joint_valid", np.zeros((2, 21), dtype=np.float32)), "joint_visible", "not valid"),
        (_with("handedness", np.array([0, 2])), "handedness", "RIGHT"),
        (_with("bbox", np.array([[5, 2, 1, 6], [1, 2, 5, 6]], dtype=np.float32)), "bbox", "xyxy"),
        (_with("mask", np.full((6, 8), 2, dtype=np.int16)), "mask", "hand index"),
        (_with("mask", np.full((6, 7), -1, dtype=np.int16)), "mask", "shape"),
        (_with("part_seg", np.full((6, 8), 33, dtype=np.uint8)), "part_seg", "< 33"),
        (_with("depth", np.full((6, 8), -1.0, dtype=np.float32)), "depth", ">= 0"),
        (_with("vertices_3d", np.zeros((1, 778, 3), dtype=np.float32)), "vertices_3d", "shape"),
        (_with("sample_id", ""), "sample_id", "non-empty str"),
        (_with("extra", 1), "extra", "unknown key"),
    ],
)
def test_invalid_samples_name_the_key(sample, key, message):
    with pytest.raises(ValueError, match=rf"sample\['{key}'\].*{message}"):
        validate_sample(sample)


def test_collate_stacks_images_and_keeps_hands_as_lists():
    depth = np.ones((6, 8), dtype=np.float32)
    samples = [make_sample(2, depth=depth), make_sample(0), make_sample(1, depth=2 * depth)]
    samples[0]["joints_3d"][1, 20] = [1.0, 2.0, 3.0]
    batch = collate_samples(samples)
    assert batch["image"].shape == (3, 6, 8, 3) and batch["image"].dtype == torch.uint8
    assert batch["K"].shape == (3, 3, 3) and batch["K"].dtype == torch.float32
    assert batch["num_hands"].tolist() == [2, 0, 1]
    assert [t.shape[0] for t in batch["joints_3d"]] == [2, 0, 1]
    assert batch["joints_3d"][0][1, 20].tolist() == [1.0, 2.0, 3.0]
    assert batch["handedness"][0].tolist() == [RIGHT, LEFT]
    assert batch["depth"][1] is None and float(batch["depth"][2][0, 0]) == 2.0
    assert "mask" not in batch
    assert batch["sample_id"] == ["a/b.png"] * 3


def test_collate_stacks_dense_maps_present_everywhere_and_works_in_a_dataloader():
    samples = [make_sample(1, mask=np.full((6, 8), -1, dtype=np.int16)) for _ in range(4)]
    batches = list(DataLoader(samples, batch_size=2, collate_fn=collate_samples))
    assert len(batches) == 2
    assert batches[0]["mask"].shape == (2, 6, 8) and batches[0]["mask"].dtype == torch.int16


def test_collate_rejects_mixed_image_sizes_and_empty_batches():
    with pytest.raises(ValueError, match="image"):
        collate_samples([make_sample(1), make_sample(1, height=7)])
    with pytest.raises(ValueError):
        collate_samples([])
