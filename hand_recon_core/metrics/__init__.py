"""hand_recon_core.metrics: evaluation metrics as pure functions (numpy float64; torch inputs accepted).

Units: metres for 3D errors and thresholds, cubic metres for volumes, pixels for 2D errors (MIAA, boxes).
Log :func:`describe_alignment` with every MPJPE/MPVPE number.

Submodules:
    position_errors  MPJPE, MPVPE, PA-MPJPE, PA-MPVPE (explicit root/scale/Procrustes alignment), MRRPE, MIAA.
    pck              PCK curves and AUC (FreiHAND evaluator convention).
    surface          F-score (F@5 mm, F@15 mm), winding numbers, interpenetration volume.
    detection        box IoU, VOC-style average precision.
"""

from hand_recon_core.metrics.detection import box_iou, detection_ap
from hand_recon_core.metrics.pck import DEFAULT_PCK_THRESHOLDS_M, auc, pck_curve
from hand_recon_core.metrics.position_errors import (
    HAND_BONE_LENGTH_M,
    MIDDLE_MCP_INDEX,
    WRIST_INDEX,
    describe_alignment,
    joint_index,
    miaa,
    mpjpe,
    mpvpe,
    mrrpe,
    pa_mpjpe,
    pa_mpvpe,
    position_errors,
    rotation_error_deg,
)
from hand_recon_core.metrics.surface import (
    f_score,
    interpenetration_volume,
    precision_recall,
    winding_numbers,
)

__all__ = [
    "DEFAULT_PCK_THRESHOLDS_M",
    "HAND_BONE_LENGTH_M",
    "MIDDLE_MCP_INDEX",
    "WRIST_INDEX",
    "auc",
    "box_iou",
    "describe_alignment",
    "detection_ap",
    "f_score",
    "interpenetration_volume",
    "joint_index",
    "miaa",
    "mpjpe",
    "mpvpe",
    "mrrpe",
    "pa_mpjpe",
    "pa_mpvpe",
    "pck_curve",
    "position_errors",
    "rotation_error_deg",
    "precision_recall",
    "winding_numbers",
]
