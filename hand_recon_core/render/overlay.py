"""Mesh renders and 2D skeletons drawn over RGB images (demo overlays, ``--vis``).

Coordinates follow :mod:`.rasterizer`: meshes in the camera frame (x right, y down, z forward, metres), 2D points
in pixels with pixel centres at integers (the project convention, which OpenCV's drawing shares).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from hand_recon_core.render.rasterizer import render_meshes

__all__ = ["PALETTE", "draw_keypoints", "draw_overlay"]

#: default RGB colours in [0, 1], one per mesh / hand in turn
PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.95, 0.55, 0.35),
    (0.35, 0.65, 0.95),
    (0.45, 0.85, 0.45),
    (0.95, 0.85, 0.35),
    (0.75, 0.45, 0.90),
    (0.40, 0.90, 0.90),
)

_SHIFT = 4  # cv2 fixed-point fractional bits for sub-pixel drawing


def _cv_point(p: np.ndarray) -> tuple[int, int]:
    """Pixel coordinates (centres at integers) -> cv2 fixed-point integer point."""
    return int(round(p[0] * (1 << _SHIFT))), int(round(p[1] * (1 << _SHIFT)))


def _rgb255(color: Sequence[float]) -> tuple[int, int, int]:
    c = np.clip(np.asarray(color, dtype=np.float64), 0.0, 1.0) * 255.0
    return int(round(c[0])), int(round(c[1])), int(round(c[2]))


def draw_keypoints(image: np.ndarray, keypoints: np.ndarray, skeleton: Sequence[tuple[int, int]] | None = None,
                   color: Sequence[float] = PALETTE[0], line_colors: Sequence[Sequence[float]] | None = None,
                   radius: float = 3.0, thickness: int = 2) -> np.ndarray:
    """Draw 2D keypoints and skeleton lines in place (anti-aliased, sub-pixel).

    Args:
        image: (H, W, 3) uint8 RGB, modified in place.
        keypoints: (J, 2) float pixel coordinates (u right, v down; centres at integers); rows with a NaN are
            skipped.
        skeleton: optional (parent, child) index pairs into ``keypoints`` (e.g. from the hand model's joint-order
            tables); a line is drawn for each pair.
        color: RGB in [0, 1] of the points (and of the lines without ``line_colors``).
        line_colors: optional RGB in [0, 1] per skeleton pair.
        radius: point radius in pixels.
        thickness: line thickness in pixels.

    Returns:
        ``image``.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(kp).all(axis=1)
    for e, (a, b) in enumerate(skeleton or ()):
        if ok[a] and ok[b]:
            c = _rgb255(line_colors[e] if line_colors is not None else color)
            cv2.line(image, _cv_point(kp[a]), _cv_point(kp[b]), c, thickness, cv2.LINE_AA, _SHIFT)
    r = int(round(radius * (1 << _SHIFT)))
    for j in np.flatnonzero(ok):
        cv2.circle(image, _cv_point(kp[j]), r, _rgb255(color), -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(image, _cv_point(kp[j]), r, (255, 255, 255), 1, cv2.LINE_AA, _SHIFT)
    return image


def draw_overlay(image: np.ndarray, vertices: Sequence[np.ndarray] = (), faces: Sequence[np.ndarray] = (),
                 K: np.ndarray | None = None, mesh_colors: Sequence[Sequence[float]] | None = None,
                 alpha: float = 0.6, keypoints: Sequence[np.ndarray] | None = None,
                 skeleton: Sequence[tuple[int, int]] | None = None, sh_coeffs: np.ndarray | None = None,
                 radius: float = 3.0, thickness: int = 2) -> np.ndarray:
    """Blend shaded meshes over an image, then draw 2D keypoints / skeletons on top.

    Args:
        image: (H, W, 3) uint8 RGB (not modified).
        vertices: list of (V_i, 3) float arrays, camera frame, metres.
        faces: list of (F_i, 3) int arrays (outward counter-clockwise).
        K: (3, 3) intrinsics in pixels (required when meshes are given).
        mesh_colors: optional RGB in [0, 1] per mesh (default :data:`PALETTE` in turn).
        alpha: mesh opacity in [0, 1].
        keypoints: optional list of (J, 2) pixel coordinates, one per hand (NaN rows skipped).
        skeleton: optional (parent, child) index pairs drawn for every keypoint set.
        sh_coeffs: (27,) SH lighting of the meshes (None: the renderer's default frontal light).
        radius: keypoint radius in pixels.
        thickness: skeleton line thickness in pixels.

    Returns:
        (H, W, 3) uint8 RGB overlay.
    """
    img = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = img.shape[:2]
    out = img.copy()
    if len(vertices):
        if K is None:
            raise ValueError("draw_overlay needs K to render meshes")
        colors = [mesh_colors[i] if mesh_colors is not None else PALETTE[i % len(PALETTE)]
                  for i in range(len(vertices))]
        base = img.astype(np.float32) / 255.0
        # render over the image itself so the anti-aliased edges blend with it
        res = render_meshes(list(vertices), list(faces), [np.asarray(c, dtype=np.float32) for c in colors], K,
                            (h, w), sh_coeffs=sh_coeffs, background=base, antialias=True)
        blended = (1.0 - alpha) * base + alpha * res.image
        out = np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)
    for i, kp in enumerate(keypoints or ()):
        draw_keypoints(out, kp, skeleton, color=PALETTE[i % len(PALETTE)], radius=radius, thickness=thickness)
    return out
