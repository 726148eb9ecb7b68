"""The project's one sample format: what every dataset (real or synthetic) returns from ``__getitem__``.

A sample is a plain ``dict`` of numpy arrays and strings. Per-hand arrays are stacked over the ``N`` hands of the
image (``N`` may be 0); ``collate_samples`` turns a list of samples into a batch of torch tensors.

Coordinate frames: *camera* is the OpenCV/ROS optical frame of the image as returned (x right, y down, z forward,
metres); *pixels* are the image's pixel coordinates (x right, y down; the centre of the top-left pixel is
(0, 0)), consistent with ``K``: ``uv = (K @ X)[:2] / (K @ X)[2]``.

=================  ==============  =======  ============  ========================================================
key                shape           dtype    units         meaning / frame
=================  ==============  =======  ============  ========================================================
``image``          (H, W, 3)       uint8    0-255         RGB image
``K``              (3, 3)          float32  pixels        intrinsics of ``image`` as returned (after any crop)
``handedness``     (N,)            int64    -             ``RIGHT`` (0) or ``LEFT`` (1)
``joints_3d``      (N, 21, 3)      float32  metres        camera frame, ``JOINT_ORDER`` (``mano21``); 0 if invalid
``keypoints_2d``   (N, 21, 2)      float32  pixels        image pixels, ``mano21``; 0 if invalid
``joint_valid``    (N, 21)         float32  0/1           the joint is annotated (2D and, if ``has_3d``, 3D)
``joint_visible``  (N, 21)         float32  0/1           not occluded; equals ``joint_valid`` when unknown
``bbox``           (N, 4)          float32  pixels        hand box ``x1, y1, x2, y2``
``has_3d``         (N,)            bool     -             ``joints_3d`` holds metric camera-frame joints
``hand_pose``      (N, 48)         float32  radians       axis-angle: global orient (3) + 15 x 3 (see below)
``betas``          (N, 10)         float32  -             shape coefficients of ``hand_model_id``
``transl``         (N, 3)          float32  metres        translation, camera frame (see below)
``has_params``     (N,)            bool     -             ``hand_pose``, ``betas`` and ``transl`` are valid
``vertices_3d``    (N, V, 3)       float32  metres        optional; camera frame, for every hand of the sample
``mask``           (H, W)          int16    -             optional; hand instance (index into N), -1 otherwise
``part_seg``       (H, W)          uint8    -             optional; 0 background, 1-16 right, 17-32 left parts
``depth``          (H, W)          float32  metres        optional; z in the camera frame, 0 = no measurement
``dense``          (H, W, 3)       float32  [0, 1]        optional; DIR dense correspondence code, 0 = no hand
``dataset``        -               str      -             dataset name, e.g. ``"freihand"``
``sample_id``      -               str      -             unique id within the dataset (usually the image path)
``hand_model_id``  -               str      -             hand model the parameters refer to, e.g. ``"mano"``
=================  ==============  =======  ============  ========================================================

Hand-model parameters (``hand_pose``, ``betas``, ``transl``) follow one convention for every dataset:

* ``hand_pose[:, :3]`` is the global orientation mapping the hand model's canonical frame to the camera frame;
  ``hand_pose[:, 3:]`` holds the 15 finger joints in the model's native joint order (for MANO: index, middle,
  pinky, ring, thumb; 3 joints each) as **absolute** axis-angle rotations: zero is the flat hand (MANO's
  ``flat_hand_mean=True``; a dataset storing the pose relative to MANO's ``hands_mean`` or as PCA
  coefficients is converted by its loader).
* ``transl`` follows smplx / manopth: the posed model is rotated about its own rest root joint ``J0(betas)``
  and then translated, ``v = R_global (v_articulated - J0) + J0 + transl``; so the root (wrist) joint lands at
  ``J0(betas) + transl`` in the camera frame.
* ``vertices_3d``, when present, are in ``hand_model_id``'s vertex order (``V = 778`` for MANO).

``mask`` / ``part_seg``: ``part_seg`` uses the 33-class convention of ACR (1 background + 16 parts per hand,
parts numbered after the hand model's 16 kinematic joints): a right-hand part ``p`` (0-15) is ``1 + p``, the
same part of a left hand ``1 + PART_SEG_PARTS_PER_HAND + p``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "RIGHT",
    "LEFT",
    "HANDEDNESS_NAMES",
    "JOINT_ORDER",
    "NUM_JOINTS",
    "NUM_POSE_PARAMS",
    "NUM_BETAS",
    "MASK_BACKGROUND",
    "PART_SEG_PARTS_PER_HAND",
    "PART_SEG_NUM_CLASSES",
    "REQUIRED_KEYS",
    "PER_HAND_KEYS",
    "OPTIONAL_KEYS",
    "META_KEYS",
    "handedness_from_name",
    "empty_hands",
    "validate_sample",
    "collate_samples",
]

# Handedness codes (the one place they are defined).
RIGHT = 0
LEFT = 1
HANDEDNESS_NAMES = ("right", "left")  # indexed by the code

JOINT_ORDER = "mano21"  # order of joints_3d / keypoints_2d / joint_valid / joint_visible
NUM_JOINTS = 21
NUM_POSE_PARAMS = 48  # global orient 3 + 15 x 3 axis-angle
NUM_BETAS = 10

MASK_BACKGROUND = -1
PART_SEG_PARTS_PER_HAND = 16
PART_SEG_NUM_CLASSES = 1 + 2 * PART_SEG_PARTS_PER_HAND  # 33

# key -> (trailing shape after the leading N axis, dtype). The leading axis is the number of hands N.
PER_HAND_KEYS: dict[str, tuple[tuple[int, ...], np.dtype]] = {
    "handedness": ((), np.dtype(np.int64)),
    "joints_3d": ((NUM_JOINTS, 3), np.dtype(np.float32)),
    "keypoints_2d": ((NUM_JOINTS, 2), np.dtype(np.float32)),
    "joint_valid": ((NUM_JOINTS,), np.dtype(np.float32)),
    "joint_visible": ((NUM_JOINTS,), np.dtype(np.float32)),
    "bbox": ((4,), np.dtype(np.float32)),
    "has_3d": ((), np.dtype(np.bool_)),
    "hand_pose": ((NUM_POSE_PARAMS,), np.dtype(np.float32)),
    "betas": ((NUM_BETAS,), np.dtype(np.float32)),
    "transl": ((3,), np.dtype(np.float32)),
    "has_params": ((), np.dtype(np.bool_)),
}
META_KEYS = ("dataset", "sample_id", "hand_model_id")
REQUIRED_KEYS = ("image", "K", *PER_HAND_KEYS, *META_KEYS)
# Optional keys -> dtype; shapes are checked in validate_sample.
OPTIONAL_KEYS: dict[str, np.dtype] = {
    "vertices_3d": np.dtype(np.float32),
    "mask": np.dtype(np.int16),
    "part_seg": np.dtype(np.uint8),
    "depth": np.dtype(np.float32),
    "dense": np.dtype(np.float32),
}
_DENSE_KEYS = ("mask", "part_seg", "depth", "dense")
_FLAG_KEYS = ("joint_valid", "joint_visible")


def handedness_from_name(name: str) -> int:
    """Map ``"right"`` / ``"left"`` (any case) to ``RIGHT`` / ``LEFT``.

    Raises:
        ValueError: for any other string.
    """
    key = name.strip().lower()
    if key not in HANDEDNESS_NAMES:
        raise ValueError(f"unknown handedness {name!r}: expected one of {HANDEDNESS_NAMES}")
    return HANDEDNESS_NAMES.index(key)


def empty_hands(num_hands: int) -> dict[str, np.ndarray]:
    """Per-hand arrays for ``num_hands`` hands, zero-filled, with the dtypes of the sample format.

    Loaders fill the entries they have; everything left at zero reads as "not annotated" (flags 0/False).

    Args:
        num_hands: number of hands ``N`` (may be 0).

    Returns:
        dict with every key of ``PER_HAND_KEYS``, each of shape ``(N, *trailing)``.
    """
    if num_hands < 0:
        raise ValueError(f"num_hands must be >= 0, got {num_hands}")
    return {k: np.zeros((num_hands, *shape), dtype=dt) for k, (shape, dt) in PER_HAND_KEYS.items()}


def _fail(key: str, message: str) -> None:
    raise ValueError(f"sample[{key!r}]: {message}")


def _check_array(sample: Mapping[str, Any], key: str, dtype: np.dtype, shape: tuple[int | None, ...]) -> np.ndarray:
    """Check one array's type, dtype and shape (``None`` in ``shape`` matches any size)."""
    value = sample[key]
    if not isinstance(value, np.ndarray):
        _fail(key, f"expected a numpy array, got {type(value).__name__}")
    if value.dtype != dtype:
        _fail(key, f"expected dtype {dtype}, got {value.dtype}")
    if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        expected = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        _fail(key, f"expected shape {expected}, got {value.shape}")
    return value


