"""Data augmentation applied consistently to every label of a sample (see :mod:`hand_recon_core.data.sample`).

Every transform is a callable ``transform(sample, rng) -> sample`` taking a sample dict and an explicit
``numpy.random.Generator`` (or an int seed); nothing reads global random state, so the same seed always gives the
same output. Transforms never modify their input arrays; they return a new dict. :class:`Compose` chains them,
:func:`build_augmentation` builds the default chain from an :class:`AugmentConfig`, :class:`AugmentedDataset`
applies a chain to a dataset with a per-index seed.

Geometry (scale, in-plane rotation, translation, crop / resize)
    Every geometric transform is one orientation-preserving 2D affine map of the image ``u' = A u + b`` (pixels,
    the sample format's convention: integer coordinates at pixel centres), applied by :func:`warp_sample`. The
    image is resampled once (bilinear; ``mask`` / ``part_seg`` / ``depth`` nearest), 2D labels are mapped
    exactly. The 3D labels stay consistent by *changing the camera*, never by moving the hand: the
    homography ``[A b; 0 1] K`` is factored (RQ decomposition of its 2x2 block) into new intrinsics ``K'``
    (upper triangular) times a rotation ``Q`` of the camera frame about the optical axis, so that for every
    3D point ``X``::

        project(K', Q X) = A project(K, X) + b.

    Scale, translation and crop only change ``K`` (``Q = I``); an in-plane rotation rotates the camera frame
    about z by the image rotation angle (for square pixels, ``fx == fy`` and zero skew, ``K'`` keeps
    ``fx' == fy'`` and zero skew; for non-square pixels ``K'`` gains a skew term, still exact). Then
    ``joints_3d`` / ``vertices_3d`` become ``Q X``, the global orientation ``Q R``, the translation
    ``Q (J0 + t) - J0`` (smplx semantics, ``J0`` = rest root joint of the shaped model, see
    :class:`RestRootJoints`), and ``depth`` keeps its values (``z`` is invariant under rotations about z).
    Scaling the image therefore means a longer focal length, not a closer hand: metric 3D labels never change
    scale.

Horizontal flip
    The image is mirrored (``u' = W - 1 - u``), the camera frame is mirrored (``x -> -x``) so 3D labels stay
    consistent with ``K' = F K M`` (``cx' = W - 1 - cx``, skew negated), handedness swaps, ``part_seg`` right
    parts 1-16 swap with left parts 17-32, and the hand-model parameters are mirrored with
    :func:`hand_recon_core.hand_model.mirror.mirror_axis_angle` (all 16 rotations). The mirrored mesh of a right
    hand is, vertex for vertex, a left hand of the same topology (MANO's left model is the mirror image of the
    right one, faces reversed), so ``vertices_3d`` keep their order. With ``J0_left = M J0_right`` the smplx
    translation simply mirrors: ``M (R (v - J0) + J0 + t) = (M R M)(M v - M J0) + M J0 + M t``; for official
    MANO this holds up to the small asymmetry of its two files.

Visibility and dropped hands
    Keypoints keep their exact (possibly out-of-image) coordinates. After a geometric transform a joint whose
    keypoint leaves the image ``[-0.5, W - 0.5) x [-0.5, H - 0.5)`` gets ``joint_visible = 0``; ``joint_valid``
    is kept by default (the label is still exact, only truncated; losses that need in-image joints combine the
    two flags) and cleared too with ``invalidate_outside=True``. A hand with no valid keypoint inside the image
    and no pixel left in ``mask`` (or, without any valid keypoint, whose box misses the image) is dropped from
    every per-hand array and from ``vertices_3d``; its ``mask`` pixels become background and its ``part_seg``
    pixels 0, the remaining hands' mask ids are renumbered.

Default ranges (:class:`AugmentConfig`), from the papers in ``shared/papers``:
    * scale [0.9, 1.1], rotation [-180, 180] degrees, translation [-10, 10] pixels: "random scaling ([0.9, 1.1]),
      rotation ([-180, 180]), translation ([-10, 10]), and color jittering" (hand-object intra/inter graphs,
      implementation details, 256 x 256 crops; translation read as pixels of the output).
    * horizontal flip: ACR ("random scale, rotation, flip, and colour jitter") and DIR ("random rotation, random
      scaling, random translation, random horizontal flipping and motion blur"); no probability is given, 0.5
      is assumed. The single-stage multi-hand paper flips hand patches "to construct left hand image for hand
      type learning".
    * colour jitter: single-stage, ACR, hand-object (no ranges stated; torchvision-style factors 0.2 / 0.2 /
      0.2 / 0.02 are an assumption). Motion blur: DIR (no parameters stated; kernel 3-9 px, probability 0.3
      assumed).
    * output size: 512 x 512 full images letterboxed "while keeping the same aspect ratio with zero padding"
      (ACR; 512 x 512 also single-stage); :meth:`AugmentConfig.single_hand` gives 256 x 256 hand crops (DIR,
      hand-object; 224 x 224 in single-stage).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from hand_recon_core.data.extras import flip_extras, recompute_centers, select_extras, warp_extras
from hand_recon_core.data.sample import (
    MASK_BACKGROUND,
    PART_SEG_PARTS_PER_HAND,
    PER_HAND_KEYS,
)
from hand_recon_core.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from hand_recon_core.hand_model.mirror import mirror_axis_angle

__all__ = [
    "RngLike",
    "RootJointFn",
    "Transform",
    "as_generator",
    "RestRootJoints",
    "select_hands",
    "affine_intrinsics",
    "transform_boxes",
    "warp_sample",
    "flip_sample",
    "swap_part_seg_sides",
    "letterbox_matrix",
    "hands_box",
    "Compose",
    "RandomApply",
    "CropResize",
    "RandomScale",
    "RandomRotation",
    "RandomTranslation",
    "RandomAffineCrop",
    "HorizontalFlip",
    "ColorJitter",
    "MotionBlur",
    "motion_blur_kernel",
    "AugmentConfig",
    "build_augmentation",
    "AugmentedDataset",
]

RngLike = np.random.Generator | int | Sequence[int]
#: ``root_fn(betas (N, 10), handedness (N,), hand_model_id) -> (N, 3)`` rest root joints ``J0(betas)``, metres.
RootJointFn = Callable[[np.ndarray, np.ndarray, str], np.ndarray]


class Transform(Protocol):
    """A sample transform: ``transform(sample, rng) -> new sample`` (see the module docstring)."""

    def __call__(self, sample: Mapping[str, Any], rng: RngLike) -> dict[str, Any]: ...


def as_generator(rng: RngLike) -> np.random.Generator:
    """Return ``rng`` if it is a ``numpy.random.Generator``, else ``numpy.random.default_rng(rng)``.

    ``None`` is refused: every augmentation must be seeded explicitly.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("pass an explicit numpy Generator or seed (None would use fresh OS entropy)")
    return np.random.default_rng(rng)


