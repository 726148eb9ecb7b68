"""RHD, the Rendered Hand Pose Dataset (v1.1, ``RHD_published_v2``), in the project's sample format.

On-disk layout (verified against lmb-freiburg/hand3d ``create_binary_db.py`` and ``data/BinaryDbReader.py`` (file
names, annotation keys and units, the mask classes of each hand), the ``depth_two_uint8_to_float`` helper of the
dataset's ``view_samples.py`` as reproduced in many public loaders, and open-mmlab/mmpose ``Rhd2DDataset``
(keypoint names))::

    ROOT/{training,evaluation}/color/%05d.png      320 x 320 RGB
    ROOT/{training,evaluation}/mask/%05d.png       0 background, 1 person, 2-17 left hand, 18-33 right hand
    ROOT/{training,evaluation}/depth/%05d.png      depth = (256 R + G) / (2^16 - 1) * 5 metres
    ROOT/{training,evaluation}/anno_{training,evaluation}.pickle

* ``anno_*.pickle`` (Python 2 pickle, read with the restricted unpickler): ``{sample_id: {"xyz": (42, 3)
  metres, camera frame, "uv_vis": (42, 3) u, v pixels and visibility 0/1, "K": (3, 3)}}``; keypoints 0-20 are
  the left hand, 21-41 the right hand; ``uv = K xyz / z`` (OpenCV frame, no flips).
* Keypoint order per hand (``RHD21_NAMES``): wrist, then thumb, index, middle, ring, pinky, each from the tip to
  the base (mmpose: ``wrist, thumb4 .. thumb1, forefinger4 .. forefinger1, ...``). This order is not one of
  :mod:`hand_recon_core.hand_model.joint_orders`' (which has no public way to add one), so it is defined here
  from that module's joint names: it is ``interhand21`` with the wrist moved to the front.
* Both hands are annotated in every frame, also when outside the image or hidden: a hand is returned when at
  least one of its keypoints is visible or its mask has a pixel. All 21 joints of a returned hand are valid;
  ``joint_visible`` is ``uv_vis[:, 2]``.
* ``mask`` maps the hand classes to the returned hands' instance ids. The mask's 16 per-hand part classes are
  not converted to ``part_seg``: their order within a hand is not documented in anything checked here.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

from hand_recon_core.data.datasets._common import (
    bbox_from_keypoints,
    read_rgb,
    read_single_channel,
    require_dir,
    require_file,
)
from hand_recon_core.data.datasets._safe_pickle import safe_load_pickle
from hand_recon_core.data.sample import JOINT_ORDER, LEFT, MASK_BACKGROUND, RIGHT, empty_hands
from hand_recon_core.hand_model.joint_orders import JOINT_NAMES

__all__ = ["RHDDataset", "RHD21_NAMES", "RHD_TO_CANONICAL"]

#: RHD keypoint order of one hand, in the joint names of ``joint_orders`` (wrist, then fingers tip to base).
RHD21_NAMES: tuple[str, ...] = ("wrist", *JOINT_NAMES["interhand21"][:20])
#: ``canonical = rhd[..., RHD_TO_CANONICAL, :]`` (to the sample format's ``JOINT_ORDER``).
RHD_TO_CANONICAL = np.array([RHD21_NAMES.index(n) for n in JOINT_NAMES[JOINT_ORDER]], dtype=np.int64)

_SPLITS = {"training": "training", "train": "training", "evaluation": "evaluation", "test": "evaluation"}
_HANDS = {LEFT: (slice(0, 21), (2, 17)), RIGHT: (slice(21, 42), (18, 33))}  # keypoints, mask class range
_DEPTH_MAX = 5.0  # metres at code 2^16 - 1


class RHDDataset(Dataset):
    """Rendered Hand Pose Dataset frames (synthetic, up to two hands).

    Args:
        root: dataset root (``RHD_published_v2``, holding ``training/`` and ``evaluation/``).
        split: ``"training"`` (alias ``"train"``) or ``"evaluation"`` (alias ``"test"``).
        load_mask: return ``mask`` (the mask is read anyway to decide which hands are present).
        load_depth: return ``depth``.

    Raises:
        FileNotFoundError: the root, the split folder or the annotation pickle is missing (the message names the
            path); a missing image or mask raises when its sample is read.
        pickle.UnpicklingError: the annotation pickle references anything but numpy arrays.
        ValueError: unknown split.
    """

    name = "rhd"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "training",
        *,
        load_mask: bool = True,
        load_depth: bool = False,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"RHD split must be one of {sorted(_SPLITS)}, got {split!r}")
        self.split = _SPLITS[split]
        self.root = require_dir(root, "RHD root")
        self.split_dir = require_dir(self.root / self.split, f"RHD {self.split} folder")
        annotations = safe_load_pickle(
            require_file(self.split_dir / f"anno_{self.split}.pickle", "RHD annotations")
        )
        self._ids = sorted(int(k) for k in annotations)
        self._annotations = {int(k): v for k, v in annotations.items()}
        self.load_mask, self.load_depth = load_mask, load_depth

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample_id = self._ids[index]
        anno = self._annotations[sample_id]
        xyz = np.asarray(anno["xyz"], dtype=np.float32).reshape(42, 3)
        uv_vis = np.asarray(anno["uv_vis"], dtype=np.float32).reshape(42, 3)
        name = f"{sample_id:05d}.png"
        image = read_rgb(self.split_dir / "color" / name)
        raw_mask = read_single_channel(self.split_dir / "mask" / name, "RHD mask")

        present = []
        for side in (RIGHT, LEFT):
            keypoints, (lo, hi) = _HANDS[side]
            if uv_vis[keypoints, 2].any() or np.any((raw_mask >= lo) & (raw_mask <= hi)):
                present.append(side)
        hands = empty_hands(len(present))
        mask = np.full(raw_mask.shape, MASK_BACKGROUND, dtype=np.int16)
        height, width = image.shape[:2]
        for i, side in enumerate(present):
            keypoints, (lo, hi) = _HANDS[side]
            uv = uv_vis[keypoints, :2][RHD_TO_CANONICAL]
            hands["handedness"][i] = side
            hands["joints_3d"][i] = xyz[keypoints][RHD_TO_CANONICAL]
            hands["keypoints_2d"][i] = uv
            hands["joint_valid"][i] = 1.0
            hands["joint_visible"][i] = (uv_vis[keypoints, 2][RHD_TO_CANONICAL] > 0).astype(np.float32)
            hands["has_3d"][i] = True
            hands["bbox"][i] = bbox_from_keypoints(uv, hands["joint_valid"][i], width, height)
            mask[(raw_mask >= lo) & (raw_mask <= hi)] = i

        sample: dict[str, Any] = {"image": image, "K": np.asarray(anno["K"], dtype=np.float32).reshape(3, 3)}
        sample.update(hands)
        if self.load_mask:
            sample["mask"] = mask
        if self.load_depth:
            sample["depth"] = self._read_depth(self.split_dir / "depth" / name)
        sample.update(dataset=self.name, sample_id=f"{self.split}/color/{name}", hand_model_id="mano")
        return sample

    @staticmethod
    def _read_depth(path: os.PathLike[str]) -> np.ndarray:
        """(H, W) float32 metres from the two-channel depth PNG (R: high byte, G: low byte)."""
        bgr = cv2.imread(os.fspath(require_file(path, "RHD depth")), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot decode RHD depth {path}")
        code = 256.0 * bgr[..., 2].astype(np.float64) + bgr[..., 1].astype(np.float64)
        return (code / (2**16 - 1) * _DEPTH_MAX).astype(np.float32)