def validate_sample(sample: Mapping[str, Any]) -> None:
    """Check that ``sample`` follows the format of this module's docstring.

    Checks presence, type, dtype and shape of every key, that all per-hand arrays agree on ``N``, that dense maps
    match the image size, that flags are 0/1, handedness codes, mask / part ids are in range, and that no array
    holds NaN or infinity.

    Args:
        sample: the sample dict.

    Raises:
        ValueError: naming the first offending key.
    """
    if not isinstance(sample, Mapping):
        raise ValueError(f"a sample must be a mapping, got {type(sample).__name__}")
    for key in REQUIRED_KEYS:
        if key not in sample:
            _fail(key, "missing required key")
    unknown = set(sample) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS)
    if unknown:
        _fail(sorted(unknown)[0], f"unknown key (known keys: {', '.join(REQUIRED_KEYS + tuple(OPTIONAL_KEYS))})")

    image = _check_array(sample, "image", np.dtype(np.uint8), (None, None, 3))
    height, width = image.shape[:2]
    _check_array(sample, "K", np.dtype(np.float32), (3, 3))

    num_hands = None
    for key, (shape, dtype) in PER_HAND_KEYS.items():
        value = _check_array(sample, key, dtype, (num_hands, *shape))
        num_hands = value.shape[0]
    assert num_hands is not None

    for key in (k for k in sample if k in PER_HAND_KEYS or k in ("image", "K", "vertices_3d", "depth")):
        value = sample[key]
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            _fail(key, "holds NaN or infinite values (store 0 and clear the valid flag instead)")
    for key in _FLAG_KEYS:
        if not np.all((sample[key] == 0) | (sample[key] == 1)):
            _fail(key, "flags must be 0 or 1")
    if np.any(sample["joint_visible"] > sample["joint_valid"]):
        _fail("joint_visible", "a joint is visible but not valid")
    if not np.all((sample["handedness"] == RIGHT) | (sample["handedness"] == LEFT)):
        _fail("handedness", f"codes must be RIGHT ({RIGHT}) or LEFT ({LEFT}), got {sample['handedness']}")
    if np.any(sample["bbox"][:, 2:] < sample["bbox"][:, :2]):
        _fail("bbox", "expected x1 <= x2 and y1 <= y2 (xyxy)")

    if "vertices_3d" in sample:
        _check_array(sample, "vertices_3d", OPTIONAL_KEYS["vertices_3d"], (num_hands, None, 3))
    if "mask" in sample:
        mask = _check_array(sample, "mask", OPTIONAL_KEYS["mask"], (height, width))
        if mask.size and (mask.min() < MASK_BACKGROUND or mask.max() >= num_hands):
            _fail("mask", f"ids must be {MASK_BACKGROUND} (background) or a hand index in [0, {num_hands})")
    if "part_seg" in sample:
        part_seg = _check_array(sample, "part_seg", OPTIONAL_KEYS["part_seg"], (height, width))
        if part_seg.size and part_seg.max() >= PART_SEG_NUM_CLASSES:
            _fail("part_seg", f"classes must be < {PART_SEG_NUM_CLASSES}, got {part_seg.max()}")
    if "depth" in sample:
        depth = _check_array(sample, "depth", OPTIONAL_KEYS["depth"], (height, width))
        if depth.size and depth.min() < 0:
            _fail("depth", "depth must be >= 0 metres (0 = no measurement)")
    if "dense" in sample:
        dense = _check_array(sample, "dense", OPTIONAL_KEYS["dense"], (height, width, 3))
        if dense.size and (not np.all(np.isfinite(dense)) or dense.min() < 0 or dense.max() > 1):
            _fail("dense", "dense correspondence codes must be finite and in [0, 1]")

    for key in META_KEYS:
        if not isinstance(sample[key], str) or not sample[key]:
            _fail(key, f"expected a non-empty str, got {sample[key]!r}")


