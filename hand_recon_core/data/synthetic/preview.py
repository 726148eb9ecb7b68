"""Contact sheets of synthetic samples: the image and its labels side by side, for eyeballing the engine.

One row per sample, five panels: the image; 2D keypoints (skeleton coloured by finger, filled dots visible /
hollow dots occluded), boxes, centres (white cross) and ``R`` / ``L`` labels; the instance mask over the image
(objects hatched grey); the 33-class part segmentation over the image (finger hue per finger, lighter towards
the tip; the palm grey; left-hand parts drawn with a white dot grid so left and right can be told apart); the
dense correspondence map as RGB.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from hand_recon_core.data.sample import LEFT, PART_SEG_PARTS_PER_HAND
from hand_recon_core.hand_model.constants import FINGER_JOINTS, FINGER_NAMES
from hand_recon_core.hand_model.joint_orders import bone_pairs

__all__ = ["FINGER_COLORS", "part_colors", "draw_keypoints", "overlay_mask", "overlay_parts", "contact_sheet",
           "write_contact_sheet"]

#: RGB colour per finger (thumb, index, middle, ring, pinky).
FINGER_COLORS = np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180]],
                         dtype=np.float64)
_INSTANCE_COLORS = np.array([[255, 225, 25], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
                             [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0],
                             [170, 255, 195]], dtype=np.float64)


def _joint_finger() -> np.ndarray:
    """Finger index (0-4) of each mano21 joint; -1 for the wrist."""
    out = np.full(21, -1, dtype=np.int64)
    for k, f in enumerate(FINGER_NAMES):
        out[list(FINGER_JOINTS[f])] = k
        out[16 + k] = k
    return out


_JOINT_FINGER = _joint_finger()


def part_colors() -> np.ndarray:
    """(33, 3) uint8 display colour of each part-segmentation class (0 background black).

    Part ``p`` (kinematic joint) of a finger gets the finger's colour, lighter for the more distal segments;
    the palm (part 0) is grey. Left-hand classes use the same colours (a dot pattern marks them).
    """
    table = np.zeros((1 + 2 * PART_SEG_PARTS_PER_HAND, 3))
    per = np.zeros((PART_SEG_PARTS_PER_HAND, 3))
    per[0] = (150, 150, 150)
    for k, f in enumerate(FINGER_NAMES):
        for s, j in enumerate(FINGER_JOINTS[f]):
            per[j] = FINGER_COLORS[k] + (255 - FINGER_COLORS[k]) * 0.3 * s
    table[1:1 + PART_SEG_PARTS_PER_HAND] = per
    table[1 + PART_SEG_PARTS_PER_HAND:] = per
    return np.clip(table, 0, 255).astype(np.uint8)


def draw_keypoints(image: np.ndarray, sample: dict, thickness: int = 1) -> np.ndarray:
    """Skeletons, boxes, centres and handedness labels drawn on a copy of ``image``.

    Args:
        image: (H, W, 3) uint8 RGB (same size as the sample's image).
        sample: the sample (needs ``keypoints_2d``, ``joint_visible``, ``bbox``, ``handedness``; ``center`` if
            present).
        thickness: line thickness in pixels.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    out = np.ascontiguousarray(image.copy())
    for i in range(len(sample["handedness"])):
        kp = sample["keypoints_2d"][i]
        vis = sample["joint_visible"][i] > 0
        for p, c in bone_pairs("mano21"):
            color = FINGER_COLORS[_JOINT_FINGER[c]].tolist()
            cv2.line(out, tuple(np.rint(kp[p]).astype(int)), tuple(np.rint(kp[c]).astype(int)), color, thickness,
                     cv2.LINE_AA)
        for j in range(21):
            color = (255, 255, 255) if _JOINT_FINGER[j] < 0 else FINGER_COLORS[_JOINT_FINGER[j]].tolist()
            cv2.circle(out, tuple(np.rint(kp[j]).astype(int)), 2 if vis[j] else 3, color, -1 if vis[j] else 1,
                       cv2.LINE_AA)
        x1, y1, x2, y2 = np.rint(sample["bbox"][i]).astype(int)
        cv2.rectangle(out, (x1, y1), (x2, y2), (255, 255, 0), 1)
        label = "L" if int(sample["handedness"][i]) == LEFT else "R"
        cv2.putText(out, label, (x1 + 2, y1 + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        if "center" in sample:
            cx, cy = np.rint(sample["center"][i]).astype(int)
            cv2.drawMarker(out, (cx, cy), (255, 255, 255), cv2.MARKER_CROSS, 8, 2)
    return out


def overlay_mask(image: np.ndarray, mask: np.ndarray, object_mask: np.ndarray | None = None,
                 alpha: float = 0.55) -> np.ndarray:
    """Instance mask blended over the image (one colour per hand; objects hatched grey).

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) int hand index or -1.
        object_mask: optional (H, W) int object index or -1.
        alpha: blend weight of the colours.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    out = image.astype(np.float64) * (1 - alpha)
    colors = np.zeros((*mask.shape, 3))
    hand = mask >= 0
    colors[hand] = _INSTANCE_COLORS[mask[hand] % len(_INSTANCE_COLORS)]
    out += alpha * colors
    out[~hand] = image[~hand] * 0.6
    if object_mask is not None:
        yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
        hatch = (object_mask >= 0) & (((yy + xx) // 3) % 2 == 0)
        out[hatch] = 110
    return np.clip(out, 0, 255).astype(np.uint8)


def overlay_parts(image: np.ndarray, part_seg: np.ndarray, alpha: float = 0.75) -> np.ndarray:
    """Part segmentation blended over the image (see :func:`part_colors`; left parts dotted white).

    Args:
        image: (H, W, 3) uint8 RGB.
        part_seg: (H, W) uint8 classes 0-32.
        alpha: blend weight of the part colours.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    table = part_colors().astype(np.float64)
    fg = part_seg > 0
    out = image.astype(np.float64) * 0.5
    out[fg] = (1 - alpha) * image[fg] + alpha * table[part_seg[fg]]
    yy, xx = np.mgrid[0:part_seg.shape[0], 0:part_seg.shape[1]]
    dots = (part_seg > PART_SEG_PARTS_PER_HAND) & (yy % 4 == 0) & (xx % 4 == 0)
    out[dots] = 255
    return np.clip(out, 0, 255).astype(np.uint8)


def _scaled(sample: dict, tile: int) -> dict:
    """The sample's image and maps resized to fit ``tile`` (area / nearest) with its 2D labels rescaled
    (pixel-centre convention: ``u' = (u + 0.5) * scale - 0.5``)."""
    h, w = sample["image"].shape[:2]
    scale = tile / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    area = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = {"image": cv2.resize(sample["image"], size, interpolation=area)}
    for key in ("mask", "part_seg", "object_mask"):
        if key in sample:
            out[key] = cv2.resize(sample[key], size, interpolation=cv2.INTER_NEAREST)
    if "dense" in sample:
        out["dense"] = cv2.resize(sample["dense"], size, interpolation=cv2.INTER_NEAREST)
    for key in ("keypoints_2d", "center"):
        if key in sample:
            out[key] = (sample[key] + 0.5) * scale - 0.5
    out["bbox"] = (sample["bbox"] + 0.5) * scale - 0.5
    out["handedness"] = sample["handedness"]
    out["joint_visible"] = sample["joint_visible"]
    return out


def _pad(img: np.ndarray, side: int) -> np.ndarray:
    out = np.zeros((side, side, 3), dtype=np.uint8)
    out[:img.shape[0], :img.shape[1]] = img
    return out


def contact_sheet(samples: Sequence[dict], tile: int = 192, title: str | None = None) -> np.ndarray:
    """Contact sheet of samples (one row each, the five panels of the module docstring).

    Every panel is scaled to ``tile`` pixels (labels drawn after scaling, so they stay legible).

    Args:
        samples: samples (with extras for the dense panel; a black panel otherwise).
        tile: panel side in pixels.
        title: optional caption drawn at the top.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    rows = []
    for full in samples:
        s = _scaled(full, tile)
        img = s["image"]
        dense = s.get("dense")
        dense_img = np.zeros_like(img) if dense is None else np.rint(dense * 255).astype(np.uint8)
        panels = [img, draw_keypoints(img, s), overlay_mask(img, s["mask"], s.get("object_mask")),
                  overlay_parts(img, s["part_seg"]), dense_img]
        rows.append(np.concatenate([_pad(p, tile) for p in panels], axis=1))
    sheet = np.concatenate(rows, axis=0) if rows else np.zeros((tile, 5 * tile, 3), np.uint8)
    if title:
        bar = np.zeros((22, sheet.shape[1], 3), dtype=np.uint8)
        cv2.putText(bar, title, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        sheet = np.concatenate([bar, sheet], axis=0)
    return sheet


def write_contact_sheet(path: str | Path, samples: Sequence[dict], tile: int = 192, title: str | None = None) -> Path:
    """Write :func:`contact_sheet` as a PNG.

    Args:
        path: output file.
        samples: samples.
        tile: panel side in pixels.
        title: optional caption.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(samples, tile=tile, title=title)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path
