"""Dex-YCB in the project's sample format.

On-disk layout (verified against the official toolkit NVlabs/dex-ycb-toolkit: ``dex_ycb_toolkit/dex_ycb.py``
``DexYCBDataset`` (setups, splits, file names), ``sequence_loader.py`` (meta keys, intrinsics, depth units),
``layers/mano_layer.py`` and ``examples/visualize_pose.py`` (MANO convention), ``coco_eval.py`` and
``hpe_eval.py`` (label keys, hand label 255, missing-hand markers))::

    ROOT/<subject>/<sequence>/meta.yml                 serials, num_frames, mano_sides, mano_calib, ycb_ids, ...
    ROOT/<subject>/<sequence>/<serial>/color_%06d.jpg  640 x 480 RGB
    ROOT/<subject>/<sequence>/<serial>/aligned_depth_to_color_%06d.png   uint16 millimetres
    ROOT/<subject>/<sequence>/<serial>/labels_%06d.npz seg, pose_y, pose_m, joint_3d, joint_2d
    ROOT/calibration/intrinsics/<serial>_640x480.yml   color: {fx, fy, ppx, ppy}
    ROOT/calibration/mano_<mano_calib>/mano.yml        betas: [10]

* ``labels_*.npz``: ``joint_3d`` (1, 21, 3) metres and ``joint_2d`` (1, 21, 2) pixels, both all ``-1`` when the
  frame has no hand; ``pose_m`` (1, 51): global orient (3), 45 PCA coefficients, translation (3) metres, all 0
  without hand; ``seg`` (480, 640): 0 background, YCB ids for objects, 255 for the hand.
* Joint order: ``wrist, thumb_mcp, thumb_pip, thumb_dip, thumb_tip, index_mcp, ...`` (the toolkit's
  ``_MANO_JOINTS``), i.e. the OpenPose order (``openpose21``; Dex-YCB's "thumb_mcp" is the CMC joint of the
  other conventions).
* MANO: manopth ``ManoLayer(use_pca=True, ncomps=45, flat_hand_mean=False)``, so the finger pose is
  ``hands_mean + coeffs @ hands_components``; everything is in the OpenCV camera frame of each serial (the
  toolkit flips y and z only to render with pyrender). Converting the PCA pose needs the MANO model of the
  hand's side (``hand_models``).
* One hand per sequence (``mano_sides[0]``, ``"right"`` or ``"left"``); no occlusion labels.

Splits follow the toolkit's setups ``s0`` (default; seen subjects/views/objects), ``s1`` (unseen subjects),
``s2`` (unseen views), ``s3`` (unseen objects) with ``train``/``val``/``test``; ``"all"`` takes every frame.
Subjects, serials and sequences are indexed in sorted order, as in the toolkit (its subject and serial lists are
sorted; sequences are sorted directory listings). Subject folders are the root's sub-folders whose name starts
with an 8-digit date and a dash (e.g. ``20200709-subject-01``).
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from torch.utils.data import Dataset

from hand_recon_core.data.datasets._common import (
    bbox_from_keypoints,
    intrinsics_matrix,
    read_rgb,
    require_dir,
    require_file,
    to_canonical_order,
)
from hand_recon_core.data.datasets._mano_params import build_converter
from hand_recon_core.data.sample import MASK_BACKGROUND, empty_hands, handedness_from_name
from hand_recon_core.hand_model.model_data import HandModelData

__all__ = ["DexYCBDataset", "SETUPS"]

_SRC_ORDER = "openpose21"
_HAND_LABEL = 255
_DEPTH_SCALE = 1e-3  # metres per unit of the uint16 depth PNGs
_SUBJECT_PATTERN = re.compile(r"^\d{8}-")

_Rule = Callable[[int], bool]


def _every(index: int) -> bool:
    return True


def _among(*indices: int) -> _Rule:
    return lambda i: i in indices


#: setup -> split -> (subject rule, serial rule, sequence rule) on the sorted indices (toolkit's ``dex_ycb.py``).
SETUPS: dict[str, dict[str, tuple[_Rule, _Rule, _Rule]]] = {
    "s0": {
        "train": (_every, _every, lambda i: i % 5 != 4),
        "val": (_among(0, 1), _every, lambda i: i % 5 == 4),
        "test": (_among(2, 3, 4, 5, 6, 7, 8, 9), _every, lambda i: i % 5 == 4),
    },
    "s1": {
        "train": (_among(0, 1, 2, 3, 4, 5, 9), _every, _every),
        "val": (_among(6), _every, _every),
        "test": (_among(7, 8), _every, _every),
    },
    "s2": {
        "train": (_every, _among(0, 1, 2, 3, 4, 5), _every),
        "val": (_every, _among(6), _every),
        "test": (_every, _among(7), _every),
    },
    "s3": {
        "train": (_every, _every, lambda i: i // 5 not in (3, 7, 11, 15, 19)),
        "val": (_every, _every, lambda i: i // 5 in (3, 19)),
        "test": (_every, _every, lambda i: i // 5 in (7, 11, 15)),
    },
}


def _load_yaml(path: Path, what: str) -> Any:
    with open(require_file(path, what), encoding="utf-8") as f:
        return yaml.safe_load(f)


class DexYCBDataset(Dataset):
    """Dex-YCB frames (one hand grasping YCB objects), one sample per camera and frame.

    Args:
        root: dataset root (``DEX_YCB_DIR``: subject folders and ``calibration/``).
        split: ``"train"``, ``"val"``, ``"test"`` of ``setup``, or ``"all"``.
        setup: ``"s0"`` .. ``"s3"``.
        load_mask: return ``mask`` (the hand's pixels of ``seg``).
        load_depth: return ``depth``.
        hand_models: MANO :class:`HandModelData` of the sides used by the selected sequences, needed to convert
            the PCA pose; without them ``has_params`` is False.

    Raises:
        FileNotFoundError: the root, a ``meta.yml`` or a calibration file is missing (the message names the
            path); a missing image or label file raises when its sample is read.
        ValueError: unknown setup or split.
    """

    name = "dexycb"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        setup: str = "s0",
        load_mask: bool = True,
        load_depth: bool = False,
        hand_models: Iterable[HandModelData] | None = None,
    ) -> None:
        if setup not in SETUPS:
            raise ValueError(f"Dex-YCB setup must be one of {sorted(SETUPS)}, got {setup!r}")
        if split != "all" and split not in SETUPS[setup]:
            raise ValueError(f"Dex-YCB split must be 'all' or one of {sorted(SETUPS[setup])}, got {split!r}")
        self.root = require_dir(root, "Dex-YCB root")
        self.split, self.setup = split, setup
        self.load_mask, self.load_depth = load_mask, load_depth
        subject_ok, serial_ok, sequence_ok = (_every, _every, _every) if split == "all" else SETUPS[setup][split]

        subjects = sorted(p for p in self.root.iterdir() if p.is_dir() and _SUBJECT_PATTERN.match(p.name))
        if not subjects:
            raise FileNotFoundError(f"Dex-YCB: no subject folders (e.g. 20200709-subject-01) in {self.root}")
        self._intrinsics: dict[str, np.ndarray] = {}
        self._sequences: list[dict[str, Any]] = []  # per selected sequence: dir, side, betas
        self._blocks: list[tuple[int, str, int]] = []  # (sequence index, serial, number of frames)
        for s_idx, subject in enumerate(subjects):
            if not subject_ok(s_idx):
                continue
            for q_idx, seq_dir in enumerate(sorted(p for p in subject.iterdir() if p.is_dir())):
                if sequence_ok(q_idx):
                    self._add_sequence(seq_dir, serial_ok)
        self._starts = np.cumsum([0] + [n for _, _, n in self._blocks]).tolist()
        sides = {seq["handedness"] for seq in self._sequences}
        self._converter = build_converter(hand_models, self.name, sides)

    def _add_sequence(self, seq_dir: Path, serial_ok: _Rule) -> None:
        meta = _load_yaml(seq_dir / "meta.yml", "Dex-YCB sequence meta")
        calib = _load_yaml(self.root / "calibration" / f"mano_{meta['mano_calib'][0]}" / "mano.yml",
                           "Dex-YCB MANO calibration")
        self._sequences.append(
            {
                "dir": seq_dir,
                "handedness": handedness_from_name(meta["mano_sides"][0]),
                "betas": np.asarray(calib["betas"], dtype=np.float32).reshape(10),
            }
        )
        for c_idx, serial in enumerate(sorted(str(s) for s in meta["serials"])):
            if not serial_ok(c_idx):
                continue
            if serial not in self._intrinsics:
                intr = _load_yaml(self.root / "calibration" / "intrinsics" / f"{serial}_640x480.yml",
                                  "Dex-YCB camera intrinsics")["color"]
                self._intrinsics[serial] = intrinsics_matrix(intr["fx"], intr["fy"], intr["ppx"], intr["ppy"])
            self._blocks.append((len(self._sequences) - 1, serial, int(meta["num_frames"])))

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        block = bisect.bisect_right(self._starts, index) - 1
        seq_index, serial, _ = self._blocks[block]
        frame = index - self._starts[block]
        seq = self._sequences[seq_index]
        cam_dir = seq["dir"] / serial
        K = self._intrinsics[serial].copy()
        image = read_rgb(cam_dir / f"color_{frame:06d}.jpg")
        height, width = image.shape[:2]
        with np.load(require_file(cam_dir / f"labels_{frame:06d}.npz", "Dex-YCB labels")) as label:
            joint_3d = label["joint_3d"].reshape(21, 3).astype(np.float64)
            joint_2d = label["joint_2d"].reshape(21, 2).astype(np.float64)
            pose_m = label["pose_m"].reshape(51).astype(np.float64)
            seg = label["seg"] if self.load_mask else None

        has_hand = not np.all(joint_3d == -1)
        hands = empty_hands(1 if has_hand else 0)
        if has_hand:
            side = seq["handedness"]
            uv = to_canonical_order(joint_2d, _SRC_ORDER)
            hands["handedness"][0] = side
            hands["joints_3d"][0] = to_canonical_order(joint_3d, _SRC_ORDER)
            hands["keypoints_2d"][0] = uv
            hands["joint_valid"][0] = 1.0
            hands["joint_visible"][0] = 1.0
            hands["has_3d"][0] = True
            hands["bbox"][0] = bbox_from_keypoints(uv, np.ones(21), width, height)
            if self._converter is not None and np.any(pose_m != 0):
                hands["hand_pose"][0, :3] = pose_m[:3]
                hands["hand_pose"][0, 3:] = self._converter.from_pca_pose(pose_m[3:48], side)
                hands["betas"][0] = seq["betas"]
                hands["transl"][0] = pose_m[48:51]
                hands["has_params"][0] = True

        sample: dict[str, Any] = {"image": image, "K": K, **hands}
        if seg is not None:
            hand_pixels = (seg == _HAND_LABEL) & has_hand
            sample["mask"] = np.where(hand_pixels, 0, MASK_BACKGROUND).astype(np.int16)
        if self.load_depth:
            sample["depth"] = self._read_depth(cam_dir / f"aligned_depth_to_color_{frame:06d}.png")
        rel = cam_dir.relative_to(self.root).as_posix()
        sample.update(dataset=self.name, sample_id=f"{rel}/color_{frame:06d}.jpg", hand_model_id="mano")
        return sample

    @staticmethod
    def _read_depth(path: Path) -> np.ndarray:
        """(H, W) float32 metres from the uint16 millimetre PNG."""
        depth = cv2.imread(os.fspath(require_file(path, "Dex-YCB depth")), cv2.IMREAD_ANYDEPTH)
        if depth is None:
            raise ValueError(f"cannot decode Dex-YCB depth {path}")
        return (depth.astype(np.float64) * _DEPTH_SCALE).astype(np.float32)
