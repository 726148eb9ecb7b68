"""Preview renders of a hand model: a labelled grid of both hands in named poses (uses the project renderer).

The camera looks at the back of each hand from a three-quarter view on the thumb side, with the fingers pointing
up in the image; the left hand's camera is the mirror image of the right hand's, so the two rows of the grid are
mirror images of each other (right thumb on the image's left, left thumb on the right).
"""

from __future__ import annotations

import numpy as np
import torch

from hand_recon_core.hand_model.pose_sampler import PoseSampler

#: Poses of the preview grid: (preset name, label).
GRID_POSES: tuple[tuple[str, str], ...] = (
    ("flat", "rest"), ("open", "open"), ("fist", "fist"), ("point", "point"), ("pinch", "pinch"),
    ("grasp", "grasp"), ("peace", "peace"), ("thumbs_up", "thumbs-up"),
)
#: Skin albedo (RGB in [0, 1]) of the previews.
SKIN = (0.86, 0.68, 0.56)
#: View direction (from the hand towards the camera) for a right hand, model frame: dorsal, thumb side,
#: slightly from the wrist.
VIEW_DIR_RIGHT = (0.3, 0.65, 0.7)
#: Light direction (towards the light) in the camera frame: above-left of the camera, so relief shows.
LIGHT_DIR_CAMERA = (-0.45, -0.6, -0.65)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera rotation and translation of an OpenCV camera (x right, y down, z forward).

    Args:
        eye: (3,) camera centre; target: (3,) point on the optical axis; up: (3,) direction shown upwards.

    Returns:
        ``(R, t)`` with ``X_cam = R @ X + t``.
    """
    z = np.asarray(target, float) - np.asarray(eye, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, float))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.stack([x, y, z])
    return r, -r @ np.asarray(eye, float)


def render_hand(vertices: np.ndarray, faces: np.ndarray, side: str, size: int = 256,
                distance: float = 0.5, field: float = 0.25) -> np.ndarray:
    """Render one posed hand (model frame, metres) from the three-quarter preview view.

    Args:
        vertices: (V, 3) posed vertices, model frame (fingers along -x at rest), metres.
        faces: (F, 3) triangles.
        side: ``"right"`` or ``"left"`` (the left camera mirrors the right one).
        size: image size in pixels (square).
        distance: camera distance from the hand's bounding-box centre (metres).
        field: width of the field of view at that distance (metres).

    Returns:
        (size, size, 3) float32 RGB in [0, 1].
    """
    from hand_recon_core.render.rasterizer import render_meshes, sh_from_directional_light

    m = np.array([-1.0, 1.0, 1.0]) if side == "left" else np.ones(3)
    target = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    view = np.asarray(VIEW_DIR_RIGHT) / np.linalg.norm(VIEW_DIR_RIGHT) * m
    up = np.array([-1.0, 0.0, 0.0]) * m
    r, t = look_at(target + distance * view, target, up)
    cam = (vertices @ r.T + t).astype(np.float32)
    f = size * distance / field
    k = np.array([[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]])
    bg = np.full((size, size, 3), 0.93, dtype=np.float32)
    colors = np.tile(np.asarray(SKIN, dtype=np.float32), (len(vertices), 1))
    sh = sh_from_directional_light(LIGHT_DIR_CAMERA, intensity=0.75, ambient=0.3)
    return render_meshes([cam], [np.asarray(faces)], [colors], k, (size, size), sh_coeffs=sh, background=bg).image


def render_pose_grid(layer_right, layer_left, poses: tuple[tuple[str, str], ...] = GRID_POSES,
                     size: int = 256) -> np.ndarray:
    """A labelled grid: one row per hand (right, left), one column per pose.

    Args:
        layer_right, layer_left: :class:`HandLayer` of each side (same model).
        poses: (preset name, label) pairs, see :data:`hand_recon_core.hand_model.pose_sampler.PRESET_NAMES`.
        size: pixels per cell.

    Returns:
        (2 * (size + 24) , len(poses) * size, 3) uint8 RGB image.
    """
    import cv2

    rows = []
    for layer in (layer_right, layer_left):
        sampler = PoseSampler(layer)
        aa = np.stack([sampler.preset(name) for name, _ in poses])
        with torch.no_grad():
            verts = layer(hand_pose=sampler.to_layer_input(aa)).vertices.double().cpu().numpy()
        faces = layer.faces.cpu().numpy()
        cells = []
        for k, (_, label) in enumerate(poses):
            img = (render_hand(verts[k], faces, layer.side, size) * 255).round().astype(np.uint8)
            bar = np.full((24, size, 3), 255, dtype=np.uint8)
            cv2.putText(bar, f"{layer.side}: {label}", (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1,
                        cv2.LINE_AA)
            cells.append(np.concatenate([bar, img], axis=0))
        rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(rows, axis=0)
