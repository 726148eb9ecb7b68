"""Multi-hand paste augmentation of the single-stage multi-hand paper, for any dataset with instance masks.

The procedure follows the paper (``shared/papers/single_stage_weakly_supervised_multi_hand.txt``, section III-D,
"Weakly-supervised Data Augmentation"):

* "we crop up to 10 hand samples and resize them to paste on an empty image I of 512 x 512": at most
  ``PasteConfig.max_hands`` (10) hands per image, canvas ``canvas_size`` (512).
* "we firstly paste one whole image containing single hand and background, which is resized to I and padded
  with background pixels": :func:`make_canvas` letterboxes a whole source sample (aspect kept, centred) and pads
  it with the mean colour of its non-hand pixels (our reading of "background pixels"; reflecting or
  replicating the border would duplicate unlabelled hand pixels). This is a similarity of the image, so its
  hands keep exact 3D labels with the updated ``K`` (see :mod:`hand_recon_core.data.augment`). A procedural
  background (smooth random colours, no hands) is the alternative.
* "we crop other hand samples according to its bounding box and randomly re-scale them into the size between
  96 pixels to 320 pixels ... we crop each hand in the original image into a square. The irrelevant background
  pixels are removed by hand masks": :func:`extract_hand_crops` takes the square (side ``crop_margin`` times the
  longer side) around the hand's mask pixels and valid keypoints, so every keypoint lies in its patch; only the
  pixels of that hand's ``mask`` instance are pasted (other hands of the source are removed too).
* "we use the greedy strategy to set them layer by layer from the lower right corner to the upper left corner
  in image. The size of next sample is randomly generated according to the remaining available space until the
  rest available space is less than the predefined minimum sample size": :func:`plan_layout` fills rows
  ("layers") from the bottom right, right to left; each square side is uniform in ``[min_size, min(max_size,
  free width, free height)]``; a row is closed when its free width is below ``min_size``, the next row starts
  above the tallest square of the row, and packing stops when the free height is below ``min_size`` (or the
  hand budget is spent). Squares never overlap each other; they cover the background image and its hands.
* "we randomly flip the original hand patch horizontally to construct left hand image": each patch is mirrored
  with probability ``flip_prob`` (handedness and part labels swapped); so is the background image, with
  :func:`~hand_recon_core.data.augment.flip_sample` (3D stays exact).
* "we retain the index of each hand sample, 2D keypoints, center point, bounding box and mask, which are
  generated from the original data labels by affine transformation": 2D labels are mapped exactly
  (``u' = A u + b``); boxes are the mapped source boxes clipped to the patch.

Labels of the result (a valid sample of :mod:`hand_recon_core.data.sample`):

* Hand order = paint order: the background's hands first, then the patches. ``mask`` holds the top-most hand of
  each pixel; ``part_seg`` is kept when every source has it; ``depth`` (when the background has it) is 0 under
  pasted pixels.
* Occlusion: a joint is marked not visible when the pixel under its keypoint belongs to a hand painted later
  (a higher ``mask`` id). A background hand left without any mask pixel is dropped.
* 3D of pasted patches: a patch is a scaled / shifted (possibly mirrored) 2D copy from another camera; no rigid
  placement of the 3D hand reproduces an arbitrary 2D scale and shift under perspective, so patches get
  ``has_3d = False`` (``joints_3d`` and ``vertices_3d`` rows zero) and ``has_params = False``, ``transl = 0``.
  ``hand_pose`` (mirrored with the patch) and ``betas`` keep the source values, so the finger articulation and
  shape remain available to code that wants them, but the global orientation is the source camera's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch

from hand_recon_core.data.augment import (
    RngLike,
    as_generator,
    flip_sample,
    letterbox_matrix,
    select_hands,
    swap_part_seg_sides,
    transform_boxes,
    warp_dense,
    warp_sample,
)
from hand_recon_core.data.sample import MASK_BACKGROUND, PER_HAND_KEYS, empty_hands
from hand_recon_core.hand_model.mirror import mirror_axis_angle

__all__ = [
    "PasteConfig",
    "HandCrop",
    "Slot",
    "extract_hand_crops",
    "plan_layout",
    "procedural_background",
    "make_canvas",
    "paste_hands",
    "PasteDataset",
]


@dataclass
class PasteConfig:
    """Parameters of the multi-hand paste (defaults from the single-stage paper, see the module docstring).

    Attributes:
        canvas_size: side of the square output image, pixels (paper: 512).
        max_hands: most hands per image, background hands included (paper: "up to 10").
        min_size, max_size: range of the pasted squares' side, pixels (paper: 96 to 320).
        crop_margin: square side / longer side of the hand region (mask pixels and valid keypoints).
        flip_prob: probability of mirroring each patch and the background (left hands from right-hand data).
        background: ``"sample"`` (a whole source image first, as in the paper) or ``"procedural"``.
        min_mask_pixels: hands with fewer mask pixels in their source are not used as patches.
        max_source_tries: draws of a source sample before giving up on filling one slot / the background.
        procedural_focal: focal length (pixels) of the canvas ``K`` without a background sample (paper: "focal
            length fixed as 512 in multi-hand setting", principal point at ``W/2, H/2``).
    """

    canvas_size: int = 512
    max_hands: int = 10
    min_size: int = 96
    max_size: int = 320
    crop_margin: float = 1.1
    flip_prob: float = 0.5
    background: str = "sample"
    min_mask_pixels: int = 16
    max_source_tries: int = 20
    procedural_focal: float = 512.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_size <= self.max_size:
            raise ValueError(f"need 1 <= min_size <= max_size, got {self.min_size}, {self.max_size}")
        if self.background not in ("sample", "procedural"):
            raise ValueError(f"background must be 'sample' or 'procedural', got {self.background!r}")
        if self.max_hands < 0 or self.canvas_size < 1:
            raise ValueError("max_hands must be >= 0 and canvas_size >= 1")


@dataclass(frozen=True)
class HandCrop:
    """One hand of a source sample and its square crop.

    Attributes:
        sample: the source sample (must have ``mask``).
        hand: index of the hand in the source's per-hand arrays and ``mask``.
        left, top, side: the square in source *edge* coordinates (pixel ``u`` spans ``[u, u + 1)``, i.e. edge =
            pixel-centre coordinate + 0.5), pixels.
    """

    sample: Mapping[str, Any]
    hand: int
    left: float
    top: float
    side: float


class Slot(NamedTuple):
    """A square of the canvas: top-left pixel ``(x, y)`` and side ``size``, pixels."""

    x: int
    y: int
    size: int


def extract_hand_crops(sample: Mapping[str, Any], margin: float = 1.1, min_mask_pixels: int = 16) -> list[HandCrop]:
    """Square crops of every usable hand of ``sample``.

    A hand is usable when it has at least ``min_mask_pixels`` pixels in ``mask``. The square is centred on the
    box around its mask pixels and valid keypoints, with side ``margin`` times the box's longer side.

    Args:
        sample: a sample with ``mask``.
        margin: square side / box side.
        min_mask_pixels: minimum instance size, pixels.

    Returns:
        One :class:`HandCrop` per usable hand (possibly none).

    Raises:
        ValueError: ``sample`` has no ``mask``.
    """
    if "mask" not in sample:
        raise ValueError(f"paste needs instance masks; sample {sample.get('sample_id')!r} has no 'mask'")
    mask = sample["mask"]
    crops = []
    for i in range(len(sample["handedness"])):
        ys, xs = np.nonzero(mask == i)
        if len(xs) < max(1, min_mask_pixels):
            continue
        lo = [xs.min(), ys.min()]
        hi = [xs.max() + 1.0, ys.max() + 1.0]
        valid = sample["joint_valid"][i] > 0
        if valid.any():
            kp = sample["keypoints_2d"][i][valid].astype(np.float64) + 0.5  # edge coordinates
            lo = np.minimum(lo, kp.min(axis=0))
            hi = np.maximum(hi, kp.max(axis=0))
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        side = max(float((hi - lo).max()) * margin, 1.0)
        centre = (lo + hi) / 2
        crops.append(HandCrop(sample, i, float(centre[0] - side / 2), float(centre[1] - side / 2), side))
    return crops


def plan_layout(rng: RngLike, config: PasteConfig, max_slots: int) -> list[Slot]:
    """Greedy layer-by-layer placement from the lower right to the upper left corner (see the module docstring).

    Args:
        rng: generator or seed.
        config: sizes.
        max_slots: most squares to place.

    Returns:
        Non-overlapping slots inside the canvas, in placement order.
    """
    gen = as_generator(rng)
    n = config.canvas_size
    slots: list[Slot] = []
    right, bottom, row_height = n, n, 0
    while len(slots) < max_slots:
        if bottom < config.min_size:
            break
        if right < config.min_size:  # close the layer, start the next one above it
            if row_height == 0:
                break
            bottom, right, row_height = bottom - row_height, n, 0
            continue
        largest = min(config.max_size, right, bottom)
        size = int(gen.integers(config.min_size, largest + 1))
        slots.append(Slot(right - size, bottom - size, size))
        right -= size
        row_height = max(row_height, size)
    return slots


def procedural_background(rng: RngLike, size: int) -> np.ndarray:
    """A smooth random colour field with fine noise (no hands).

    Args:
        rng: generator or seed.
        size: side, pixels.

    Returns:
        (size, size, 3) uint8 RGB.
    """
    gen = as_generator(rng)
    cells = int(gen.integers(2, 9))
    coarse = gen.uniform(0, 255, size=(cells, cells, 3)).astype(np.float32)
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    img += gen.normal(0.0, 6.0, size=img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_canvas(background: Mapping[str, Any] | None, rng: RngLike, config: PasteConfig) -> dict[str, Any]:
    """The canvas sample: a whole background sample letterboxed into the canvas, or a procedural image.

    Args:
        background: a sample with ``mask`` (its hands are kept, with exact 3D), or ``None`` for a procedural
            background without hands (``K``: focal ``procedural_focal``, principal point at the canvas centre).
        rng: generator or seed (the flip with ``flip_prob``; the procedural image).
        config: canvas size and flip probability.

    Returns:
        A sample of size ``canvas_size`` with ``mask`` (and ``part_seg`` for the procedural canvas).
    """
    gen = as_generator(rng)
    n = config.canvas_size
    if background is None:
        f = config.procedural_focal
        sample: dict[str, Any] = {
            "image": procedural_background(gen, n),
            "K": np.array([[f, 0.0, n / 2], [0.0, f, n / 2], [0.0, 0.0, 1.0]], dtype=np.float32),
            **empty_hands(0),
            "mask": np.full((n, n), MASK_BACKGROUND, dtype=np.int16),
            "part_seg": np.zeros((n, n), dtype=np.uint8),
            "dataset": "procedural",
            "sample_id": "procedural",
            "hand_model_id": "none",
        }
        return sample
    if "mask" not in background:
        raise ValueError(f"paste needs instance masks; background {background.get('sample_id')!r} has no 'mask'")
    if gen.random() < config.flip_prob:
        background = flip_sample(background)
    height, width = background["image"].shape[:2]
    not_hand = background["mask"] < 0
    fill = background["image"][not_hand].mean(axis=0) if not_hand.any() else np.zeros(3)
    return warp_sample(background, letterbox_matrix((width, height), (n, n)), (n, n),
                       border_value=tuple(int(round(float(v))) for v in fill), drop_outside=False)


def _patch_matrix(crop: HandCrop, size: int, flip: bool) -> np.ndarray:
    """(2, 3) map from source pixels to the pixels of a ``size`` square (top-left pixel at 0, 0)."""
    s = size / crop.side
    if flip:  # edge' = size - (edge - left) * s
        return np.array([[-s, 0.0, size - 0.5 - (0.5 - crop.left) * s],
                         [0.0, s, -0.5 + (0.5 - crop.top) * s]])
    return np.array([[s, 0.0, -0.5 + (0.5 - crop.left) * s], [0.0, s, -0.5 + (0.5 - crop.top) * s]])


def _warp_nearest(array: np.ndarray, matrix: np.ndarray, size: int, border: float) -> np.ndarray:
    return warp_dense(array, matrix, (size, size), nearest=True, border_value=border)


def paste_hands(canvas: Mapping[str, Any], crops: Sequence[HandCrop], slots: Sequence[Slot], rng: RngLike,
                config: PasteConfig) -> dict[str, Any]:
    """Paste hand crops into the slots of a canvas, one crop per slot, in order (see the module docstring).

    Args:
        canvas: from :func:`make_canvas` (any sample with ``mask`` works).
        crops: hand crops; ``min(len(crops), len(slots))`` are pasted.
        slots: canvas squares, e.g. from :func:`plan_layout`; must lie inside the canvas.
        rng: generator or seed (one flip draw per patch).
        config: ``flip_prob``.

    Returns:
        A valid sample: the canvas hands first, then one hand per patch; occluded joints flagged, fully covered
        canvas hands dropped.
    """
    gen = as_generator(rng)
    height, width = canvas["image"].shape[:2]
    if "mask" not in canvas:
        raise ValueError("the canvas needs a 'mask'")
    pairs = list(zip(crops, slots))
    for crop, slot in pairs:
        if "mask" not in crop.sample:
            raise ValueError(f"paste needs instance masks; sample {crop.sample.get('sample_id')!r} has no 'mask'")
        if slot.x < 0 or slot.y < 0 or slot.x + slot.size > width or slot.y + slot.size > height:
            raise ValueError(f"slot {slot} is not inside the {width} x {height} canvas")
    num_base = len(canvas["handedness"])
    image = canvas["image"].copy()
    mask = canvas["mask"].copy()
    keep_part = "part_seg" in canvas and all("part_seg" in c.sample for c, _ in pairs)
    part = canvas["part_seg"].copy() if keep_part else None
    depth = canvas["depth"].copy() if "depth" in canvas else None
    painted = [int((mask == i).sum()) for i in range(num_base)]

    hands = {k: [np.asarray(canvas[k])] for k in PER_HAND_KEYS}
    verts = [canvas["vertices_3d"]] if "vertices_3d" in canvas else None
    for crop, slot in pairs:
        src = crop.sample
        flip = bool(gen.random() < config.flip_prob)
        local = _patch_matrix(crop, slot.size, flip)
        m_src = _warp_nearest(src["mask"], local, slot.size, MASK_BACKGROUND)
        sel = m_src == crop.hand
        img = cv2.warpAffine(src["image"], local, (slot.size, slot.size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        region = (slice(slot.y, slot.y + slot.size), slice(slot.x, slot.x + slot.size))
        new_id = len(painted)  # paint order = hand index
        image[region][sel] = img[sel]
        mask[region][sel] = new_id
        if part is not None:
            p_src = _warp_nearest(src["part_seg"], local, slot.size, 0)
            if flip:
                p_src = swap_part_seg_sides(p_src)
            part[region][sel] = p_src[sel]
        if depth is not None:
            depth[region][sel] = 0.0
        painted.append(int(sel.sum()))

        i = crop.hand
        to_canvas = local + np.array([[0.0, 0.0, slot.x], [0.0, 0.0, slot.y]])
        valid = np.asarray(src["joint_valid"][i], np.float32)
        kp = np.asarray(src["keypoints_2d"][i], np.float64) @ to_canvas[:, :2].T + to_canvas[:, 2]
        kp[valid <= 0] = 0.0
        box = transform_boxes(np.asarray(src["bbox"][i : i + 1], np.float32), to_canvas)[0]
        lo = np.array([slot.x - 0.5, slot.y - 0.5])
        hi = lo + slot.size
        box = np.concatenate([np.clip(box[:2], lo, hi), np.clip(box[2:], lo, hi)])
        pose = np.asarray(src["hand_pose"][i], np.float32)
        one = {
            "handedness": np.int64(1 - src["handedness"][i] if flip else src["handedness"][i]),
            "joints_3d": np.zeros((21, 3), np.float32),
            "keypoints_2d": kp.astype(np.float32),
            "joint_valid": valid,
            "joint_visible": np.asarray(src["joint_visible"][i], np.float32),
            "bbox": box.astype(np.float32),
            "has_3d": np.bool_(False),
            "hand_pose": mirror_axis_angle(pose) if flip else pose,
            "betas": np.asarray(src["betas"][i], np.float32),
            "transl": np.zeros(3, np.float32),
            "has_params": np.bool_(False),
        }
        for k in PER_HAND_KEYS:
            hands[k].append(np.asarray(one[k], dtype=PER_HAND_KEYS[k][1])[None])
        if verts is not None:
            verts.append(np.zeros((1, *canvas["vertices_3d"].shape[1:]), np.float32))

    out: dict[str, Any] = {"image": image, "K": np.asarray(canvas["K"], np.float32).copy()}
    for k in PER_HAND_KEYS:
        out[k] = np.concatenate(hands[k], axis=0).astype(PER_HAND_KEYS[k][1])
    if verts is not None:
        out["vertices_3d"] = np.concatenate(verts, axis=0).astype(np.float32)
    out["mask"] = mask
    if part is not None:
        out["part_seg"] = part
    if depth is not None:
        out["depth"] = depth
    ids = [str(canvas["sample_id"])] + [str(c.sample["sample_id"]) for c, _ in pairs]
    first = canvas if canvas["dataset"] != "procedural" or not pairs else pairs[0][0].sample
    out["dataset"] = f"paste:{first['dataset']}"
    out["sample_id"] = "paste(" + "+".join(ids) + ")"
    out["hand_model_id"] = str(first["hand_model_id"])

    # Occlusion by later layers, then drop hands that were painted but are now fully covered.
    n = len(out["handedness"])
    if n:
        uv = np.rint(out["keypoints_2d"]).astype(np.int64)
        inside = (uv[..., 0] >= 0) & (uv[..., 0] < width) & (uv[..., 1] >= 0) & (uv[..., 1] < height)
        top = np.full(uv.shape[:2], MASK_BACKGROUND, dtype=np.int64)
        top[inside] = mask[uv[inside][:, 1], uv[inside][:, 0]]
        covered = top > np.arange(n)[:, None]
        visible = (out["joint_visible"] > 0) & inside & ~covered & (out["joint_valid"] > 0)
        out["joint_visible"] = visible.astype(np.float32)
        remaining = np.bincount(mask[mask >= 0].ravel(), minlength=n)[:n]
        keep = ~((np.asarray(painted) > 0) & (remaining == 0))
        out = select_hands(out, keep)
    return out


class PasteDataset(torch.utils.data.Dataset):
    """Multi-hand images pasted from a source dataset; sources drawn deterministically per ``(seed, epoch, index)``.

    Args:
        source: indexable dataset of samples with ``mask`` (any loader of this project).
        config: paste parameters.
        seed: base seed.
        length: number of items (default ``len(source)``).
        background_source: dataset of background samples (default ``source``); used when
            ``config.background == "sample"``.
        transform: optional transform ``t(sample, rng)`` applied to the result (e.g. colour jitter), with the
            same per-index generator.
    """

    def __init__(self, source: Any, config: PasteConfig | None = None, seed: int = 0, length: int | None = None,
                 background_source: Any = None, transform: Callable[[dict, np.random.Generator], dict] | None = None
                 ) -> None:
        if len(source) == 0:
            raise ValueError("the source dataset is empty")
        self.source = source
        self.config = config or PasteConfig()
        self.seed, self.epoch = int(seed), 0
        self.length = len(source) if length is None else int(length)
        self.background_source = source if background_source is None else background_source
        self.transform = transform

    def set_epoch(self, epoch: int) -> None:
        """Compose different images in each epoch (the same ones for the same epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def _draw_background(self, gen: np.random.Generator) -> Mapping[str, Any] | None:
        if self.config.background != "sample":
            return None
        for _ in range(self.config.max_source_tries):
            sample = self.background_source[int(gen.integers(len(self.background_source)))]
            if "mask" in sample and len(sample["handedness"]) <= self.config.max_hands:
                return sample
        return None

    def _draw_crop(self, gen: np.random.Generator) -> HandCrop | None:
        for _ in range(self.config.max_source_tries):
            sample = self.source[int(gen.integers(len(self.source)))]
            crops = extract_hand_crops(sample, self.config.crop_margin, self.config.min_mask_pixels)
            if crops:
                return crops[int(gen.integers(len(crops)))]
        return None

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.length <= index < self.length:
            raise IndexError(index)
        gen = np.random.default_rng((self.seed, self.epoch, int(index) % self.length))
        canvas = make_canvas(self._draw_background(gen), gen, self.config)
        budget = max(0, self.config.max_hands - len(canvas["handedness"]))
        slots = plan_layout(gen, self.config, budget)
        crops = []
        for _ in slots:
            crop = self._draw_crop(gen)
            if crop is None:
                break
            crops.append(crop)
        out = paste_hands(canvas, crops, slots[: len(crops)], gen, self.config)
        return self.transform(out, gen) if self.transform is not None else out
