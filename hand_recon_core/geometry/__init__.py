"""hand_recon_core.geometry: batched torch rotations, cameras and point-set alignment.

Submodules (import from them directly or from this package):
    rotations   axis-angle / matrix / 6D / quaternion (wxyz) conversions.
    cameras     pinhole projection with intrinsics, weak perspective on a crop, conversions between them.
    procrustes  similarity (Umeyama) alignment, root alignment, least-squares scale.
"""

from hand_recon_core.geometry.cameras import (
    backproject_pixels,
    crop_intrinsics,
    crop_weak_perspective_to_full_translation,
    normalized_to_pixels,
    pixels_to_normalized,
    project_points,
    translation_to_weak_perspective,
    weak_perspective_project,
    weak_perspective_to_translation,
)
from hand_recon_core.geometry.procrustes import (
    SimilarityTransform,
    align_root,
    align_scale_lstsq,
    apply_similarity,
    procrustes_align,
)
from hand_recon_core.geometry.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rot6d,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    rot6d_to_matrix,
)

__all__ = [
    "SimilarityTransform",
    "align_root",
    "align_scale_lstsq",
    "apply_similarity",
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "backproject_pixels",
    "crop_intrinsics",
    "crop_weak_perspective_to_full_translation",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rot6d",
    "normalized_to_pixels",
    "pixels_to_normalized",
    "procrustes_align",
    "project_points",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "rot6d_to_matrix",
    "translation_to_weak_perspective",
    "weak_perspective_project",
    "weak_perspective_to_translation",
]
