"""InterHand2.6M (v1.0, 5 fps release with NeuralAnnot MANO fits) in the project's sample format.

On-disk layout (verified against the dataset homepage https://mks0601.github.io/InterHand2.6M/ "Directory" and
"Annotation files" sections, the official loader ``data/InterHand2.6M/dataset.py`` and the MANO tools
``tool/MANO_render/render.py`` / ``tool/MANO_world_to_camera/convert.py`` of facebookresearch/InterHand2.6M, and
the real-file excerpts in open-mmlab/mmpose ``tests/data/interhand2.6m``)::

    ROOT/images/{split}/{file_name}                  file_name e.g. Capture0/<seq>/cam400002/image0000.jpg
    ROOT/annotations/{split}/InterHand2.6M_{split}_data.json
    ROOT/annotations/{split}/InterHand2.6M_{split}_camera.json
    ROOT/annotations/{split}/InterHand2.6M_{split}_joint_3d.json
    ROOT/annotations/{split}/InterHand2.6M_{split}_MANO_NeuralAnnot.json   (read when hand_models is given)

* ``_data.json``: COCO style. ``images[]``: id, file_name, width, height, capture, subject, seq_name, camera (str),
  frame_idx. ``annotations[]`` (one per image): id, image_id, bbox ``[x, y, w, h]`` (pixels, covers all hands),
  joint_valid (42 x [0/1]), hand_type (``"right"``, ``"left"``, ``"interacting"``), hand_type_valid.
* ``_camera.json``: ``{capture: {"campos": {cam: [3] mm}, "camrot": {cam: 3x3}, "focal": {cam: [fx, fy]},
  "princpt": {cam: [cx, cy]}}}``; world -> camera is ``R (X - campos)``; intrinsics apply to the images as
  distributed.
* ``_joint_3d.json``: ``{capture: {frame_idx: {"world_coord": 42 x 3 (mm), "joint_valid", "hand_type",
  "hand_type_valid"}}}``. Joints 0-20 are the right hand, 21-41 the left, each in the InterHand order
  (``interhand21``: thumb tip..base, index, middle, ring, pinky, then the wrist).
* ``_MANO_NeuralAnnot.json``: ``{capture: {frame_idx: {"right": {"pose": 48, "shape": 10, "trans": 3} | null,
  "left": ...}}}``, fitted in the **world** frame in metres with smplx MANO layers built with ``use_pca=False``
  and smplx's default ``flat_hand_mean=False`` (the finger pose is relative to ``hands_mean``).

Conversions: joints are taken to the camera frame with ``R (X - campos)`` and to metres; ``keypoints_2d`` are their
projections through ``K``. ``joint_valid`` is the annotation's ``joint_valid`` (the official loader additionally
invalidates a whole hand whose root is invalid for root-relative training; apply that in the consumer if wanted).
``joint_visible`` equals ``joint_valid`` (no occlusion labels). Hands come from ``hand_type`` when
``hand_type_valid`` (else from the joint validity), a hand without any valid joint and without MANO fit is
dropped, right before left. ``bbox`` is the box of the hand's valid keypoints (the annotation's box when none).

The older release kept annotations in ``annotations/{all,human_annot,machine_annot}/``; pass ``annot_dir`` to use
one of those folders.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from hand_recon_core.data.datasets._common import (
    bbox_from_keypoints,
    flags_to_canonical_order,
    intrinsics_matrix,
    load_json,
    project_points,
    read_rgb,
    require_dir,
    to_canonical_order,
)
from hand_recon_core.data.datasets._mano_params import build_converter, change_param_frame
from hand_recon_core.data.sample import HANDEDNESS_NAMES, LEFT, RIGHT, empty_hands
from hand_recon_core.hand_model.model_data import HandModelData

__all__ = ["InterHand26MDataset"]

_SPLITS = ("train", "val", "test")
_SRC_ORDER = "interhand21"
_HAND_SLICES = {RIGHT: slice(0, 21), LEFT: slice(21, 42)}
_HAND_TYPES = {"right": (RIGHT,), "left": (LEFT,), "interacting": (RIGHT, LEFT)}
_MM = 1000.0


class InterHand26MDataset(Dataset):
    """InterHand2.6M images with both hands' joints (and MANO fits) in the sample format.

    Args:
        root: dataset root (holding ``images/`` and ``annotations/``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        annot_dir: annotation sub-folder of ``ROOT/annotations`` (default: ``split``).
        hand_models: right and left MANO :class:`HandModelData`, needed to convert the NeuralAnnot fits
            (world frame, mean-relative finger pose) to the sample convention; without them ``has_params`` is
            False.

    Raises:
        FileNotFoundError: the root, the annotation folder or an annotation file (the MANO file when
            ``hand_models`` is given) is missing; the message names the expected path. A missing image raises
            when its sample is read.
        ValueError: unknown split.
    """

    name = "interhand"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        annot_dir: str | None = None,
        hand_models: Iterable[HandModelData] | None = None,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"InterHand2.6M split must be one of {_SPLITS}, got {split!r}")
        self.root = require_dir(root, "InterHand2.6M root")
        self.split = split
        self.image_dir = self.root / "images" / split
        annot = require_dir(self.root / "annotations" / (annot_dir or split), "InterHand2.6M annotation folder")
        prefix = f"InterHand2.6M_{split}_"
        data = load_json(annot / f"{prefix}data.json", "InterHand2.6M image/annotation list")
        self._cameras: dict[str, Any] = load_json(annot / f"{prefix}camera.json", "InterHand2.6M cameras")
        self._joints: dict[str, Any] = load_json(annot / f"{prefix}joint_3d.json", "InterHand2.6M 3D joints")
        mano_path = annot / f"{prefix}MANO_NeuralAnnot.json"
        self._converter = build_converter(hand_models, self.name, (RIGHT, LEFT))
        self._mano: dict[str, Any] = {}
        if self._converter is not None:
            self._mano = load_json(mano_path, "InterHand2.6M NeuralAnnot MANO fits")

        images = {img["id"]: img for img in data["images"]}
        self._items: list[tuple[dict[str, Any], dict[str, Any]]] = [
            (images[ann["image_id"]], ann) for ann in data["annotations"]
        ]

    def __len__(self) -> int:
        return len(self._items)

    def _hands(self, ann: dict[str, Any], valid: np.ndarray) -> list[int]:
        """Handedness codes of the hands annotated in this image (before dropping empty ones)."""
        if ann.get("hand_type_valid", 1):
            hand_type = ann["hand_type"]
            if hand_type not in _HAND_TYPES:
                raise ValueError(f"InterHand2.6M annotation {ann['id']}: unknown hand_type {hand_type!r}")
            return list(_HAND_TYPES[hand_type])
        return [h for h in (RIGHT, LEFT) if valid[_HAND_SLICES[h]].any()]

    def __getitem__(self, index: int) -> dict[str, Any]:
        img_info, ann = self._items[index]
        capture, frame, cam = str(img_info["capture"]), str(img_info["frame_idx"]), str(img_info["camera"])
        cam_params = self._cameras[capture]
        campos = np.asarray(cam_params["campos"][cam], dtype=np.float64).reshape(3)  # mm, world frame
        camrot = np.asarray(cam_params["camrot"][cam], dtype=np.float64).reshape(3, 3)
        K = intrinsics_matrix(*cam_params["focal"][cam], *cam_params["princpt"][cam])

        world = np.asarray(self._joints[capture][frame]["world_coord"], dtype=np.float64).reshape(42, 3)
        joints_cam = (world - campos) @ camrot.T / _MM  # metres, camera frame
        valid = np.asarray(ann["joint_valid"], dtype=np.float32).reshape(42)
        mano_frame = self._mano.get(capture, {}).get(frame, {}) if self._converter is not None else {}

        image = read_rgb(self.image_dir / img_info["file_name"])
        height, width = image.shape[:2]
        keep = [
            h
            for h in self._hands(ann, valid)
            if valid[_HAND_SLICES[h]].any() or mano_frame.get(HANDEDNESS_NAMES[h]) is not None
        ]
        hands = empty_hands(len(keep))
        bx, by, bw, bh = (float(v) for v in ann["bbox"])  # xywh, all hands
        for i, side in enumerate(keep):
            joints = to_canonical_order(joints_cam[_HAND_SLICES[side]], _SRC_ORDER)
            jvalid = flags_to_canonical_order(valid[_HAND_SLICES[side]], _SRC_ORDER)
            uv = project_points(joints, K)
            hands["handedness"][i] = side
            hands["joints_3d"][i] = joints * jvalid[:, None]
            hands["keypoints_2d"][i] = np.where(jvalid[:, None] > 0, uv, 0.0)
            hands["joint_valid"][i] = jvalid
            hands["joint_visible"][i] = jvalid
            hands["has_3d"][i] = bool(jvalid.any())
            box = bbox_from_keypoints(uv, jvalid, width, height)
            hands["bbox"][i] = box if jvalid.any() else [bx, by, bx + bw, by + bh]
            params = mano_frame.get(HANDEDNESS_NAMES[side])
            if params is not None:
                self._fill_params(hands, i, side, params, camrot, campos)

        return {
            "image": image,
            "K": K,
            **hands,
            "dataset": self.name,
            "sample_id": f"{self.split}/{img_info['file_name']}",
            "hand_model_id": "mano",
        }

    def _fill_params(
        self, hands: dict[str, np.ndarray], i: int, side: int, params: dict[str, Any], camrot: np.ndarray,
        campos: np.ndarray,
    ) -> None:
        """World-frame, mean-relative NeuralAnnot fit -> camera-frame absolute parameters of hand ``i``."""
        assert self._converter is not None
        pose = np.asarray(params["pose"], dtype=np.float64).reshape(48)
        betas = np.asarray(params["shape"], dtype=np.float64).reshape(10)
        trans = np.asarray(params["trans"], dtype=np.float64).reshape(3)
        root = self._converter.rest_joints(betas, side)[0]
        # world (metres) -> camera: x_cam = R x_world - R campos / 1000
        orient, transl = change_param_frame(pose[:3], trans, root, camrot, -camrot @ campos / _MM)
        hands["hand_pose"][i, :3] = orient
        hands["hand_pose"][i, 3:] = self._converter.from_relative_pose(pose[3:], side)
        hands["betas"][i] = betas
        hands["transl"][i] = transl
        hands["has_params"][i] = True

