"""Bringing each dataset's MANO parameters into the sample format's convention.

The sample format (see :mod:`hand_recon_core.data.sample`) stores ``hand_pose`` as absolute axis-angle (flat-hand
zero) with the global orientation and ``transl`` in the OpenCV camera frame, with smplx/manopth semantics for
``transl`` (rotation about the rest root joint ``J0(betas)``, then translation). The datasets store other
conventions:

* finger pose relative to MANO's ``hands_mean`` (smplx / manopth ``flat_hand_mean=False``): InterHand2.6M,
  FreiHAND; or as PCA coefficients relative to the mean: Dex-YCB;
* parameters in another frame: InterHand2.6M (world frame, millimetres), HO3D (OpenGL camera, y and z flipped).

Undoing these needs the model's ``hands_mean``, ``hands_components`` and rest joints ``J(betas)``, i.e. the MANO
arrays (licence-restricted, never shipped). :class:`ManoParamConverter` holds what is needed, built from
:class:`~hand_recon_core.hand_model.model_data.HandModelData` objects (e.g. from
:func:`~hand_recon_core.hand_model.mano_pickle.load_mano_pickle`); loaders built without one set
``has_params = False``.

A rigid change of frame ``x' = A x + b`` of a posed model: the mesh is ``R (v - J0) + J0 + t``, so in the new
frame it is ``(A R)(v - J0) + J0 + [A (J0 + t) + b - J0]``: the global orientation becomes ``A R`` and the
translation ``A (J0 + t) + b - J0``. The finger pose and betas do not change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import torch

from hand_recon_core.data.sample import HANDEDNESS_NAMES, handedness_from_name
from hand_recon_core.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from hand_recon_core.hand_model.model_data import HandModelData

__all__ = ["ManoParamConverter", "axis_angle_to_rotation", "change_param_frame", "build_converter"]

_LOG = logging.getLogger(__name__)


def axis_angle_to_rotation(axis_angle: np.ndarray) -> np.ndarray:
    """(3, 3) float64 rotation matrix of one (3,) axis-angle vector (radians)."""
    return axis_angle_to_matrix(torch.as_tensor(np.asarray(axis_angle, dtype=np.float64))).numpy()


def change_param_frame(
    global_orient: np.ndarray,
    transl: np.ndarray,
    root_joint: np.ndarray,
    rotation: np.ndarray,
    translation: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-express one hand's global orientation and translation after the change of frame ``x' = A x + b``.

    Args:
        global_orient: (3,) axis-angle, radians, old frame.
        transl: (3,) metres, old frame (smplx/manopth semantics).
        root_joint: (3,) the shaped rest root joint ``J0(betas)``, metres, hand-model frame.
        rotation: (3, 3) ``A``, a rotation matrix.
        translation: (3,) ``b``, metres.

    Returns:
        ``(global_orient', transl')``: (3,) axis-angle and (3,) metres in the new frame, float64.
    """
    new_rot = np.asarray(rotation, np.float64) @ axis_angle_to_rotation(global_orient)
    new_orient = matrix_to_axis_angle(torch.as_tensor(new_rot)).numpy()
    j0 = np.asarray(root_joint, dtype=np.float64)
    new_transl = np.asarray(rotation, np.float64) @ (j0 + transl) + np.asarray(translation, np.float64) - j0
    return new_orient, new_transl


class ManoParamConverter:
    """Per-side MANO quantities needed to convert dataset parameters (see the module docstring).

    Args:
        hand_models: one :class:`HandModelData` per side needed (``side`` ``"right"`` and/or ``"left"``), in
            MANO's layout and metres. For the official left file pass the shapedirs-fixed model (what
            ``load_mano_pickle`` returns by default).

    Raises:
        ValueError: two models for the same side.
    """

    def __init__(self, hand_models: Iterable[HandModelData]) -> None:
        self._mean: dict[int, np.ndarray] = {}
        self._components: dict[int, np.ndarray] = {}
        self._joint_template: dict[int, np.ndarray] = {}
        self._joint_shapedirs: dict[int, np.ndarray] = {}
        for model in hand_models:
            code = handedness_from_name(model.side)
            if code in self._mean:
                raise ValueError(f"two hand models given for the {model.side} side")
            regressor = model.dense_regressor()  # (16, V)
            self._mean[code] = np.asarray(model.hands_mean, dtype=np.float64).reshape(45)
            self._components[code] = np.asarray(model.hands_components, dtype=np.float64)
            self._joint_template[code] = regressor @ np.asarray(model.v_template, dtype=np.float64)
            self._joint_shapedirs[code] = np.einsum("jv,vcb->jcb", regressor, np.asarray(model.shapedirs, np.float64))

    def require(self, handedness: Iterable[int], dataset: str) -> None:
        """Raise ``ValueError`` unless a model was given for every side in ``handedness``."""
        missing = sorted({HANDEDNESS_NAMES[h] for h in handedness} - {HANDEDNESS_NAMES[h] for h in self._mean})
        if missing:
            raise ValueError(f"{dataset}: converting its MANO parameters needs the {', '.join(missing)} hand model")

    def rest_joints(self, betas: np.ndarray, handedness: int) -> np.ndarray:
        """(16, 3) float64 shaped rest joints ``J(betas)``, metres, MANO native order."""
        return self._joint_template[handedness] + self._joint_shapedirs[handedness] @ np.asarray(betas, np.float64)

    def from_relative_pose(self, finger_pose: np.ndarray, handedness: int) -> np.ndarray:
        """Absolute (45,) finger axis-angle from one relative to ``hands_mean`` (``flat_hand_mean=False``)."""
        return self._mean[handedness] + np.asarray(finger_pose, np.float64).reshape(45)

    def from_pca_pose(self, coefficients: np.ndarray, handedness: int) -> np.ndarray:
        """Absolute (45,) finger axis-angle from ``k <= 45`` PCA coefficients (manopth, ``flat_hand_mean=False``).

        ``pose = hands_mean + coefficients @ hands_components[:k]``.
        """
        coeffs = np.asarray(coefficients, np.float64).reshape(-1)
        return self._mean[handedness] + coeffs @ self._components[handedness][: len(coeffs)]


def build_converter(
    hand_models: Iterable[HandModelData] | None, dataset: str, handedness: Iterable[int]
) -> ManoParamConverter | None:
    """The converter a loader uses, or ``None`` (with one logged warning) when no hand model was given.

    Args:
        hand_models: the loader's ``hand_models`` argument.
        dataset: dataset name for messages.
        handedness: sides whose parameters the dataset holds.

    Raises:
        ValueError: hand models were given but one of the needed sides is missing.
    """
    if hand_models is None:
        _LOG.warning(
            "%s: no MANO hand models given (hand_models=None): samples carry has_params=False; pass the MANO "
            "models (hand_recon_core.hand_model.mano_pickle.load_mano_pickle) to get hand_pose/betas/transl",
            dataset,
        )
        return None
    converter = ManoParamConverter(hand_models)
    converter.require(handedness, dataset)
    return converter
