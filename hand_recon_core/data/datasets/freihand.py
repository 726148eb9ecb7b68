"""FreiHAND (v1/v2 releases) in the project's sample format.

On-disk layout (verified against the official toolbox lmb-freiburg/freihand: ``utils/fh_utils.py``
``load_db_annotation`` / ``read_img`` / ``read_msk`` / ``sample_version``, ``utils/model.py`` ``split_theta`` /
``recover_root`` / ``HandModel``, ``utils/mano_utils.py``, and the evaluation script's ``%s_xyz.json`` /
``%s_verts.json`` names)::

    ROOT/training_K.json       [n][3][3]   intrinsics, pixels
    ROOT/training_xyz.json     [n][21][3]  joints, metres, camera frame (OpenCV), OpenPose order
    ROOT/training_mano.json    [n][1][61]  MANO fit (see below)
    ROOT/training_verts.json   [n][778][3] MANO vertices, metres, camera frame (read only with load_vertices)
    ROOT/training/rgb/%08d.jpg             224 x 224 images; n * 4 of them (see below)
    ROOT/training/mask/%08d.jpg            hand masks of the n unique samples
    ROOT/evaluation_K.json, evaluation_xyz.json, evaluation_mano.json, evaluation_verts.json   (v2 release)
    ROOT/evaluation/rgb/%08d.jpg

* Training images exist in 4 "sample versions" sharing one annotation: ``gs`` (green screen), ``hom``, ``sample``,
  ``auto``; image ``id + n * v`` is annotation ``id`` in version ``v`` (``n = 32560`` in the release). The
  evaluation split has the ``gs`` version only. Masks belong to the annotation id.
* The 61 MANO values are **not** pose/shape/translation: they are ``pose (48)``, ``shape (10)``, ``uv_root (2)``,
  ``scale (1)``. The toolbox poses MANO with ``flat_hand_mean=False`` (finger pose relative to ``hands_mean``)
  and places it so that its middle-finger MCP keypoint lands at
  ``xyz_root = ((u - cx) / scale, (v - cy) / scale, f / scale)``, ``f = (fx + fy) / 2``. The loader converts this
  to the sample convention (needs the right MANO model, ``hand_models``).
* One right hand per image; joints in ``openpose21`` order; no occlusion labels (``joint_visible = joint_valid``).

The v1 release has no evaluation joints or fits: evaluation samples then carry ``has_3d = False``, no valid
joint (``bbox`` zero) and ``has_params = False``. Evaluation masks are not read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from hand_recon_core.data.datasets._common import (
    bbox_from_keypoints,
    load_json,
    project_points,
    read_rgb,
    read_single_channel,
    require_dir,
    to_canonical_order,
)
from hand_recon_core.data.datasets._mano_params import axis_angle_to_rotation, build_converter
from hand_recon_core.data.sample import JOINT_ORDER, MASK_BACKGROUND, RIGHT, empty_hands
from hand_recon_core.hand_model.joint_orders import JOINT_NAMES
from hand_recon_core.hand_model.model_data import HandModelData

__all__ = ["FreiHANDDataset", "SAMPLE_VERSIONS"]

#: Training-image versions in file order.
SAMPLE_VERSIONS = ("gs", "hom", "sample", "auto")
_SPLITS = {"training": "training", "train": "training", "evaluation": "evaluation", "test": "evaluation"}
_SRC_ORDER = "openpose21"
#: Keypoint the toolbox's ``uv_root``/``scale`` place: the middle-finger MCP (a MANO kinematic joint).
_ROOT_KEYPOINT = "middle_mcp"
#: Threshold on the JPEG-compressed masks (0 background, 255 hand).
_MASK_THRESHOLD = 128


class FreiHANDDataset(Dataset):
    """FreiHAND images with one right hand each.

    Args:
        root: dataset root (holding ``training/``, ``evaluation/`` and the ``*.json`` files).
        split: ``"training"`` (alias ``"train"``) or ``"evaluation"`` (alias ``"test"``).
        versions: training-image versions to include (subset of ``SAMPLE_VERSIONS``); evaluation: ``("gs",)``.
        load_mask: return ``mask`` (training only).
        load_vertices: read ``*_verts.json`` (large) and return ``vertices_3d``.
        hand_models: the right MANO :class:`HandModelData`, needed to convert the fits; without it
            ``has_params`` is False.

    Raises:
        FileNotFoundError: the root or a required annotation file is missing (the message names the path).
        ValueError: unknown split or version.
    """

    name = "freihand"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "training",
        *,
        versions: Sequence[str] | None = None,
        load_mask: bool = True,
        load_vertices: bool = False,
        hand_models: Iterable[HandModelData] | None = None,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"FreiHAND split must be one of {sorted(_SPLITS)}, got {split!r}")
        self.split = _SPLITS[split]
        self.root = require_dir(root, "FreiHAND root")
        self.image_dir = self.root / self.split / "rgb"
        is_train = self.split == "training"
        if versions is None:
            versions = SAMPLE_VERSIONS if is_train else ("gs",)
        unknown = [v for v in versions if v not in SAMPLE_VERSIONS or (not is_train and v != "gs")]
        if unknown:
            raise ValueError(f"FreiHAND {self.split}: unknown or unavailable sample versions {unknown}")
        self.versions = tuple(versions)
        self.load_mask = load_mask and is_train

        path = self._annotation_path
        self._K = np.asarray(load_json(path("K"), "FreiHAND intrinsics"), dtype=np.float32).reshape(-1, 3, 3)
        n = len(self._K)
        self._xyz: np.ndarray | None = None
        if is_train or path("xyz").is_file():
            self._xyz = _array(load_json(path("xyz"), "FreiHAND joints"), (n, 21, 3), path("xyz"))
        self._mano: np.ndarray | None = None
        self._converter = build_converter(hand_models, self.name, (RIGHT,))
        if self._converter is not None and (is_train or path("mano").is_file()):
            self._mano = _array(load_json(path("mano"), "FreiHAND MANO fits"), (n, 61), path("mano"))
        self._verts: np.ndarray | None = None
        if load_vertices:
            self._verts = _array(load_json(path("verts"), "FreiHAND vertices"), (n, -1, 3), path("verts"))
        self._root_index = JOINT_NAMES[JOINT_ORDER].index(_ROOT_KEYPOINT)

    def _annotation_path(self, kind: str) -> Path:
        """``ROOT/{split}_{kind}.json`` (kind: K, xyz, mano, verts)."""
        return self.root / f"{self.split}_{kind}.json"

    @property
    def num_annotations(self) -> int:
        """Number of unique annotated samples ``n`` (32560 for the training release)."""
        return len(self._K)

    def __len__(self) -> int:
        return self.num_annotations * len(self.versions)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        version, aid = divmod(index, self.num_annotations)
        image_id = aid + self.num_annotations * SAMPLE_VERSIONS.index(self.versions[version])
        image = read_rgb(self.image_dir / f"{image_id:08d}.jpg")
        height, width = image.shape[:2]
        K = self._K[aid]

        hands = empty_hands(1)
        hands["handedness"][0] = RIGHT
        if self._xyz is not None:
            joints = to_canonical_order(self._xyz[aid], _SRC_ORDER)
            uv = project_points(joints, K)
            hands["joints_3d"][0] = joints
            hands["keypoints_2d"][0] = uv
            hands["joint_valid"][0] = 1.0
            hands["joint_visible"][0] = 1.0
            hands["has_3d"][0] = True
            hands["bbox"][0] = bbox_from_keypoints(uv, np.ones(21), width, height)
        if self._mano is not None:
            self._fill_params(hands, self._mano[aid], K)

        sample: dict[str, Any] = {"image": image, "K": K.copy(), **hands}
        if self.load_mask:
            raw = read_single_channel(self.root / self.split / "mask" / f"{aid:08d}.jpg", "FreiHAND mask")
            sample["mask"] = np.where(raw >= _MASK_THRESHOLD, 0, MASK_BACKGROUND).astype(np.int16)
        if self._verts is not None:
            sample["vertices_3d"] = self._verts[aid][None].copy()
        sample.update(
            dataset=self.name, sample_id=f"{self.split}/rgb/{image_id:08d}.jpg", hand_model_id="mano"
        )
        return sample

    def _fill_params(self, hands: dict[str, np.ndarray], theta: np.ndarray, K: np.ndarray) -> None:
        """Toolbox fit (pose, shape, uv_root, scale) -> absolute pose and smplx-style ``transl``."""
        assert self._converter is not None
        theta = theta.astype(np.float64)
        pose, betas, uv_root, scale = theta[:48], theta[48:58], theta[58:60], theta[60]
        focal = 0.5 * (K[0, 0] + K[1, 1])
        xyz_root = np.array([*(uv_root - K[:2, 2]), focal]) / scale
        joints = self._converter.rest_joints(betas, RIGHT)  # (16, 3) MANO native = first 16 of mano21
        rot = axis_angle_to_rotation(pose[:3])
        # posed root keypoint (child of the wrist) = J0 + R (J_k - J0) + transl  ->  solve for transl
        posed_without_transl = joints[0] + rot @ (joints[self._root_index] - joints[0])
        hands["hand_pose"][0, :3] = pose[:3]
        hands["hand_pose"][0, 3:] = self._converter.from_relative_pose(pose[3:], RIGHT)
        hands["betas"][0] = betas
        hands["transl"][0] = xyz_root - posed_without_transl
        hands["has_params"][0] = True


def _array(value: Any, shape: tuple[int, ...], path: os.PathLike[str]) -> np.ndarray:
    """float32 array of ``value`` reshaped to ``shape`` (``-1`` free), with the file named on mismatch."""
    arr = np.asarray(value, dtype=np.float32)
    try:
        return arr.reshape(shape)
    except ValueError:
        raise ValueError(f"{path}: expected {len(shape)}-D data of shape {shape}, got {arr.shape}") from None
