"""Trivial baselines for ``hand-recon eval --baseline``: how much of a score comes from the hand pose at all.

``mean-pose``: every predicted hand keeps its detection (box, score, handedness, 2D keypoints) and its predicted
wrist position, but its 3D joints and vertices are replaced by the *mean* root-relative hand of its side over the
evaluated ground truth (wrist = joint 0, camera frame, metres), placed at the predicted wrist. Using the
evaluation set's own mean makes the baseline slightly stronger than a training-set mean would (it knows the test
distribution of global orientations and poses), so beating it is a conservative claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hand_recon_core.training.evaluator import Evaluator

__all__ = ["BASELINES", "BaselineRecorder", "MeanHand", "mean_pose_predictions"]

#: Names accepted by ``hand-recon eval --baseline``.
BASELINES = ("mean-pose",)


class MeanHand:
    """Running mean of root-relative ground-truth joints (21, 3) and vertices (V, 3) per handedness."""

    def __init__(self) -> None:
        self._sum: dict[tuple[int, str], np.ndarray] = {}
        self._count: dict[tuple[int, str], int] = {}

    def add(self, gt: Mapping[str, Any]) -> None:
        """Accumulate one ground-truth sample (its hands with ``has_3d``)."""
        joints = gt.get("joints_3d")
        if joints is None:
            return
        joints = np.asarray(joints, np.float64)
        sides = np.asarray(gt["handedness"]).reshape(-1)
        has_3d = np.asarray(gt.get("has_3d", np.ones(len(sides), bool))).reshape(-1).astype(bool)
        verts = gt.get("vertices_3d")
        for g, side in enumerate(sides):
            if not has_3d[g]:
                continue
            root = joints[g, 0]
            self._put((int(side), "joints"), joints[g] - root)
            if verts is not None and len(verts) > g:
                self._put((int(side), "vertices"), np.asarray(verts[g], np.float64) - root)

    def _put(self, key: tuple[int, str], value: np.ndarray) -> None:
        if key in self._sum and self._sum[key].shape != value.shape:
            return  # another vertex count (another hand model): not averaged
        self._sum[key] = self._sum.get(key, 0.0) + value
        self._count[key] = self._count.get(key, 0) + 1

    def mean(self, side: int, kind: str) -> np.ndarray | None:
        """(N, 3) mean root-relative points of ``side`` (``kind`` ``"joints"`` or ``"vertices"``), or None."""
        key = (int(side), kind)
        if key not in self._sum:
            return None
        return self._sum[key] / self._count[key]


def mean_pose_predictions(preds: Sequence[Mapping[str, Any]], mean: MeanHand) -> list[dict[str, Any]]:
    """The ``mean-pose`` baseline of each prediction (module docstring); inputs are not modified.

    Args:
        preds: per-image predictions (``handedness (P,)``, ``joints_3d (P, 21, 3)`` metres camera frame, optional
            ``vertices_3d (P, V, 3)``); a prediction without ``joints_3d`` is returned unchanged.
        mean: the ground-truth mean hands.

    Returns:
        New prediction dicts whose ``joints_3d`` / ``vertices_3d`` are the mean hands at the predicted wrists.
    """
    out = []
    for pred in preds:
        new = dict(pred)
        joints = pred.get("joints_3d")
        if joints is not None and len(joints):
            joints = np.asarray(joints, np.float64)
            sides = np.asarray(pred["handedness"]).reshape(-1)
            new_joints = joints.copy()
            verts = pred.get("vertices_3d")
            new_verts = None if verts is None else np.asarray(verts, np.float64).copy()
            for p, side in enumerate(sides):
                mj = mean.mean(side, "joints")
                if mj is None:
                    continue
                new_joints[p] = mj + joints[p, 0]
                mv = mean.mean(side, "vertices")
                if new_verts is not None and mv is not None and mv.shape == new_verts[p].shape:
                    new_verts[p] = mv + joints[p, 0]
            new["joints_3d"] = new_joints.astype(np.float32)
            if new_verts is not None:
                new["vertices_3d"] = new_verts.astype(np.float32)
        out.append(new)
    return out


class BaselineRecorder:
    """Collects what a baseline needs while an evaluation runs, then scores it on the same detections.

    Args:
        name: a :data:`BASELINES` name, or None (nothing recorded, nothing written).

    Raises:
        ValueError: an unknown baseline name (before any evaluation work).
    """

    def __init__(self, name: str | None) -> None:
        if name is not None and name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
        self.name = name
        self.mean = MeanHand()
        self._kept: list[tuple[Mapping[str, Any], dict[str, Any]]] = []

    def add(self, pred: Mapping[str, Any], gt: Mapping[str, Any]) -> None:
        """Record one image (its prediction and ground truth; the image and mask are not kept)."""
        if self.name is None:
            return
        self.mean.add(gt)
        self._kept.append((pred, {k: v for k, v in gt.items() if k not in ("image", "mask")}))

    def write(self, result: dict[str, Any], out_dir: str | Path, extra: Mapping[str, Any], **evaluator_kwargs: Any
              ) -> dict[str, Any]:
        """Score the baseline into ``out_dir/baseline_<name>/`` and return ``result`` with it under
        ``"baseline"`` (``result`` unchanged without a baseline). ``evaluator_kwargs`` go to the Evaluator."""
        if self.name is None:
            return result
        base = Evaluator(**evaluator_kwargs)
        for pred, gt in zip(mean_pose_predictions([p for p, _ in self._kept], self.mean), (g for _, g in self._kept)):
            base.add(pred, gt)
        result["baseline"] = base.write(Path(out_dir) / f"baseline_{self.name}", {**extra, "baseline": self.name})
        return result