# ---------------------------------------------------------------------------------------------- hand-model roots
class RestRootJoints:
    """``J0(betas)``, the shaped rest root joint of a linear hand model, per side (a ``RootJointFn``).

    Needed to re-express ``transl`` (smplx semantics) after an in-plane rotation when ``joints_3d`` cannot
    provide it (see :func:`warp_sample`).

    Args:
        models: ``{handedness code: HandModelData}`` (``RIGHT`` / ``LEFT`` from
            :mod:`hand_recon_core.data.sample`), or any object with ``v_template`` (V, 3), ``shapedirs``
            (V, 3, 10) and ``dense_regressor()`` (16, V); metres, hand-model frame.
        model_id: if given, calls with another ``hand_model_id`` raise ``ValueError``.
    """

    def __init__(self, models: Mapping[int, Any], model_id: str | None = None) -> None:
        self.model_id = model_id
        self._template: dict[int, np.ndarray] = {}
        self._dirs: dict[int, np.ndarray] = {}
        for code, model in models.items():
            root_row = np.asarray(model.dense_regressor(), dtype=np.float64)[0]  # (V,)
            self._template[int(code)] = root_row @ np.asarray(model.v_template, dtype=np.float64)
            self._dirs[int(code)] = np.einsum("v,vcb->cb", root_row, np.asarray(model.shapedirs, np.float64))

    def __call__(self, betas: np.ndarray, handedness: np.ndarray, hand_model_id: str) -> np.ndarray:
        """Rest root joints.

        Args:
            betas: (N, 10) shape coefficients.
            handedness: (N,) int codes.
            hand_model_id: the sample's ``hand_model_id``.

        Returns:
            (N, 3) float64, metres, hand-model frame.
        """
        if self.model_id is not None and hand_model_id != self.model_id:
            raise ValueError(f"RestRootJoints built for {self.model_id!r}, sample uses {hand_model_id!r}")
        out = np.zeros((len(handedness), 3), dtype=np.float64)
        for i, (b, h) in enumerate(zip(np.asarray(betas, np.float64), np.asarray(handedness))):
            if int(h) not in self._template:
                raise ValueError(f"no hand model given for handedness {int(h)}")
            out[i] = self._template[int(h)] + self._dirs[int(h)] @ b
        return out


# ---------------------------------------------------------------------------------------------- per-hand helpers
def _num_hands(sample: Mapping[str, Any]) -> int:
    return int(np.asarray(sample["handedness"]).shape[0])


def select_hands(sample: Mapping[str, Any], keep: np.ndarray) -> dict[str, Any]:
    """Keep a subset of the hands, consistently in every per-hand array, ``vertices_3d``, ``mask`` and ``part_seg``.

    Args:
        sample: a sample dict.
        keep: (N,) bool mask or 1-D int indices (new order) of the hands to keep.

    Returns:
        A new sample: per-hand arrays indexed, ``mask`` ids renumbered to the new order (pixels of dropped hands
        become ``MASK_BACKGROUND``), ``part_seg`` pixels of dropped hands (known through ``mask``) set to 0.
    """
    n = _num_hands(sample)
    keep = np.asarray(keep)
    idx = np.flatnonzero(keep) if keep.dtype == np.bool_ else keep.astype(np.int64).reshape(-1)
    out = dict(sample)
    if len(idx) == n and np.array_equal(idx, np.arange(n)):
        return out
    for key in PER_HAND_KEYS:
        out[key] = np.ascontiguousarray(np.asarray(sample[key])[idx])
    select_extras(out, sample, idx, n)
    if "vertices_3d" in sample:
        out["vertices_3d"] = np.ascontiguousarray(sample["vertices_3d"][idx])
    if "mask" in sample:
        lut = np.full(n + 1, MASK_BACKGROUND, dtype=np.int16)  # index n + 1 - 1 == -1 -> background
        lut[idx] = np.arange(len(idx), dtype=np.int16)
        mask = sample["mask"]
        new_mask = lut[np.where(mask < 0, n, mask)].astype(np.int16)
        out["mask"] = new_mask
        dropped = (mask >= 0) & (new_mask < 0)
        if dropped.any():
            for key in ("part_seg", "dense"):  # labels of dropped hands become background
                if key in sample:
                    labels = sample[key].copy()
                    labels[dropped] = 0
                    out[key] = labels
    return out


