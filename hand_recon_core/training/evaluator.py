"""Evaluation of per-image hand predictions against ground truth: matching, per-hand rows, dataset metrics.

Inputs are per image: a *prediction* (a method's ``predict`` output: ``handedness (P,)``, ``score (P,)``,
``bbox (P, 4)`` pixels xyxy, ``keypoints_2d (P, 21, 2)`` pixels, ``joints_3d (P, 21, 3)`` metres camera frame,
``vertices_3d (P, V, 3)`` metres; any key may be missing) and the ground-truth *sample* in the format of
:mod:`hand_recon_core.data.sample` (``G`` hands).

Matching (per image, one-to-one):

1. Affinity ``A[p, g]`` in ``[0, 1]``: the box IoU when the prediction has a ``bbox``; otherwise, when it has
   ``keypoints_2d``, ``max(0, 1 - |c_p - c_g| / d_g)`` with ``c_p`` the mean predicted keypoint, ``c_g`` the
   centre of the ground-truth box and ``d_g`` its diagonal (pixels); otherwise, with ``joints_3d`` only,
   ``max(0, 1 - |w_p - w_g| / 0.1 m)`` on the wrists (camera frame); a prediction with none of them gets
   ``A = 1`` for every hand (matched by handedness, then order).
2. Pairs with ``A >= min_affinity`` (default 0.1) are candidates. The assignment maximises the sum over
   matched pairs of ``A + 1[handedness agrees]`` (Hungarian, ``scipy.optimize.linear_sum_assignment``), so
   a same-handedness candidate is preferred and a hand of the other side is still matched when it is the
   only candidate (it then counts against handedness accuracy).
3. Unmatched ground-truth hands are misses (NaN errors, rows with ``pred_index = -1``); unmatched predictions
   are false positives (rows with ``gt_index = -1``). 3D/2D errors are averaged over matched hands only;
   ``recall`` reports the matched fraction. Detection AP does its own IoU >= 0.5 matching over the ranked
   detections (:func:`hand_recon_core.metrics.detection_ap`).

Metrics (:meth:`Evaluator.compute`; metres for 3D, pixels for 2D; every 3D number is stored with its
:func:`~hand_recon_core.metrics.describe_alignment` string):

* ``mpjpe/<protocol>`` and ``mpvpe/<protocol>`` for the protocols of :data:`PROTOCOLS` (``abs`` camera frame,
  ``wrist`` root-relative, ``wrist_bone`` DIR, ``middle_mcp_bone`` IntagHand/HandDGCL, ``pa`` Procrustes);
  joints weighted by ``joint_valid`` on hands with ``has_3d``; vertices on hands whose ground truth carries
  ``vertices_3d`` with the predicted vertex count;
* ``pck_auc/pa`` (joints) and ``pck_auc_vertices/pa``: AUC of the PCK curve over 0-50 mm after Procrustes;
* ``f@5mm/pa``, ``f@15mm/pa``: F-scores of Procrustes-aligned vertices;
* ``kp2d_epe_px``: mean 2D keypoint error;
* ``rotation_error_deg``: angle of the rotation of the Procrustes alignment of the predicted joints onto the
  ground truth (:func:`hand_recon_core.metrics.rotation_error_deg`): the global orientation error;
* ``detection_ap50`` (class-agnostic) and ``detection_ap50/right``, ``detection_ap50/left``;
* ``handedness_accuracy``, ``recall``;
* ``miaa`` (pixels): mesh-image alignment of the matched hands (DIR, Sec. 4.3);
* ``penetration_volume`` (m^3, when the evaluator is given the faces): interpenetration of the predicted right
  and left meshes on two-hand images (DIR, Sec. 4.5), and ``penetration_volume/gt`` for the ground truth;
* ``mrrpe``: wrist-to-wrist relative error on images with exactly one annotated left and right hand, both
  matched.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from hand_recon_core.data.sample import HANDEDNESS_NAMES, LEFT, RIGHT
from hand_recon_core.metrics import (
    WRIST_INDEX,
    auc,
    box_iou,
    describe_alignment,
    detection_ap,
    f_score,
    interpenetration_volume,
    miaa,
    pck_curve,
    position_errors,
    rotation_error_deg,
)
from hand_recon_core.metrics.position_errors import MIDDLE_MCP_INDEX

__all__ = ["PROTOCOLS", "Evaluator", "match_hands"]

#: Alignment protocols: name -> keyword arguments of ``position_errors`` / ``describe_alignment``.
#: Alignment string of ``rotation_error_deg``.
ROTATION_ALIGNMENT = "procrustes (scale, rotation, translation) of the predicted joints onto the GT; the rotation angle"
PROTOCOLS: dict[str, dict[str, Any]] = {
    "abs": {"root": "none", "scale": "none", "procrustes": False},
    "wrist": {"root": "wrist", "scale": "none", "procrustes": False},
    "wrist_bone": {"root": "wrist", "scale": "bone", "procrustes": False},
    "middle_mcp_bone": {"root": "middle_mcp", "scale": "bone", "procrustes": False},
    "pa": {"root": "none", "scale": "none", "procrustes": True},
}
#: Joints a protocol needs valid on both hands (root and bone).
_NEEDS = {"abs": (), "wrist": (WRIST_INDEX,), "wrist_bone": (WRIST_INDEX, MIDDLE_MCP_INDEX),
          "middle_mcp_bone": (WRIST_INDEX, MIDDLE_MCP_INDEX), "pa": ()}
#: F-score thresholds, metres.
F_THRESHOLDS = {"f@5mm/pa": 0.005, "f@15mm/pa": 0.015}
#: Wrist distance (metres) at which the 3D-only affinity reaches 0.
_WRIST_SCALE_M = 0.1


def _get(pred: Mapping[str, Any], key: str, n: int) -> np.ndarray | None:
    value = pred.get(key)
    if value is None:
        return None
    a = np.asarray(value)
    return a if a.shape[:1] == (n,) else None


def _affinity(pred: Mapping[str, Any], gt: Mapping[str, Any]) -> np.ndarray:
    hp = np.asarray(pred.get("handedness", np.zeros(0)))
    p, g = hp.shape[0], np.asarray(gt["handedness"]).shape[0]
    if p == 0 or g == 0:
        return np.zeros((p, g))
    gt_boxes = np.asarray(gt["bbox"], dtype=np.float64)
    boxes = _get(pred, "bbox", p)
    if boxes is not None:
        return box_iou(boxes, gt_boxes)
    kp = _get(pred, "keypoints_2d", p)
    if kp is not None:
        c_p = np.asarray(kp, dtype=np.float64).mean(1)
        c_g = 0.5 * (gt_boxes[:, :2] + gt_boxes[:, 2:])
        diag = np.maximum(np.linalg.norm(gt_boxes[:, 2:] - gt_boxes[:, :2], axis=-1), 1e-6)
        return np.clip(1.0 - np.linalg.norm(c_p[:, None] - c_g[None], axis=-1) / diag[None], 0.0, 1.0)
    j = _get(pred, "joints_3d", p)
    if j is not None:
        w_p = np.asarray(j, dtype=np.float64)[:, WRIST_INDEX]
        w_g = np.asarray(gt["joints_3d"], dtype=np.float64)[:, WRIST_INDEX]
        return np.clip(1.0 - np.linalg.norm(w_p[:, None] - w_g[None], axis=-1) / _WRIST_SCALE_M, 0.0, 1.0)
    return np.ones((p, g))


def match_hands(pred: Mapping[str, Any], gt: Mapping[str, Any], min_affinity: float = 0.1
                ) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Match the predicted hands of one image to its ground-truth hands (module docstring, "Matching").

    Args:
        pred: prediction dict of the image (``P`` hands).
        gt: ground-truth sample of the image (``G`` hands).
        min_affinity: smallest affinity of a match.

    Returns:
        ``(pairs, affinity)``: the matched ``(pred_index, gt_index)`` pairs sorted by ``gt_index``, and the
        ``(P, G)`` affinity matrix.
    """
    a = _affinity(pred, gt)
    if a.size == 0:
        return [], a
    hp = np.asarray(pred["handedness"]).reshape(-1)
    hg = np.asarray(gt["handedness"]).reshape(-1)
    gain = a + (hp[:, None] == hg[None, :])
    gain = np.where(a >= min_affinity, gain, -1e6)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    pairs = sorted(((int(r), int(c)) for r, c in zip(rows, cols) if a[r, c] >= min_affinity), key=lambda x: x[1])
    return pairs, a


