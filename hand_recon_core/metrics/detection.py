"""Detection metrics: box IoU and average precision (hand detection of the single-stage methods).

Boxes are ``(x_min, y_min, x_max, y_max)`` in pixels, continuous coordinates: the area of a box is
``(x_max - x_min) * (y_max - y_min)`` (no ``+ 1``, as in COCO; the VOC devkit adds 1 for integer boxes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hand_recon_core.metrics._arrays import as_float64

__all__ = ["box_iou", "detection_ap"]


def _boxes(x: Any, name: str) -> np.ndarray:
    b = as_float64(x, name)
    if b.size == 0:
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4), got {b.shape}")
    return b


def box_iou(boxes_a: Any, boxes_b: Any) -> np.ndarray:
    """Pairwise intersection over union.

    Args:
        boxes_a: ``(N, 4)`` boxes ``(x_min, y_min, x_max, y_max)``, pixels.
        boxes_b: ``(M, 4)`` boxes, pixels.

    Returns:
        ``(N, M)`` float64 IoU in ``[0, 1]`` (0 where the union is empty).
    """
    a = _boxes(boxes_a, "boxes_a")
    b = _boxes(boxes_b, "boxes_b")
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def detection_ap(
    pred_boxes: Sequence[Any],
    pred_scores: Sequence[Any],
    gt_boxes: Sequence[Any],
    iou_threshold: float = 0.5,
    return_curve: bool = False,
) -> float | tuple[float, np.ndarray, np.ndarray]:
    """Average precision over a list of images, VOC-style all-point interpolation (VOC 2010+).

    Detections of all images are ranked by descending score (stable for ties). Each is matched to the
    unmatched ground-truth box of its image with the highest IoU if that IoU is ``>= iou_threshold``
    (true positive); otherwise (no overlap, or the best box already taken) it is a false positive. AP is the
    area under the precision-recall curve after making precision monotonically non-increasing, summed at
    the recall steps (PASCAL VOC devkit ``voc_ap`` with ``use_07_metric=False``). Differences from the
    devkit: the IoU test is ``>=`` (the devkit uses ``>``), boxes are continuous (no ``+ 1``), no
    "difficult" flags. For a per-class AP (left/right hands), call once per class.

    Args:
        pred_boxes: per image, ``(P_i, 4)`` predicted boxes, pixels.
        pred_scores: per image, ``(P_i,)`` confidences.
        gt_boxes: per image, ``(G_i, 4)`` ground-truth boxes, pixels.
        iou_threshold: IoU needed for a true positive.
        return_curve: also return the raw ``precision`` and ``recall`` arrays (one entry per detection in
            rank order).

    Returns:
        AP in ``[0, 1]`` (NaN when there is no ground-truth box), or ``(ap, precision, recall)``.
    """
    if not (len(pred_boxes) == len(pred_scores) == len(gt_boxes)):
        raise ValueError("pred_boxes, pred_scores and gt_boxes must list the same images")
    gts = [_boxes(g, "gt_boxes") for g in gt_boxes]
    num_gt = sum(g.shape[0] for g in gts)
    image_ids, scores, boxes = [], [], []
    for i, (pb, ps) in enumerate(zip(pred_boxes, pred_scores)):
        b = _boxes(pb, "pred_boxes")
        s = as_float64(ps, "pred_scores").reshape(-1)
        if s.shape[0] != b.shape[0]:
            raise ValueError(f"image {i}: {b.shape[0]} boxes but {s.shape[0]} scores")
        image_ids.append(np.full(b.shape[0], i, dtype=np.int64))
        scores.append(s)
        boxes.append(b)
    image_ids_all = np.concatenate(image_ids) if image_ids else np.zeros(0, np.int64)
    scores_all = np.concatenate(scores) if scores else np.zeros(0)
    boxes_all = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    order = np.argsort(-scores_all, kind="stable")
    matched = [np.zeros(g.shape[0], dtype=bool) for g in gts]
    tp = np.zeros(order.shape[0])
    for rank, det in enumerate(order):
        img = image_ids_all[det]
        if gts[img].shape[0] == 0:
            continue
        ious = box_iou(boxes_all[det : det + 1], gts[img])[0]
        j = int(np.argmax(ious))
        if ious[j] >= iou_threshold and not matched[img][j]:
            matched[img][j] = True
            tp[rank] = 1.0
    fp = 1.0 - tp
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    recall = ctp / num_gt if num_gt > 0 else np.full_like(ctp, np.nan)
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).tiny)
    if num_gt == 0:
        ap = float("nan")
    else:
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
        ap = float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
    if return_curve:
        return ap, precision, recall
    return ap