def _rezero_invalid(sample: dict[str, Any]) -> None:
    """Keep the format's "0 if invalid" rule for 2D/3D joint coordinates."""
    invalid = sample["joint_valid"] <= 0
    if invalid.any():
        kp = sample["keypoints_2d"].copy()
        kp[invalid] = 0.0
        sample["keypoints_2d"] = kp
        j3 = sample["joints_3d"].copy()
        j3[invalid] = 0.0
        sample["joints_3d"] = j3


def _inside(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """(..., 2) pixels -> (...) bool: inside ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``."""
    return (uv[..., 0] >= -0.5) & (uv[..., 0] < width - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] < height - 0.5)


def _update_out_of_image(sample: dict[str, Any], invalidate_outside: bool, drop_outside: bool) -> dict[str, Any]:
    """Clear flags of joints outside the image and drop hands that left it entirely (see the module docstring)."""
    height, width = sample["image"].shape[:2]
    valid = sample["joint_valid"] > 0
    inside = _inside(sample["keypoints_2d"], width, height) & valid
    visible = (sample["joint_visible"] > 0) & inside
    sample["joint_visible"] = visible.astype(np.float32)
    if invalidate_outside:
        sample["joint_valid"] = inside.astype(np.float32)
        _rezero_invalid(sample)
    if not drop_outside or _num_hands(sample) == 0:
        return sample
    keep = inside.any(axis=1)
    if "mask" in sample:
        counts = np.bincount(sample["mask"][sample["mask"] >= 0].ravel(), minlength=_num_hands(sample))
        keep |= counts[: _num_hands(sample)] > 0
    bbox = sample["bbox"]
    box_in = (bbox[:, 2] >= -0.5) & (bbox[:, 0] < width - 0.5) & (bbox[:, 3] >= -0.5) & (bbox[:, 1] < height - 0.5)
    keep |= ~valid.any(axis=1) & box_in
    return select_hands(sample, keep)


