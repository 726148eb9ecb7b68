"""Right <-> left mirroring of poses, rotations, points and meshes (numpy or torch).

The reflection is ``M = diag(-1, 1, 1)`` (x -> -x) in the hand-model frame, the convention of MANO's two
files: a left hand is the mirror image of a right hand. A rotation ``R`` of the right hand corresponds to
``M R M`` for the left hand; on an axis-angle vector this negates the y and z components. Mirroring is its own
inverse, so the same functions convert left to right.

Note: mirroring a hand in the *camera* frame (flipping an image) uses the camera's x axis instead; these
helpers act in the hand-model frame, where the model's global orientation is also expressed.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _signs(like: ArrayT, values: tuple[float, float, float]) -> ArrayT:
    if isinstance(like, torch.Tensor):
        return torch.tensor(values, dtype=like.dtype, device=like.device)
    return np.asarray(values, dtype=like.dtype if np.issubdtype(like.dtype, np.floating) else np.float64)


def mirror_axis_angle(aa: ArrayT) -> ArrayT:
    """Mirror axis-angle rotations: ``(x, y, z) -> (x, -y, -z)``.

    Args:
        aa: (..., 3K) axis-angle vectors (radians), e.g. (B, 3), (B, 45), (B, 48) or (B, 16, 3); every
            consecutive triple is one rotation.

    Returns:
        Same shape and type.
    """
    if aa.shape[-1] % 3:
        raise ValueError(f"last dimension must be a multiple of 3, got {aa.shape[-1]}")
    s = _signs(aa, (1.0, -1.0, -1.0))
    shape = aa.shape
    return (aa.reshape(*shape[:-1], shape[-1] // 3, 3) * s).reshape(shape)


def mirror_rotation_matrix(rot: ArrayT) -> ArrayT:
    """Mirror rotation matrices: ``M R M`` with ``M = diag(-1, 1, 1)``.

    Args:
        rot: (..., 3, 3) rotation matrices.

    Returns:
        (..., 3, 3), same type.
    """
    m = _signs(rot, (-1.0, 1.0, 1.0))
    return rot * m[:, None] * m[None, :]


def mirror_points(points: ArrayT) -> ArrayT:
    """Mirror points/vertices/joints: ``x -> -x``.

    Args:
        points: (..., 3) positions (any units) in the hand-model frame.

    Returns:
        (..., 3), same type.
    """
    return points * _signs(points, (-1.0, 1.0, 1.0))


#: Alias of :func:`mirror_points` for mesh vertices.
mirror_vertices = mirror_points


def mirror_faces(faces: ArrayT) -> ArrayT:
    """Reverse the winding of triangles so normals stay outward after mirroring the vertices.

    Args:
        faces: (F, 3) vertex indices.

    Returns:
        (F, 3) with columns (0, 2, 1), same type.
    """
    if isinstance(faces, torch.Tensor):
        return faces[:, [0, 2, 1]]
    return faces[:, [0, 2, 1]].copy()


def mirror_translation(transl: ArrayT) -> ArrayT:
    """Mirror a translation vector (x -> -x); same as :func:`mirror_points`."""
    return mirror_points(transl)
