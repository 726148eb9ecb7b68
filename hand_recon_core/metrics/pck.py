"""PCK curves and their area under the curve (FreiHAND / HO3D evaluator convention).

Convention (FreiHAND ``EvalUtil``; also the single-stage paper's AUC_J/AUC_V and DIR Fig. 6): a point is
correct at threshold ``t`` when its error is ``<= t``; the default thresholds are 100 equally spaced values
from 0 to 50 mm (``np.linspace(0, 0.05, 100)`` metres); with per-joint errors the PCK is computed per joint
and averaged over joints; the AUC integrates the curve with the trapezoid rule and divides by the threshold
range, so a perfect prediction scores 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hand_recon_core.metrics._arrays import as_float64, as_mask

__all__ = ["DEFAULT_PCK_THRESHOLDS_M", "auc", "pck_curve"]

#: 0-50 mm in 100 steps, metres (FreiHAND/HO3D evaluation).
DEFAULT_PCK_THRESHOLDS_M: np.ndarray = np.linspace(0.0, 0.05, 100)


def pck_curve(errors: Any, thresholds: Any = None, mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Percentage of correct points for each threshold.

    Args:
        errors: ``(M,)`` errors, or ``(N, K)`` per-sample per-joint errors (e.g. from
            :func:`hand_recon_core.metrics.position_errors.position_errors`), metres.
        thresholds: ``(T,)`` increasing thresholds, metres; default :data:`DEFAULT_PCK_THRESHOLDS_M`.
        mask: optional validity, same shape as ``errors``.

    Returns:
        ``thresholds (T,)`` and ``pck (T,)`` in ``[0, 1]``. For ``(N, K)`` errors: the mean over joints of
        each joint's fraction of valid samples with ``error <= t`` (joints with no valid sample are skipped),
        as in the FreiHAND evaluator; for ``(M,)`` errors: the fraction of valid entries.
    """
    e = as_float64(errors, "errors")
    thr = DEFAULT_PCK_THRESHOLDS_M if thresholds is None else as_float64(thresholds, "thresholds")
    if thr.ndim != 1 or thr.size == 0:
        raise ValueError(f"thresholds must be a non-empty 1-D array, got shape {thr.shape}")
    valid = as_mask(mask, e.shape)
    if e.ndim == 1:
        e, valid = e[:, None], valid[:, None]
    elif e.ndim != 2:
        raise ValueError(f"errors must be (M,) or (N, K), got shape {e.shape}")
    counts = valid.sum(0)  # (K,)
    keep = counts > 0
    if not keep.any():
        return thr.copy(), np.full(thr.shape, np.nan)
    correct = (e[None] <= thr[:, None, None]) & valid[None]  # (T, N, K)
    per_joint = correct.sum(1)[:, keep] / counts[keep]
    return thr.copy(), per_joint.mean(-1)


def auc(thresholds: Any, pck: Any) -> float:
    """Area under a PCK curve, trapezoid rule, normalised by the threshold range (FreiHAND ``calc_auc``).

    Args:
        thresholds: ``(T,)`` increasing thresholds (any unit; the result is unitless).
        pck: ``(T,)`` PCK values in ``[0, 1]``.

    Returns:
        ``trapezoid(pck, thresholds) / (thresholds[-1] - thresholds[0])`` in ``[0, 1]``.
    """
    x = as_float64(thresholds, "thresholds")
    y = as_float64(pck, "pck")
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"thresholds and pck must be 1-D of equal length >= 2, got {x.shape} and {y.shape}")
    span = x[-1] - x[0]
    if span <= 0:
        raise ValueError("thresholds must be increasing")
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) * 0.5))
    return area / span