# ---------------------------------------------------------------------------------------------- geometry
def affine_intrinsics(K: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New intrinsics and camera rotation that realise an image affine map (RQ factorisation).

    Solves ``[A b; 0 0 1] K = K' Q`` with ``K'`` upper triangular (positive diagonal) and ``Q`` a rotation about
    the optical axis, so that ``project(K', Q X) = A project(K, X) + b`` for every camera-frame point ``X``.

    Args:
        K: (3, 3) intrinsics, pixels (last row ``0 0 1``).
        matrix: (2, 3) image affine ``[A | b]``, pixels; ``det(A) > 0``.

    Returns:
        ``(K', Q)``: (3, 3) float64 intrinsics, pixels, and (3, 3) float64 rotation (camera frame, about z).

    Raises:
        ValueError: ``det(A) <= 0`` (a reflection: use :func:`flip_sample`) or degenerate ``K``.
    """
    K = np.asarray(K, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    h = np.vstack([m, [0.0, 0.0, 1.0]])
    hk = h @ K
    block = hk[:2, :2]
    if np.linalg.det(m[:, :2]) <= 0 or np.linalg.det(block) <= 0:
        raise ValueError("the image map must preserve orientation (det > 0) and K must be non-degenerate")
    c, d = block[1]
    r = math.hypot(c, d)
    cos, sin = d / r, c / r
    q = np.eye(3)
    if c != 0.0 or d < 0.0:  # keep Q exactly the identity for pure scale/translation
        q[:2, :2] = [[cos, -sin], [sin, cos]]
    k_new = hk @ q.T
    k_new[1, 0] = 0.0  # exactly zero by construction
    k_new[2] = [0.0, 0.0, 1.0]
    return k_new, q


def transform_boxes(bbox: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map boxes through an image affine map.

    Args:
        bbox: (N, 4) xyxy boxes, pixels.
        matrix: (2, 3) ``[A | b]``, pixels.

    Returns:
        (N, 4) float32 xyxy: the axis-aligned hull of each box's 4 mapped corners (looser than the hand under a
        rotation).
    """
    if len(bbox) == 0:
        return bbox.astype(np.float32).copy()
    x1, y1, x2, y2 = (bbox[:, i].astype(np.float64) for i in range(4))
    corners = np.stack([np.stack([x1, y1], -1), np.stack([x2, y1], -1), np.stack([x1, y2], -1),
                        np.stack([x2, y2], -1)], axis=1)  # (N, 4, 2)
    mapped = corners @ matrix[:, :2].T + matrix[:, 2]
    return np.concatenate([mapped.min(axis=1), mapped.max(axis=1)], axis=1).astype(np.float32)


def warp_dense(array: np.ndarray, matrix: np.ndarray, out_size: tuple[int, int], *, nearest: bool,
               border_value: float | tuple[float, ...]) -> np.ndarray:
    """``cv2.warpAffine`` of an image or label map (``u' = A u + b``), constant border.

    Nearest-neighbour warps of integer maps (int16 instance masks, uint8 part labels) all go through float32
    (exact for these values): OpenCV's per-dtype paths round some sample positions differently (its int16 path in
    4.x, its uint8 path in 5.x), which put mask and part-label pixels of the same warp out of register (a hand
    pixel without a part label). One path for every label map keeps them in register on any OpenCV version.
    """
    width, height = out_size
    src = array.astype(np.float32) if nearest and np.issubdtype(array.dtype, np.integer) else array
    out = cv2.warpAffine(src, np.asarray(matrix, np.float64), (width, height),
                         flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)
    return out.astype(array.dtype) if out.dtype != array.dtype else out


def _rotate_params(sample: Mapping[str, Any], q: np.ndarray, root_fn: RootJointFn | None) -> dict[str, np.ndarray]:
    """Global orientation / translation of every hand after the camera rotation ``X' = Q X``."""
    pose = np.asarray(sample["hand_pose"], dtype=np.float64).copy()
    transl = np.asarray(sample["transl"], dtype=np.float64).copy()
    has_params = np.asarray(sample["has_params"]).copy()
    n = len(pose)
    if n == 0:
        return {}
    rot = axis_angle_to_matrix(torch.from_numpy(pose[:, :3])).numpy()
    pose[:, :3] = matrix_to_axis_angle(torch.from_numpy(q @ rot)).numpy()
    if root_fn is not None:
        j0 = np.asarray(root_fn(np.asarray(sample["betas"]), np.asarray(sample["handedness"]),
                                str(sample["hand_model_id"])), dtype=np.float64)
        known = np.ones(n, dtype=bool)
    else:  # the posed root lands at J0 + transl, so J0 = wrist - transl when joints_3d come from the model
        j0 = np.asarray(sample["joints_3d"], np.float64)[:, 0] - transl
        known = np.asarray(sample["has_3d"]) & (np.asarray(sample["joint_valid"])[:, 0] > 0)
    root = j0 + transl
    new_transl = np.where(known[:, None], root @ q.T - j0, 0.0)
    has_params = has_params & known  # the orientation is always re-expressed; transl needs J0
    return {"hand_pose": pose.astype(np.float32), "transl": np.where(has_params[:, None], new_transl, transl)
            .astype(np.float32), "has_params": has_params}


def warp_sample(sample: Mapping[str, Any], matrix: np.ndarray, out_size: tuple[int, int] | None = None, *,
                rest_root_fn: RootJointFn | None = None, border_value: tuple[int, int, int] = (0, 0, 0),
                invalidate_outside: bool = False, drop_outside: bool = True) -> dict[str, Any]:
    """Apply an orientation-preserving image affine map to a sample and all its labels.

    See the module docstring for the conventions. ``has_params`` is cleared for hands whose translation cannot
    be re-expressed after a rotation: without ``rest_root_fn`` the rest root joint is taken as
    ``joints_3d[:, 0] - transl`` (exact when ``joints_3d`` come from the hand model, as the sample format's
    ``transl`` convention states), which needs ``has_3d`` and a valid wrist.

    Args:
        sample: a sample dict (:mod:`hand_recon_core.data.sample`).
        matrix: (2, 3) ``[A | b]``: output pixel ``u' = A u + b`` of input pixel ``u``; ``det(A) > 0``.
        out_size: ``(width, height)`` of the output image, pixels; default: the input size.
        rest_root_fn: optional ``RootJointFn`` (e.g. :class:`RestRootJoints`) giving ``J0(betas)``.
        border_value: RGB fill of image pixels mapped from outside the input.
        invalidate_outside: also clear ``joint_valid`` (and zero the coordinates) of joints leaving the image.
        drop_outside: drop hands that left the image entirely.

    Returns:
        The new sample (input arrays untouched).
    """
    matrix = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    height, width = sample["image"].shape[:2]
    out_size = (width, height) if out_size is None else (int(out_size[0]), int(out_size[1]))
    k_new, q = affine_intrinsics(sample["K"], matrix)
    out = dict(sample)
    out["image"] = warp_dense(sample["image"], matrix, out_size, nearest=False,
                               border_value=tuple(float(v) for v in border_value))
    out["K"] = k_new.astype(np.float32)
    if "mask" in sample:
        out["mask"] = warp_dense(sample["mask"], matrix, out_size, nearest=True, border_value=MASK_BACKGROUND)
    if "part_seg" in sample:
        out["part_seg"] = warp_dense(sample["part_seg"], matrix, out_size, nearest=True, border_value=0)
    if "depth" in sample:
        out["depth"] = warp_dense(sample["depth"], matrix, out_size, nearest=True, border_value=0.0)
    if "dense" in sample:
        out["dense"] = warp_dense(sample["dense"], matrix, out_size, nearest=True, border_value=(0.0, 0.0, 0.0))

    kp = np.asarray(sample["keypoints_2d"], dtype=np.float64)
    out["keypoints_2d"] = (kp @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
    out["bbox"] = transform_boxes(np.asarray(sample["bbox"]), matrix)
    if not np.array_equal(q, np.eye(3)):
        out["joints_3d"] = (np.asarray(sample["joints_3d"], np.float64) @ q.T).astype(np.float32)
        if "vertices_3d" in sample:
            out["vertices_3d"] = (np.asarray(sample["vertices_3d"], np.float64) @ q.T).astype(np.float32)
        out.update(_rotate_params(sample, q, rest_root_fn))
    warp_extras(out, sample, matrix, q, out_size)
    _rezero_invalid(out)
    out = _update_out_of_image(out, invalidate_outside, drop_outside)
    recompute_centers(out)
    return out


def swap_part_seg_sides(part_seg: np.ndarray) -> np.ndarray:
    """Swap right parts 1..16 with left parts 17..32 (0, background, is kept).

    Args:
        part_seg: (H, W) uint8 part labels.

    Returns:
        (H, W) uint8, a new array.
    """
    p = PART_SEG_PARTS_PER_HAND
    lut = np.arange(256, dtype=np.uint8)
    lut[1 : 1 + p] = np.arange(1 + p, 1 + 2 * p)
    lut[1 + p : 1 + 2 * p] = np.arange(1, 1 + p)
    return lut[part_seg]


def flip_sample(sample: Mapping[str, Any]) -> dict[str, Any]:
    """Mirror a sample horizontally and swap handedness (see the module docstring; its own inverse).

    Args:
        sample: a sample dict.

    Returns:
        The mirrored sample: image columns reversed, ``K' = F K M`` (``cx' = W - 1 - cx``), keypoints
        ``u' = W - 1 - u``, 3D labels and ``transl`` ``x -> -x`` in the camera frame, ``hand_pose`` mirrored
        with ``mirror_axis_angle``, handedness ``RIGHT <-> LEFT``, ``part_seg`` sides swapped, boxes mirrored.
    """
    width = sample["image"].shape[1]
    out = dict(sample)
    out["image"] = np.ascontiguousarray(sample["image"][:, ::-1])
    for key in ("mask", "depth", "dense"):
        if key in sample:
            out[key] = np.ascontiguousarray(sample[key][:, ::-1])
    if "part_seg" in sample:
        out["part_seg"] = swap_part_seg_sides(np.ascontiguousarray(sample["part_seg"][:, ::-1]))
    K = np.asarray(sample["K"], dtype=np.float64)
    flip = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    out["K"] = (flip @ K @ np.diag([-1.0, 1.0, 1.0])).astype(np.float32)
    kp = np.asarray(sample["keypoints_2d"], dtype=np.float64).copy()
    kp[..., 0] = width - 1.0 - kp[..., 0]
    out["keypoints_2d"] = kp.astype(np.float32)
    mirror = np.array([-1.0, 1.0, 1.0], dtype=np.float32)
    out["joints_3d"] = np.asarray(sample["joints_3d"], np.float32) * mirror
    if "vertices_3d" in sample:
        out["vertices_3d"] = np.asarray(sample["vertices_3d"], np.float32) * mirror
    out["transl"] = np.asarray(sample["transl"], np.float32) * mirror
    out["hand_pose"] = mirror_axis_angle(np.asarray(sample["hand_pose"], np.float32)).astype(np.float32)
    out["handedness"] = (1 - np.asarray(sample["handedness"])).astype(np.int64)
    bbox = np.asarray(sample["bbox"], dtype=np.float64)
    out["bbox"] = np.stack([width - 1.0 - bbox[:, 2], bbox[:, 1], width - 1.0 - bbox[:, 0], bbox[:, 3]],
                           axis=1).astype(np.float32)
    _rezero_invalid(out)
    flip_extras(out, sample)
    return out


# ---------------------------------------------------------------------------------------------- matrices
def _similarity(scale: float, angle: float, center_in: tuple[float, float],
                center_out: tuple[float, float]) -> np.ndarray:
    """(2, 3) map ``u' = s R(angle) (u - center_in) + center_out`` (``R = [[cos, -sin], [sin, cos]]``)."""
    cos, sin = math.cos(angle), math.sin(angle)
    a = scale * np.array([[cos, -sin], [sin, cos]])
    b = np.asarray(center_out, np.float64) - a @ np.asarray(center_in, np.float64)
    return np.hstack([a, b[:, None]])


def letterbox_matrix(in_size: tuple[int, int], out_size: tuple[int, int]) -> np.ndarray:
    """(2, 3) map fitting a whole ``in_size = (W, H)`` image into ``out_size`` (aspect kept, centred, padded)."""
    (w, h), (wo, ho) = in_size, out_size
    s = min(wo / w, ho / h)
    return _similarity(s, 0.0, ((w - 1) / 2, (h - 1) / 2), ((wo - 1) / 2, (ho - 1) / 2))


def hands_box(sample: Mapping[str, Any]) -> np.ndarray | None:
    """(4,) xyxy box (pixels) enclosing every hand's valid keypoints (or its ``bbox`` if it has none).

    Returns ``None`` for a sample without hands.
    """
    kp, valid, bbox = sample["keypoints_2d"], sample["joint_valid"] > 0, sample["bbox"]
    pts = [kp[i][valid[i]] if valid[i].any() else bbox[i].reshape(2, 2) for i in range(_num_hands(sample))]
    if not pts:
        return None
    allp = np.concatenate(pts, axis=0)
    return np.concatenate([allp.min(axis=0), allp.max(axis=0)]).astype(np.float64)


def _crop_frame(sample: Mapping[str, Any], out_size: tuple[int, int], mode: str,
                margin: float) -> tuple[float, tuple[float, float]]:
    """Base scale and input centre of the crop: ``"image"`` letterbox, ``"hands"`` square crop, ``"none"``."""
    height, width = sample["image"].shape[:2]
    wo, ho = out_size
    centre = ((width - 1) / 2, (height - 1) / 2)
    if mode == "none":
        return 1.0, centre
    box = hands_box(sample) if mode == "hands" else None
    if mode == "hands" and box is not None:
        side = max(box[2] - box[0], box[3] - box[1], 1.0) * margin
        return min(wo, ho) / side, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    if mode not in ("image", "hands"):
        raise ValueError(f"crop mode must be 'image', 'hands' or 'none', got {mode!r}")
    return min(wo / width, ho / height), centre


# ---------------------------------------------------------------------------------------------- transforms
class Compose:
    """Apply transforms in order with one shared generator.

    Args:
        transforms: callables ``t(sample, rng) -> sample``.
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Mapping[str, Any], rng: RngLike) -> dict[str, Any]:
        gen = as_generator(rng)
        out = dict(sample)
        for t in self.transforms:
            out = t(out, gen)
        return out

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class RandomApply:
    """Apply ``transform`` with probability ``prob`` (one uniform draw per call)."""

    def __init__(self, transform: Transform, prob: float) -> None:
        self.transform, self.prob = transform, float(prob)

    def __call__(self, sample: Mapping[str, Any], rng: RngLike) -> dict[str, Any]:
        gen = as_generator(rng)
        return self.transform(sample, gen) if gen.random() < self.prob else dict(sample)


@dataclass
class _GeometricBase:
    rest_root_fn: RootJointFn | None = field(default=None, kw_only=True)
    border_value: tuple[int, int, int] = field(default=(0, 0, 0), kw_only=True)
    invalidate_outside: bool = field(default=False, kw_only=True)
    drop_outside: bool = field(default=True, kw_only=True)

    def _warp(self, sample: Mapping[str, Any], matrix: np.ndarray, out_size: tuple[int, int]) -> dict[str, Any]:
        return warp_sample(sample, matrix, out_size, rest_root_fn=self.rest_root_fn, border_value=self.border_value,
                           invalidate_outside=self.invalidate_outside, drop_outside=self.drop_outside)


@dataclass
class CropResize(_GeometricBase):
    """Deterministic crop / resize to ``out_size``.

    Args:
        out_size: ``(width, height)``, pixels.
        mode: ``"image"``: the whole image fitted in (aspect kept, centred, padded); ``"hands"``: a square of
            side ``margin`` times the longer side of the box around all hands' valid keypoints, centred on it
            (falls back to ``"image"`` without hands).
        margin: crop side / hand-box side for ``mode="hands"``.
    """

    out_size: tuple[int, int] = (512, 512)
    mode: str = "image"
    margin: float = 1.5

    def __call__(self, sample: Mapping[str, Any], rng: RngLike | None = None) -> dict[str, Any]:
        scale, centre = _crop_frame(sample, self.out_size, self.mode, self.margin)
        wo, ho = self.out_size
        return self._warp(sample, _similarity(scale, 0.0, centre, ((wo - 1) / 2, (ho - 1) / 2)), self.out_size)


def _centre(sample: Mapping[str, Any]) -> tuple[float, float]:
    height, width = sample["image"].shape[:2]
    return (width - 1) / 2, (height - 1) / 2


@dataclass
class RandomScale(_GeometricBase):
    """Zoom about the image centre by ``s ~ U(scale_range)`` (``s > 1`` enlarges); image size kept."""

    scale_range: tuple[float, float] = (0.9, 1.1)

    def __call__(self, sample: Mapping[str, Any], rng: RngLike) -> dict[str, Any]:
        s = as_generator(rng).uniform(*self.scale_range)
        c = _centre(sample)
        return self._warp(sample, _similarity(s, 0.0, c, c), None)


@dataclass
class RandomRotation(_GeometricBase):
    """Rotate about the image centre by ``angle ~ U(rotation_range)`` degrees; image size kept.

    A positive angle turns the content clockwise on screen (x right, y down): ``u' = R (u - c) + c``.
    """

    rotation_range: tuple[float, float] = (-180.0, 180.0)

    def __call__(self, sample: Mapping[str, Any], rng: RngLike) -> dict[str, Any]:
        angle = math.radians(as_generator(rng).uniform(*self.rotation_range))
        c = _centre(sample)
        return self._warp(sample, _similarity(1.0, angle, c, c), None)


@dataclass
class RandomTranslation(_GeometricBase):
    """Shift by ``(dx, dy)``, each ``~ U(translation_range)`` pixels; image size kept."""

    translation_range: tuple[float, float] = (-10.0, 10.0)

    def __call__(self, sample: Mapping[str, Any], rng: RngLike) -> dict[str, Any]:
        dx, dy = as_generator(rng).uniform(*self.translation_range, size=2)
        return self._warp(sample, np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]]), None)


@dataclass
class RandomAffineCrop(_GeometricBase):
    """Random scale, rotation and translation combined with a crop / resize, in one resampling.

    ``u' = s0 s R(angle) (u - c) + out_centre + (dx, dy)``, with ``s0, c`` from the crop ``mode`` (see
    :class:`CropResize`), ``s ~ U(scale_range)``, ``angle ~ U(rotation_range)`` degrees, ``dx, dy ~
    U(translation_range)`` output pixels.

    Args:
        out_size: ``(width, height)`` of the output, pixels (``None``: the input size, with ``mode="none"``).
        scale_range, rotation_range, translation_range: see above.
        mode, margin: see :class:`CropResize`.
    """

    out_size: tuple[int, int] | None = (512, 512)
    scale_range: tuple[float, float] = (0.9, 1.1)
    rotation_range: tuple[float, float] = (-180.0, 180.0)
    translation_range: tuple[float, float] = (-10.0, 10.0)
    mode: str = "image"
    margin: float = 1.5

    def __call__(self, sample: Mapping[str, Any], rng: RngLike) -> dict[str, Any]:
        gen = as_generator(rng)
        s = gen.uniform(*self.scale_range)
        angle = math.radians(gen.uniform(*self.rotation_range))
        dx, dy = gen.uniform(*self.translation_range, size=2)
        height, width = sample["image"].shape[:2]
        out_size = (width, height) if self.out_size is None else tuple(self.out_size)
        s0, centre = _crop_frame(sample, out_size, self.mode, self.margin)
        wo, ho = out_size
        matrix = _similarity(s0 * s, angle, centre, ((wo - 1) / 2 + dx, (ho - 1) / 2 + dy))
        return self._warp(sample, matrix, out_size)


@dataclass
class HorizontalFlip:
    """Mirror the sample (:func:`flip_sample`) with probability ``prob``."""

    prob: float = 0.5

    def __call__(self, sample: Mapping[str, Any], rng: RngLike) -> dict[str, Any]:
        return flip_sample(sample) if as_generator(rng).random() < self.prob else dict(sample)


def _gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB -> (H, W, 1) luma (ITU-R BT.601 weights)."""
    return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]


@dataclass
class ColorJitter:
    """Random brightness, contrast, saturation and hue, in a random order; labels untouched.

    Factors (torchvision semantics): brightness ``b ~ U(1 - brightness, 1 + brightness)`` multiplies the
    image; contrast ``c`` blends with the mean grey level; saturation ``s`` blends with the grey image; hue
    shifts the HSV hue by ``h ~ U(-hue, hue)`` turns (``hue <= 0.5``).

    Args:
        brightness, contrast, saturation, hue: ranges as above (0 disables one).
        prob: probability of jittering at all.
    """

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    prob: float = 1.0

    def __call__(self, sample: Mapping[str, Any], rng: RngLike) -> dict[str, Any]:
        gen = as_generator(rng)
        apply = gen.random() < self.prob
        factors = [gen.uniform(max(0.0, 1 - r), 1 + r) for r in (self.brightness, self.contrast, self.saturation)]
        hue_shift = gen.uniform(-self.hue, self.hue)
        order = gen.permutation(4)
        out = dict(sample)
        if not apply:
            return out
        img = sample["image"].astype(np.float32)
        for op in order:
            if op == 0 and self.brightness > 0:
                img = img * factors[0]
            elif op == 1 and self.contrast > 0:
                mean = float(_gray(img).mean())
                img = (img - mean) * factors[1] + mean
            elif op == 2 and self.saturation > 0:
                grey = _gray(img)
                img = (img - grey) * factors[2] + grey
            elif op == 3 and self.hue > 0:
                hsv = cv2.cvtColor(np.clip(img, 0, 255) / 255.0, cv2.COLOR_RGB2HSV)  # H in degrees
                hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * hue_shift, 360.0)
                img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
            img = np.clip(img, 0, 255)
        out["image"] = np.rint(img).astype(np.uint8)
        return out


def motion_blur_kernel(size: int, angle: float) -> np.ndarray:
    """A normalised linear motion-blur kernel.

    Point-symmetric about its centre (samples at ``t`` and ``-t`` along the line, bilinear splats), so blurring
    does not shift image content and pixel labels stay aligned.

    Args:
        size: odd kernel size, pixels (>= 1).
        angle: direction of the motion, radians (0 = along x).

    Returns:
        (size, size) float32 kernel summing to 1.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and >= 1, got {size}")
    kernel = np.zeros((size, size), dtype=np.float64)
    c = (size - 1) / 2
    half = (size - 1) / 2
    for t in np.linspace(-half, half, 4 * size + 1):
        x, y = c + t * math.cos(angle), c + t * math.sin(angle)
        x0, y0 = math.floor(x), math.floor(y)
        fx, fy = x - x0, y - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            xi, yi = x0 + dx, y0 + dy
            if 0 <= xi < size and 0 <= yi < size:
                kernel[yi, xi] += w
    kernel = 0.5 * (kernel + kernel[::-1, ::-1])  # exact point symmetry despite float rounding
    return (kernel / kernel.sum()).astype(np.float32)


@dataclass
class MotionBlur:
    """Linear motion blur with probability ``prob``: odd kernel size ``~ U{kernel_range}``, angle ``~ U[0, pi)``.

    Labels untouched (the kernel is point-symmetric, see :func:`motion_blur_kernel`).
    """

    kernel_range: tuple[int, int] = (3, 9)
    prob: float = 0.3

    def __call__(self, sample: Mapping[str, Any], rng: RngLike) -> dict[str, Any]:
        gen = as_generator(rng)
        apply = gen.random() < self.prob
        sizes = np.arange(self.kernel_range[0] | 1, self.kernel_range[1] + 1, 2)
        size = int(gen.choice(sizes))
        angle = gen.uniform(0.0, math.pi)
        out = dict(sample)
        if apply and size > 1:
            out["image"] = cv2.filter2D(sample["image"], -1, motion_blur_kernel(size, angle),
                                        borderType=cv2.BORDER_REFLECT_101)
        return out


# ---------------------------------------------------------------------------------------------- configuration
@dataclass
class AugmentConfig:
    """Default augmentation ranges (sources in the module docstring).

    Attributes:
        out_size: ``(width, height)`` of the output, pixels; ``None`` keeps the input size.
        crop_mode: ``"image"`` (letterbox the whole image), ``"hands"`` (square crop around the hands) or
            ``"none"``.
        crop_margin: crop side / hand-box side for ``crop_mode="hands"``.
        scale_range: random zoom factors (hand-object paper: [0.9, 1.1]).
        rotation_range: in-plane rotation, degrees (hand-object paper: [-180, 180]).
        translation_range: shift, output pixels (hand-object paper: [-10, 10]).
        flip_prob: horizontal flip with handedness swap (ACR, DIR; 0.5 assumed).
        brightness, contrast, saturation, hue: colour jitter (single-stage, ACR, hand-object; values assumed).
        color_prob: probability of colour jitter.
        blur_kernel_range, blur_prob: motion blur (DIR; values assumed).
        invalidate_outside: clear ``joint_valid`` too for joints leaving the image.
    """

    out_size: tuple[int, int] | None = (512, 512)
    crop_mode: str = "image"
    crop_margin: float = 1.5
    scale_range: tuple[float, float] = (0.9, 1.1)
    rotation_range: tuple[float, float] = (-180.0, 180.0)
    translation_range: tuple[float, float] = (-10.0, 10.0)
    flip_prob: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    color_prob: float = 1.0
    blur_kernel_range: tuple[int, int] = (3, 9)
    blur_prob: float = 0.3
    invalidate_outside: bool = False

    @classmethod
    def single_hand(cls, **overrides: Any) -> AugmentConfig:
        """256 x 256 crops around the hand(s) (DIR, hand-object); keyword overrides allowed."""
        values: dict[str, Any] = {"out_size": (256, 256), "crop_mode": "hands"}
        values.update(overrides)
        return cls(**values)


def build_augmentation(config: AugmentConfig | None = None, rest_root_fn: RootJointFn | None = None) -> Compose:
    """The default chain: random affine crop, horizontal flip, colour jitter, motion blur.

    Args:
        config: ranges; default :class:`AugmentConfig`.
        rest_root_fn: optional ``J0(betas)`` provider for exact ``transl`` under rotation (see
            :func:`warp_sample`).

    Returns:
        A :class:`Compose`.
    """
    c = config or AugmentConfig()
    return Compose([
        RandomAffineCrop(out_size=c.out_size, scale_range=c.scale_range, rotation_range=c.rotation_range,
                         translation_range=c.translation_range, mode=c.crop_mode, margin=c.crop_margin,
                         rest_root_fn=rest_root_fn, invalidate_outside=c.invalidate_outside),
        HorizontalFlip(prob=c.flip_prob),
        ColorJitter(brightness=c.brightness, contrast=c.contrast, saturation=c.saturation, hue=c.hue,
                    prob=c.color_prob),
        MotionBlur(kernel_range=c.blur_kernel_range, prob=c.blur_prob),
    ])


class AugmentedDataset(torch.utils.data.Dataset):
    """Wrap a dataset of samples with a transform, seeded per ``(seed, epoch, index)`` (reproducible, worker-safe).

    Args:
        dataset: any indexable dataset returning sample dicts.
        transform: e.g. :func:`build_augmentation`'s result.
        seed: base seed.
    """

    def __init__(self, dataset: Any, transform: Transform, seed: int = 0) -> None:
        self.dataset, self.transform, self.seed, self.epoch = dataset, transform, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Draw different augmentations in each epoch (same ones for the same epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        return self.transform(self.dataset[index], rng)
