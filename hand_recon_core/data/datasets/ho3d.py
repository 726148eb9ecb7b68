"""HO3D (v2 and v3) in the project's sample format.

On-disk layout (verified against the official scripts shreyashampali/ho3d: ``utils/vis_utils.py``
``read_RGB_img`` / ``read_depth_img`` / ``read_annotation`` / ``project_3D_points``, ``vis_HO3D.py``
``forwardKinematics`` / ``jointsMapManoToSimple``, ``pred.py`` and the README)::

    ROOT/train.txt, ROOT/evaluation.txt      one "SEQ/ID" per line
    ROOT/{split}/SEQ/rgb/ID.png              v2 (v3: ID.jpg); 640 x 480
    ROOT/{split}/SEQ/depth/ID.png            depth = (R + 256 G) * 0.00012498664727900177 metres
    ROOT/{split}/SEQ/meta/ID.pkl             annotation pickle (read with the restricted unpickler)

* Training meta: ``handJoints3D`` (21, 3) metres, ``handPose`` (48) axis-angle, ``handBeta`` (10), ``handTrans``
  (3) metres, ``camMat`` (3, 3), plus object keys (``objRot``, ``objTrans``, ``objName``, ``objCorners3D``...).
  Frames without annotation hold ``None``; they give samples without hands.
* Evaluation meta: only the root joint ``handJoints3D`` (3,) (the wrist) and ``handBoundingBox``
  ``[x1, y1, x2, y2]`` pixels, plus ``camMat`` and the object pose.
* Coordinates are in an **OpenGL** camera frame (y up, z backwards): the toolkit multiplies by
  ``diag(1, -1, -1)`` before projecting with ``camMat``; the loader does the same for joints and parameters.
* ``handJoints3D`` is in the MANO order with appended tips (the toolkit's ``jointsMapManoToSimple`` maps it to the
  OpenPose order), i.e. ``mano21``; several public HO3D loaders name the same order ``Wrist, Index_1..3,
  Middle_1..3, Pinky_1..3, Ring_1..3, Thumb_1..4, Index_4, Middle_4, Ring_4, Pinky_4``.
* ``handPose`` is used by the toolkit with ``flat_hand_mean=True``: it is already absolute. The translation is
  MANO's ``trans`` in the OpenGL frame; moving it to the OpenCV frame needs the rest root joint ``J0(betas)``,
  so ``has_params`` needs the right MANO model (``hand_models``).
* One right hand per frame (HO3D); no occlusion labels (``joint_visible = joint_valid``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

from hand_recon_core.data.datasets._common import (
    bbox_from_keypoints,
    project_points,
    read_rgb,
    require_dir,
    require_file,
    to_canonical_order,
)
from hand_recon_core.data.datasets._mano_params import build_converter, change_param_frame
from hand_recon_core.data.datasets._safe_pickle import safe_load_pickle
from hand_recon_core.data.sample import JOINT_ORDER, RIGHT, empty_hands
from hand_recon_core.hand_model.joint_orders import JOINT_NAMES
from hand_recon_core.hand_model.model_data import HandModelData

__all__ = ["HO3DDataset", "OPENGL_TO_OPENCV", "DEPTH_SCALE"]

_SPLITS = {"train": "train", "evaluation": "evaluation", "eval": "evaluation", "test": "evaluation"}
_SRC_ORDER = "mano21"
#: Change of camera frame OpenGL (x right, y up, z backwards) -> OpenCV (x right, y down, z forward).
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
#: Metres per unit of the 16-bit depth code of the HO3D depth PNGs.
DEPTH_SCALE = 0.00012498664727900177


class HO3DDataset(Dataset):
    """HO3D frames (one right hand manipulating a YCB object).

    Args:
        root: dataset root (holding ``train/``, ``evaluation/``, ``train.txt``, ``evaluation.txt``).
        split: ``"train"`` or ``"evaluation"`` (aliases ``"eval"``, ``"test"``).
        load_depth: return ``depth``.
        hand_models: the right MANO :class:`HandModelData`, needed to move the training fits to the OpenCV
            frame; without it ``has_params`` is False.

    Raises:
        FileNotFoundError: the root, the split folder or the split list is missing (the message names the
            path); a missing image or meta file raises when its sample is read.
        ValueError: unknown split.
    """

    name = "ho3d"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        load_depth: bool = False,
        hand_models: Iterable[HandModelData] | None = None,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"HO3D split must be one of {sorted(_SPLITS)}, got {split!r}")
        self.split = _SPLITS[split]
        self.root = require_dir(root, "HO3D root")
        self.split_dir = require_dir(self.root / self.split, f"HO3D {self.split} folder")
        list_path = require_file(self.root / f"{self.split}.txt", f"HO3D {self.split} file list")
        lines = (line.strip() for line in list_path.read_text().splitlines())
        self._frames = [tuple(line.split("/")) for line in lines if line]
        bad = [f for f in self._frames if len(f) != 2]
        if bad:
            raise ValueError(f"{list_path}: expected 'SEQ/ID' lines, got {'/'.join(bad[0])!r}")
        self.load_depth = load_depth
        self._converter = build_converter(hand_models, self.name, (RIGHT,)) if self.split == "train" else None
        self._wrist = JOINT_NAMES[JOINT_ORDER].index("wrist")

    def __len__(self) -> int:
        return len(self._frames)

    def _image_path(self, seq: str, frame: str) -> Path:
        for ext in (".jpg", ".png"):  # v3 ships jpg, v2 png
            path = self.split_dir / seq / "rgb" / f"{frame}{ext}"
            if path.is_file():
                return path
        raise FileNotFoundError(f"HO3D image: expected {self.split_dir / seq / 'rgb' / frame}.jpg or .png")

    def __getitem__(self, index: int) -> dict[str, Any]:
        seq, frame = self._frames[index]
        meta = safe_load_pickle(require_file(self.split_dir / seq / "meta" / f"{frame}.pkl", "HO3D meta"))
        image = read_rgb(self._image_path(seq, frame))
        height, width = image.shape[:2]
        K = np.asarray(meta["camMat"], dtype=np.float32).reshape(3, 3)

        joints_gl = meta.get("handJoints3D")
        hands = empty_hands(0 if joints_gl is None else 1)
        if joints_gl is not None:
            joints_gl = np.asarray(joints_gl, dtype=np.float64)
            hands["handedness"][0] = RIGHT
            hands["has_3d"][0] = True
            if joints_gl.shape == (3,):  # evaluation: root joint and box only
                wrist = OPENGL_TO_OPENCV @ joints_gl
                hands["joints_3d"][0, self._wrist] = wrist
                hands["keypoints_2d"][0, self._wrist] = project_points(wrist, K)
                hands["joint_valid"][0, self._wrist] = 1.0
                hands["bbox"][0] = np.asarray(meta["handBoundingBox"], dtype=np.float32).reshape(4)
            else:
                joints = to_canonical_order(joints_gl.reshape(21, 3) @ OPENGL_TO_OPENCV.T, _SRC_ORDER)
                uv = project_points(joints, K)
                hands["joints_3d"][0] = joints
                hands["keypoints_2d"][0] = uv
                hands["joint_valid"][0] = 1.0
                hands["bbox"][0] = bbox_from_keypoints(uv, np.ones(21), width, height)
                if self._converter is not None and meta.get("handPose") is not None:
                    self._fill_params(hands, meta)
            hands["joint_visible"][0] = hands["joint_valid"][0]

        sample: dict[str, Any] = {"image": image, "K": K, **hands}
        if self.load_depth:
            sample["depth"] = self._read_depth(seq, frame)
        sample.update(dataset=self.name, sample_id=f"{self.split}/{seq}/{frame}", hand_model_id="mano")
        return sample

    def _fill_params(self, hands: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """OpenGL-frame absolute fit -> OpenCV-frame parameters."""
        assert self._converter is not None
        pose = np.asarray(meta["handPose"], dtype=np.float64).reshape(48)
        betas = np.asarray(meta["handBeta"], dtype=np.float64).reshape(10)
        trans = np.asarray(meta["handTrans"], dtype=np.float64).reshape(3)
        root = self._converter.rest_joints(betas, RIGHT)[0]
        orient, transl = change_param_frame(pose[:3], trans, root, OPENGL_TO_OPENCV, np.zeros(3))
        hands["hand_pose"][0, :3] = orient
        hands["hand_pose"][0, 3:] = pose[3:]
        hands["betas"][0] = betas
        hands["transl"][0] = transl
        hands["has_params"][0] = True

    def _read_depth(self, seq: str, frame: str) -> np.ndarray:
        """(H, W) float32 metres from the RG-coded depth PNG (0 where there is no measurement)."""
        path = require_file(self.split_dir / seq / "depth" / f"{frame}.png", "HO3D depth")
        bgr = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if bgr is None:
            raise ValueError(f"cannot decode HO3D depth {path}")
        code = bgr[..., 2].astype(np.float64) + 256.0 * bgr[..., 1].astype(np.float64)
        return (code * DEPTH_SCALE).astype(np.float32)