def _nanmean(x: list[float] | np.ndarray) -> float:
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


class Evaluator:
    """Accumulates matched hands over a dataset and computes the metrics of the module docstring.

    Args:
        min_affinity: matching threshold (see :func:`match_hands`).
        faces: ``{RIGHT: (F, 3), LEFT: (F, 3)}`` triangles of the hand model, for the interpenetration volume.
        gt_volume_cache: ground-truth interpenetration volume per image, ``(dataset, sample_id, image index) ->
            m^3``, shared between evaluators that see the same images in the same order (a model and its baseline):
            the voxelised volume (~1 s per two-hand image) is computed once. A new dict when None.
        penetration_images: voxelise only the first this many eligible two-hand images (None: all; 0: no
            interpenetration metric at all, as without faces); the metric's ``count`` says how many it averages.
    """

    def __init__(self, min_affinity: float = 0.1, faces: Mapping[int, np.ndarray] | None = None,
                 gt_volume_cache: dict[tuple[str, str, int], float] | None = None,
                 penetration_images: int | None = None) -> None:
        self.min_affinity = float(min_affinity)
        no_volume = faces is None or penetration_images == 0
        self.faces = None if no_volume else {int(k): np.asarray(v) for k, v in faces.items()}
        self.gt_volume_cache = {} if gt_volume_cache is None else gt_volume_cache
        self.penetration_images = None if penetration_images is None else int(penetration_images)
        self._miaa: list[float] = []
        self._penetration: list[float] = []
        self._penetration_gt: list[float] = []
        self.rows: list[dict[str, Any]] = []
        self._pairs: list[dict[str, Any]] = []  # matched hands with arrays, for the dataset metrics
        self._det: dict[str, list] = {"pred_boxes": [], "scores": [], "pred_hand": [], "gt_boxes": [], "gt_hand": []}
        self._has_det = True
        self._mrrpe: list[float] = []
        self.num_images = 0

    # ------------------------------------------------------------------------------------------------------

    def add(self, pred: Mapping[str, Any], gt: Mapping[str, Any]) -> None:
        """Add one image: its prediction dict and its ground-truth sample."""
        image_index = self.num_images
        self.num_images += 1
        pred = {k: (np.asarray(v) if not isinstance(v, str) else v) for k, v in pred.items()}
        hp = np.asarray(pred.get("handedness", np.zeros(0, np.int64))).reshape(-1).astype(np.int64)
        pred["handedness"] = hp
        p = hp.shape[0]
        g = int(np.asarray(gt["handedness"]).shape[0])
        pairs, aff = match_hands(pred, gt, self.min_affinity)
        matched_pred = {pi for pi, _ in pairs}
        by_gt = {gi: pi for pi, gi in pairs}
        scores = _get(pred, "score", p)
        sample_id = str(gt.get("sample_id", image_index))
        dataset = str(gt.get("dataset", ""))

        boxes = _get(pred, "bbox", p)
        if boxes is None or scores is None:
            self._has_det = self._has_det and p == 0
        self._det["pred_boxes"].append(np.zeros((0, 4)) if boxes is None else boxes.astype(np.float64))
        self._det["scores"].append(np.zeros(0) if scores is None else scores.astype(np.float64).reshape(-1))
        self._det["pred_hand"].append(hp)
        self._det["gt_boxes"].append(np.asarray(gt["bbox"], dtype=np.float64).reshape(-1, 4))
        self._det["gt_hand"].append(np.asarray(gt["handedness"]).reshape(-1))

        wrists: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        meshes: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        K = gt.get("K")
        for gi in range(g):
            pi = by_gt.get(gi, -1)
            row = self._row(sample_id, dataset, image_index, gi, pi, gt, pred, scores, aff)
            self.rows.append(row)
            if pi >= 0:
                pair = self._pair(len(self.rows) - 1, gi, pi, gt, pred)
                self._pairs.append(pair)
                if pair["vertices"] is not None and pair["has_3d"]:
                    meshes.setdefault(int(gt["handedness"][gi]), []).append(pair["vertices"])
                    if K is not None:
                        err = miaa(pair["vertices"][0][None], pair["vertices"][1][None], intrinsics=K)
                        self._miaa.append(err)
                        self.rows[-1]["miaa_px"] = err
                if pair["joints"] is not None and pair["has_3d"] and pair["mask"][WRIST_INDEX]:
                    wrists.setdefault(int(gt["handedness"][gi]), []).append(
                        (pair["joints"][0][WRIST_INDEX], pair["joints"][1][WRIST_INDEX]))
        for pi in range(p):
            if pi not in matched_pred:
                self.rows.append(self._row(sample_id, dataset, image_index, -1, pi, gt, pred, scores, aff))
        gt_hand = np.asarray(gt["handedness"]).reshape(-1)
        has_3d = np.asarray(gt["has_3d"]).reshape(-1)
        annotated = [int(h) for h, ok in zip(gt_hand, has_3d) if ok]
        if sorted(annotated) == [RIGHT, LEFT] and len(wrists.get(RIGHT, [])) == 1 and len(wrists.get(LEFT, [])) == 1:
            (pr, gr), (pl, gl) = wrists[RIGHT][0], wrists[LEFT][0]
            self._mrrpe.append(float(np.linalg.norm((pl - pr) - (gl - gr))))
        room = self.penetration_images is None or len(self._penetration) < self.penetration_images
        if (self.faces is not None and room and sorted(annotated) == [RIGHT, LEFT]
                and len(meshes.get(RIGHT, [])) == 1 and len(meshes.get(LEFT, [])) == 1):
            (vr, gvr), (vl, gvl) = meshes[RIGHT][0], meshes[LEFT][0]
            fr, fl = self.faces[RIGHT], self.faces[LEFT]
            self._penetration.append(interpenetration_volume(vr, fr, vl, fl))
            key = (dataset, sample_id, image_index)
            if key not in self.gt_volume_cache:
                self.gt_volume_cache[key] = interpenetration_volume(gvr, fr, gvl, fl)
            self._penetration_gt.append(self.gt_volume_cache[key])

    def _row(self, sample_id: str, dataset: str, image_index: int, gi: int, pi: int, gt: Mapping[str, Any],
             pred: Mapping[str, Any], scores: np.ndarray | None, aff: np.ndarray) -> dict[str, Any]:
        hp = pred["handedness"]
        return {
            "sample_id": sample_id, "dataset": dataset, "image_index": image_index, "gt_index": gi, "pred_index": pi,
            "gt_handedness": HANDEDNESS_NAMES[int(gt["handedness"][gi])] if gi >= 0 else "",
            "pred_handedness": HANDEDNESS_NAMES[int(hp[pi])] if pi >= 0 else "",
            "score": float(scores[pi]) if (pi >= 0 and scores is not None) else math.nan,
            "affinity": float(aff[pi, gi]) if (pi >= 0 and gi >= 0) else math.nan,
        }

    def _pair(self, row_index: int, gi: int, pi: int, gt: Mapping[str, Any], pred: Mapping[str, Any]
              ) -> dict[str, Any]:
        p = pred["handedness"].shape[0]
        pair: dict[str, Any] = {"row": row_index, "hand_ok": int(pred["handedness"][pi]) == int(gt["handedness"][gi]),
                                "has_3d": bool(np.asarray(gt["has_3d"])[gi]),
                                "mask": np.asarray(gt["joint_valid"])[gi] > 0, "joints": None, "vertices": None,
                                "kp2d": None}
        j = _get(pred, "joints_3d", p)
        if j is not None:
            pair["joints"] = (j[pi].astype(np.float64), np.asarray(gt["joints_3d"])[gi].astype(np.float64))
        kp = _get(pred, "keypoints_2d", p)
        if kp is not None:
            pair["kp2d"] = (kp[pi].astype(np.float64), np.asarray(gt["keypoints_2d"])[gi].astype(np.float64))
        v = _get(pred, "vertices_3d", p)
        gv = gt.get("vertices_3d")
        if v is not None and gv is not None and np.asarray(gv).shape[1:] == v.shape[1:]:
            pair["vertices"] = (v[pi].astype(np.float64), np.asarray(gv)[gi].astype(np.float64))
        return pair

    # ------------------------------------------------------------------------------------------------------

    def compute(self) -> dict[str, Any]:
        """Dataset metrics (and per-hand values filled into :attr:`rows`).

        Returns:
            ``{"num_images", "num_gt_hands", "num_pred_hands", "num_matched", "matching", "metrics"}`` where
            ``metrics[name] = {"value": float (NaN -> None in JSON), "unit": str, "alignment": str, "count": int}``.
        """
        metrics: dict[str, dict[str, Any]] = {}

        def put(name: str, value: float, unit: str, alignment: str, count: int) -> None:
            metrics[name] = {"value": float(value), "unit": unit, "alignment": alignment, "count": int(count)}

        joint_pairs = [q for q in self._pairs if q["joints"] is not None and q["has_3d"] and q["mask"].any()]
        pa_joint_err = None
        for name, kw in PROTOCOLS.items():
            use = [q for q in joint_pairs if all(q["mask"][i] for i in _NEEDS[name])]
            if name == "pa":
                use = [q for q in use if q["mask"].sum() >= 3]
            if not use:
                put(f"mpjpe/{name}", math.nan, "m", describe_alignment(**kw), 0)
                continue
            pred = np.stack([q["joints"][0] for q in use])
            gt = np.stack([q["joints"][1] for q in use])
            mask = np.stack([q["mask"] for q in use])
            err = position_errors(pred, gt, mask, **kw)
            for q, e, m in zip(use, err, mask):
                self.rows[q["row"]][f"mpjpe/{name}"] = float(e[m].mean())
            put(f"mpjpe/{name}", float(err[mask].mean()), "m", describe_alignment(**kw), len(use))
            if name == "pa":
                pa_joint_err = (err, mask)
        align_pa = describe_alignment(**PROTOCOLS["pa"])
        if pa_joint_err is not None:
            thr, pck = pck_curve(pa_joint_err[0], mask=pa_joint_err[1])
            put("pck_auc/pa", auc(thr, pck), "1 (AUC of PCK over 0-50 mm)", align_pa, len(pa_joint_err[0]))
        else:
            put("pck_auc/pa", math.nan, "1 (AUC of PCK over 0-50 mm)", align_pa, 0)

        rot_use = [q for q in joint_pairs if q["mask"].sum() >= 3]
        if rot_use:
            angles = rotation_error_deg(np.stack([q["joints"][0] for q in rot_use]),
                                        np.stack([q["joints"][1] for q in rot_use]),
                                        np.stack([q["mask"] for q in rot_use]))
            for q, a in zip(rot_use, angles):
                self.rows[q["row"]]["rotation_error_deg"] = float(a)
            put("rotation_error_deg", float(angles.mean()), "deg", ROTATION_ALIGNMENT, len(rot_use))
        else:
            put("rotation_error_deg", math.nan, "deg", ROTATION_ALIGNMENT, 0)

        vert_pairs = [q for q in self._pairs if q["vertices"] is not None]
        for name, kw in PROTOCOLS.items():
            use = vert_pairs if name in ("abs", "pa") else [
                q for q in vert_pairs if q["joints"] is not None and q["has_3d"]
                and all(q["mask"][i] for i in _NEEDS[name])]
            if not use:
                put(f"mpvpe/{name}", math.nan, "m", describe_alignment(**kw), 0)
                continue
            pv = np.stack([q["vertices"][0] for q in use])
            gv = np.stack([q["vertices"][1] for q in use])
            extra = {}
            if name not in ("abs", "pa"):
                extra = {"pred_joints": np.stack([q["joints"][0] for q in use]),
                         "gt_joints": np.stack([q["joints"][1] for q in use])}
            err = position_errors(pv, gv, None, **kw, **extra)
            for q, e in zip(use, err):
                self.rows[q["row"]][f"mpvpe/{name}"] = float(e.mean())
            put(f"mpvpe/{name}", float(err.mean()), "m", describe_alignment(**kw), len(use))
            if name == "pa":
                thr, pck = pck_curve(err)
                put("pck_auc_vertices/pa", auc(thr, pck), "1 (AUC of PCK over 0-50 mm)", align_pa, len(use))
        if not vert_pairs:
            put("pck_auc_vertices/pa", math.nan, "1 (AUC of PCK over 0-50 mm)", align_pa, 0)
        for key, thr_m in F_THRESHOLDS.items():
            values = []
            for q in vert_pairs:
                f = f_score(q["vertices"][0], q["vertices"][1], thr_m, procrustes=True)
                self.rows[q["row"]][key] = f
                values.append(f)
            put(key, _nanmean(values), f"1 (F-score at {thr_m * 1000:g} mm)", align_pa, len(values))

        kp_values, kp_count = [], 0
        for q in self._pairs:
            if q["kp2d"] is None or not q["mask"].any():
                continue
            d = np.linalg.norm(q["kp2d"][0] - q["kp2d"][1], axis=-1)[q["mask"]]
            self.rows[q["row"]]["kp2d_epe_px"] = float(d.mean())
            kp_values.append(d)
            kp_count += 1
        put("kp2d_epe_px", float(np.concatenate(kp_values).mean()) if kp_values else math.nan, "px",
            "none (image pixels)", kp_count)

        det_note = "none (boxes; a detection is correct at IoU >= 0.5 with an unmatched GT box)"
        if self._has_det and self.num_images:
            d = self._det
            put("detection_ap50", detection_ap(d["pred_boxes"], d["scores"], d["gt_boxes"], 0.5), "1", det_note,
                sum(len(b) for b in d["gt_boxes"]))
            for code, side in enumerate(HANDEDNESS_NAMES):
                pb = [b[h == code] for b, h in zip(d["pred_boxes"], d["pred_hand"])]
                ps = [s[h == code] for s, h in zip(d["scores"], d["pred_hand"])]
                gb = [b[h == code] for b, h in zip(d["gt_boxes"], d["gt_hand"])]
                put(f"detection_ap50/{side}", detection_ap(pb, ps, gb, 0.5), "1", det_note,
                    sum(len(b) for b in gb))
        num_gt = sum(1 for r in self.rows if r["gt_index"] >= 0)
        num_matched = len(self._pairs)
        put("handedness_accuracy", _nanmean([float(q["hand_ok"]) for q in self._pairs]), "1",
            "none (matched hands)", num_matched)
        put("recall", num_matched / num_gt if num_gt else math.nan, "1", "none (matched GT hands / GT hands)", num_gt)
        put("mrrpe", _nanmean(self._mrrpe), "m",
            f"none (camera frame; left-minus-right mano21 joint {WRIST_INDEX} (wrist), prediction vs GT)",
            len(self._mrrpe))
        put("miaa", _nanmean(self._miaa), "px",
            "none (predicted vs GT vertices projected with the image's K; matched hands)", len(self._miaa))
        if self.faces is not None:
            note = ("none (predicted right and left meshes, camera frame; voxels of 5 mm, centre inside both by "
                    "winding number; images with one annotated and matched hand of each side)")
            put("penetration_volume", _nanmean(self._penetration), "m^3", note, len(self._penetration))
            put("penetration_volume/gt", _nanmean(self._penetration_gt), "m^3",
                note.replace("predicted", "ground-truth"), len(self._penetration_gt))
        return {
            "num_images": self.num_images,
            "num_gt_hands": num_gt,
            "num_pred_hands": sum(1 for r in self.rows if r["pred_index"] >= 0),
            "num_matched": num_matched,
            "matching": f"one-to-one per image: box IoU (or 2D/3D centre distance) >= {self.min_affinity}, "
                        "Hungarian on affinity + 1[same handedness]",
            "metrics": metrics,
        }

    def write(self, out_dir: str | Path, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Compute the metrics and write ``metrics.json`` and ``per_sample.csv`` into ``out_dir``.

        Args:
            out_dir: destination folder (created).
            extra: more top-level entries for ``metrics.json`` (checkpoint, dataset ...).

        Returns:
            The metrics dict as written (NaN values become null in the JSON).
        """
        result = self.compute()
        if extra:
            result = {**dict(extra), **result}
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(_json_safe(result), indent=2) + "\n")
        columns = ["sample_id", "dataset", "image_index", "gt_index", "pred_index", "gt_handedness",
                   "pred_handedness", "score", "affinity"]
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        with (out / "per_sample.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns, restval="")
            w.writeheader()
            w.writerows(self.rows)
        return _json_safe(result)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    return obj
