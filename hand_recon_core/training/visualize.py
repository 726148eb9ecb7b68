"""Evaluation pictures: the input, the predicted meshes rendered over it, and a side view.

Rendering uses the project's overlay helpers (:func:`hand_recon_core.render.overlay.draw_overlay`, over
:func:`hand_recon_core.render.rasterizer.render_meshes`); nothing here rasterises by itself. The side view turns
the predicted hands by 90 degrees about the camera's vertical (y) axis around their common centroid, keeping the
centroid's depth, so the depth placement of the hands (how far apart they are along the optical axis) becomes
visible.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.hand_model.joint_orders import bone_pairs
from hand_recon_core.render.overlay import draw_overlay

__all__ = ["HAND_COLORS", "render_prediction_panel", "side_view_vertices", "write_panel"]

#: Albedo per handedness code (RGB in [0, 1]).
HAND_COLORS = {RIGHT: (0.35, 0.6, 0.95), LEFT: (0.95, 0.6, 0.3)}
_SIDE_BACKGROUND = 0.85


def side_view_vertices(vertices: list[np.ndarray], angle_rad: float = np.pi / 2) -> list[np.ndarray]:
    """Rotate meshes about the camera y axis through their common centroid (camera frame, metres).

    Args:
        vertices: list of ``(V_i, 3)`` camera-frame vertices, metres.
        angle_rad: rotation angle (radians; positive turns +z towards +x).

    Returns:
        The rotated vertices, same shapes; the centroid keeps its depth and moves onto the optical axis.
    """
    if not vertices:
        return []
    allv = np.concatenate(vertices).astype(np.float64)
    c = allv.mean(0)
    ca, sa = np.cos(angle_rad), np.sin(angle_rad)
    rot = np.array([[ca, 0.0, sa], [0.0, 1.0, 0.0], [-sa, 0.0, ca]])
    target = np.array([0.0, 0.0, max(c[2], 0.2)])
    return [((v.astype(np.float64) - c) @ rot.T + target).astype(np.float32) for v in vertices]


def render_prediction_panel(image: np.ndarray, K: np.ndarray, pred: Mapping[str, Any],
                            faces: Mapping[int, np.ndarray] | None) -> np.ndarray:
    """One picture for one image: ``[input | prediction overlay | side view]``.

    The overlay blends the shaded predicted meshes over the input and draws the predicted 2D skeletons
    (:func:`hand_recon_core.render.overlay.draw_overlay`); the side view renders the meshes turned by
    :func:`side_view_vertices` on a grey background.

    Args:
        image: ``(H, W, 3)`` uint8 RGB input.
        K: ``(3, 3)`` intrinsics of ``image`` (pixels).
        pred: the method's prediction for the image (``handedness (N,)``, optional ``vertices_3d (N, V, 3)``
            metres camera frame, optional ``keypoints_2d (N, 21, 2)`` pixels in the ``mano21`` order).
        faces: triangle indices per handedness code (``RIGHT``/``LEFT`` -> ``(F, 3)`` int, outward CCW); None
            draws no meshes.

    Returns:
        ``(H, 3 W, 3)`` uint8 RGB.
    """
    image = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = image.shape[:2]
    hands = np.asarray(pred.get("handedness", np.zeros(0, np.int64))).reshape(-1)
    colors = [HAND_COLORS.get(int(code), (0.8, 0.8, 0.8)) for code in hands]
    verts = pred.get("vertices_3d")
    vlist: list[np.ndarray] = []
    flist: list[np.ndarray] = []
    if verts is not None and faces is not None and len(hands):
        vlist = [np.asarray(v, dtype=np.float32) for v in verts]
        flist = [np.asarray(faces[int(code)]) for code in hands]
    kps = pred.get("keypoints_2d")
    keypoints = [np.asarray(k, dtype=np.float64) for k in kps] if kps is not None and len(hands) else None
    overlay = draw_overlay(image, vlist, flist, K, mesh_colors=colors, alpha=0.7, keypoints=keypoints,
                           skeleton=bone_pairs("mano21"), radius=1.5, thickness=1)
    grey = np.full((h, w, 3), int(_SIDE_BACKGROUND * 255), np.uint8)
    side = draw_overlay(grey, side_view_vertices(vlist), flist, K, mesh_colors=colors, alpha=1.0) if vlist else grey
    return np.concatenate([image, overlay, side], axis=1)


def write_panel(path: str | Path, panel: np.ndarray) -> Path:
    """Write an RGB uint8 picture as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path