def collate_samples(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Batch samples for a ``torch.utils.data.DataLoader`` (pass as ``collate_fn``).

    Args:
        samples: ``B`` samples in this module's format; all images must have the same size.

    Returns:
        dict with
        - ``image``: uint8 tensor ``(B, H, W, 3)`` (same layout as the samples), ``K``: float32 ``(B, 3, 3)``;
        - every per-hand key (and ``vertices_3d``): a list of ``B`` tensors with their own ``N`` (``None`` for a
          sample without ``vertices_3d``);
        - ``mask`` / ``part_seg`` / ``depth``: a stacked ``(B, H, W)`` tensor when every sample has the map, a
          list of tensors or ``None`` when only some have it, absent when none has it;
        - ``dataset``, ``sample_id``, ``hand_model_id``: lists of ``B`` str;
        - ``num_hands``: int64 tensor ``(B,)``.

    Raises:
        ValueError: when ``samples`` is empty or the images differ in size.
    """
    if len(samples) == 0:
        raise ValueError("collate_samples needs at least one sample")
    sizes = {s["image"].shape for s in samples}
    if len(sizes) != 1:
        raise ValueError(f"sample['image']: all images of a batch must have the same shape, got {sorted(sizes)}")

    batch: dict[str, Any] = {
        "image": torch.from_numpy(np.stack([s["image"] for s in samples])),
        "K": torch.from_numpy(np.stack([s["K"] for s in samples])),
        "num_hands": torch.tensor([len(s["handedness"]) for s in samples], dtype=torch.int64),
    }
    for key in PER_HAND_KEYS:
        batch[key] = [torch.from_numpy(np.ascontiguousarray(s[key])) for s in samples]
    if any("vertices_3d" in s for s in samples):
        batch["vertices_3d"] = [torch.from_numpy(s["vertices_3d"]) if "vertices_3d" in s else None for s in samples]
    for key in _DENSE_KEYS:
        present = [key in s for s in samples]
        if all(present):
            batch[key] = torch.from_numpy(np.stack([s[key] for s in samples]))
        elif any(present):
            batch[key] = [torch.from_numpy(s[key]) if key in s else None for s in samples]
    for key in META_KEYS:
        batch[key] = [s[key] for s in samples]
    return batch
