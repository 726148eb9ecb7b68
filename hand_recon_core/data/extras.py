"""Keeping the synthetic engine's extra labels consistent under the augmentations of :mod:`.augment`.

The extras (``hand_recon_core.data.synthetic.ground_truth.EXTRA_KEYS``) are not part of the sample format, but
a sample that carries them must stay self-consistent after a geometric augmentation, a flip or a hand drop:

* ``center`` / ``center_valid`` (pixels): recomputed from the transformed keypoints and visibility with the
  engine's own rule (:func:`~hand_recon_core.data.synthetic.ground_truth.hand_center`), so the centre remains the
  mean of the visible keypoints;
* ``object_mask`` (H, W): warped / mirrored like the instance mask (nearest, ``-1`` outside);
* ``object_pose`` (M, 4, 4) object-to-camera: left-multiplied by the camera rotation ``Q`` of a warp; mirrored as
  ``F T F`` with ``F = diag(-1, 1, 1, 1)`` by a flip (exact for the engine's mirror-symmetric primitives: box,
  cylinder, sphere centred on their frame);
* ``sh_coeffs`` (27,) camera-frame lighting: re-expressed for the rotated / mirrored directions (SH bands are
  closed under orthogonal maps; solved by least squares on fixed directions, exact to rounding);
* per-hand extras (``center``, ``center_valid``, ``albedo``, ``skin_tone``) are indexed with the kept hands;
  ``interaction_pairs`` keep the pairs of kept hands, renumbered; ``object_hand`` is renumbered (``-1`` when its
  hand was dropped).

``albedo`` follows the vertex order, which a flip keeps (the mirrored hand is the other side's model with the same
vertex order), so it needs no change there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["PER_HAND_EXTRAS", "warp_extras", "flip_extras", "select_extras", "recompute_centers", "rotate_sh"]

#: Extras with one entry per hand (first axis).
PER_HAND_EXTRAS = ("center", "center_valid", "albedo", "skin_tone")


def _fibonacci_directions(n: int = 64) -> np.ndarray:
    """(n, 3) unit vectors spread evenly over the sphere (float64)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(1.0 - z * z)
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def rotate_sh(sh: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """SH lighting after an orthogonal change of the camera frame ``n' = R n``.

    Args:
        sh: (27,) coefficients, channel-major (3 channels x 9, the order of
            :func:`hand_recon_core.render.rasterizer.sh_basis`).
        matrix: (3, 3) orthogonal ``R`` (a rotation, or a reflection such as ``diag(-1, 1, 1)``).

    Returns:
        (27,) float32 coefficients ``c'`` with ``sum c'_i Y_i(R n) = sum c_i Y_i(n)`` for every direction ``n``.
    """
    from hand_recon_core.render.rasterizer import sh_basis

    r = np.asarray(matrix, np.float64)
    new_dirs = _fibonacci_directions()
    basis_new = sh_basis(new_dirs)  # Y(n')
    basis_old = sh_basis(new_dirs @ r)  # Y(R^T n') (rows: n'^T R = (R^T n')^T)
    coeffs = np.asarray(sh, np.float64).reshape(3, 9)
    values = basis_old @ coeffs.T  # (D, 3) the light at each new direction
    solved, *_ = np.linalg.lstsq(basis_new, values, rcond=None)
    return solved.T.reshape(-1).astype(np.float32)


def recompute_centers(out: dict[str, Any]) -> None:
    """Recompute ``center`` / ``center_valid`` (in place, when present) from the keypoints and visibility."""
    from hand_recon_core.data.synthetic.ground_truth import hand_center

    if "center" not in out:
        return
    h, w = out["image"].shape[:2]
    centers, valid = [], []
    for i in range(len(out["keypoints_2d"])):
        c, ok = hand_center(np.asarray(out["keypoints_2d"][i]), np.asarray(out["joint_visible"][i]),
                            np.asarray(out["bbox"][i]), (h, w))
        centers.append(c)
        valid.append(ok)
    out["center"] = np.asarray(centers, np.float32).reshape(-1, 2)
    out["center_valid"] = np.asarray(valid, bool)


def warp_extras(out: dict[str, Any], sample: Mapping[str, Any], matrix: np.ndarray, q: np.ndarray,
                out_size: tuple[int, int]) -> None:
    """Update ``out``'s extras (in place) after the image affine ``matrix`` with camera rotation ``q``.

    The centres are recomputed by :func:`recompute_centers` once visibility and dropped hands are settled.

    Args:
        out: the warped sample (keypoints, visibility and boxes already transformed).
        sample: the input sample.
        matrix: (2, 3) image affine, pixels.
        q: (3, 3) camera rotation of the warp (:func:`hand_recon_core.data.augment.affine_intrinsics`).
        out_size: ``(width, height)`` of the output.
    """
    from hand_recon_core.data.augment import warp_dense

    if "object_mask" in sample:
        out["object_mask"] = warp_dense(np.asarray(sample["object_mask"], np.int16), matrix, out_size, nearest=True,
                                        border_value=-1.0)
    if not np.allclose(q, np.eye(3)):
        if "object_pose" in sample:
            rot = np.eye(4)
            rot[:3, :3] = q
            out["object_pose"] = (rot @ np.asarray(sample["object_pose"], np.float64)).astype(np.float32)
        if "sh_coeffs" in sample:
            out["sh_coeffs"] = rotate_sh(sample["sh_coeffs"], q)


def flip_extras(out: dict[str, Any], sample: Mapping[str, Any]) -> None:
    """Update ``out``'s extras (in place) after a horizontal flip (:func:`hand_recon_core.data.augment.flip_sample`)."""
    if "object_mask" in sample:
        out["object_mask"] = np.ascontiguousarray(np.asarray(sample["object_mask"])[:, ::-1])
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0])
    if "object_pose" in sample:
        out["object_pose"] = (mirror @ np.asarray(sample["object_pose"], np.float64) @ mirror).astype(np.float32)
    if "sh_coeffs" in sample:
        out["sh_coeffs"] = rotate_sh(sample["sh_coeffs"], mirror[:3, :3])
    recompute_centers(out)


def select_extras(out: dict[str, Any], sample: Mapping[str, Any], idx: np.ndarray, num_hands: int) -> None:
    """Index / renumber ``out``'s extras (in place) when only hands ``idx`` (new order) of ``num_hands`` stay."""
    for key in PER_HAND_EXTRAS:
        if key in sample:
            out[key] = np.ascontiguousarray(np.asarray(sample[key])[idx])
    new_index = np.full(num_hands + 1, -1, dtype=np.int64)  # last entry: old -1 stays -1
    new_index[idx] = np.arange(len(idx))
    if "interaction_pairs" in sample:
        pairs = np.asarray(sample["interaction_pairs"], np.int64).reshape(-1, 2)
        mapped = new_index[pairs]
        kept = (mapped >= 0).all(axis=1)
        out["interaction_pairs"] = np.sort(mapped[kept], axis=1).reshape(-1, 2)
    if "object_hand" in sample:
        hands = np.asarray(sample["object_hand"], np.int64)
        out["object_hand"] = new_index[np.where(hands < 0, num_hands, hands)]
