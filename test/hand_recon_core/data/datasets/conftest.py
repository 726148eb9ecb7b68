"""Fixtures and helpers shared by the dataset-loader tests.

The suite runs with ``--import-mode=importlib``, so test modules cannot import a sibling helper module; the
helpers are handed out by the ``tools`` fixture instead (``tools.rotation(...)`` etc.).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from hand_recon_core.hand_model.constants import MANO_PARENTS
from hand_recon_core.hand_model.layer import HandLayer
from hand_recon_core.hand_model.model_data import HandModelData

NUM_TOY_VERTICES = 32


def toy_hand_model(side: str, seed: int) -> HandModelData:
    """A small random model in MANO's layout (32 vertices), enough to test parameter conversions.

    Each kinematic joint is the mean of two vertices, so rest joints move with the shape coefficients.
    """
    rng = np.random.default_rng(seed)
    v = NUM_TOY_VERTICES
    regressor = np.zeros((16, v))
    for j in range(16):
        regressor[j, [2 * j, 2 * j + 1]] = 0.5
    weights = np.zeros((v, 16))
    weights[np.arange(v), np.arange(v) // 2] = 1.0
    return HandModelData(
        v_template=rng.normal(scale=0.05, size=(v, 3)),
        faces=np.array([[0, 1, 2], [2, 3, 0]], dtype=np.int64),
        shapedirs=rng.normal(scale=0.01, size=(v, 3, 10)),
        posedirs=np.zeros((v, 3, 135)),
        J_regressor=regressor,
        weights=weights,
        parents=np.array(MANO_PARENTS, dtype=np.int64),
        hands_components=np.linalg.qr(rng.normal(size=(45, 45)))[0],
        hands_mean=rng.normal(scale=0.2, size=45),
        tip_vertex_ids=np.arange(5, dtype=np.int64),
        part_labels=np.arange(v, dtype=np.int64) // 2,
        side=side,
        model_id=f"toy-{side}",
    ).validate()


def rotation(axis: str, degrees: float) -> np.ndarray:
    """(3, 3) rotation about a coordinate axis."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def rigid_mesh(model: HandModelData, betas: np.ndarray, global_orient: np.ndarray, transl: np.ndarray):
    """Vertices of the unarticulated model posed with smplx semantics ``R (v - J0) + J0 + t`` (metres).

    The finger articulation happens inside the model frame before this global step, so frame changes of the
    parameters can be checked exactly on this rigid part.
    """
    shaped = model.v_template + model.shapedirs @ betas
    j0 = model.dense_regressor()[0] @ shaped
    rot = cv2.Rodrigues(np.asarray(global_orient, dtype=np.float64))[0]
    return (shaped - j0) @ rot.T + j0 + transl


def layer_forward(
    model: HandModelData,
    global_orient: np.ndarray,
    hand_pose: np.ndarray,
    betas: np.ndarray,
    transl: np.ndarray,
    flat_hand_mean: bool,
    pose_repr: str = "axis_angle",
) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) vertices and (21, 3) ``mano21`` joints of the project's ``HandLayer`` (float64, metres).

    Used for end-to-end checks of the parameter conventions, articulation included.
    """
    layer = HandLayer(model, pose_repr=pose_repr, flat_hand_mean=flat_hand_mean, dtype=torch.float64)

    def t(x):
        return torch.as_tensor(np.asarray(x, dtype=np.float64))[None]

    out = layer(t(global_orient), t(hand_pose), t(betas), t(transl))
    return out.vertices[0].numpy(), out.joints[0].numpy()


def hand_joints(center: np.ndarray, seed: int) -> np.ndarray:
    """(21, 3) distinct joint positions (metres) scattered around ``center``."""
    rng = np.random.default_rng(seed)
    return np.asarray(center, dtype=np.float64) + rng.uniform(-0.04, 0.04, size=(21, 3))


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Reference pinhole projection, written independently of the loaders."""
    p = np.asarray(points, dtype=np.float64)
    u = K[0, 0] * p[..., 0] / p[..., 2] + K[0, 2]
    v = K[1, 1] * p[..., 1] / p[..., 2] + K[1, 2]
    return np.stack([u, v], axis=-1)


def write_image(path: Path, height: int, width: int, rgb: tuple[int, int, int]) -> None:
    """Write a flat-colour image (any extension cv2 knows), converting RGB to OpenCV's BGR."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = np.zeros((height, width, 3), dtype=np.uint8)
    bgr[:] = rgb[::-1]
    assert cv2.imwrite(str(path), bgr)


@pytest.fixture
def hand_models() -> tuple[HandModelData, HandModelData]:
    """(right, left) toy models."""
    return toy_hand_model("right", 1), toy_hand_model("left", 2)


@pytest.fixture
def tools() -> SimpleNamespace:
    """The helper functions of this module."""
    return SimpleNamespace(
        toy_hand_model=toy_hand_model,
        rotation=rotation,
        rigid_mesh=rigid_mesh,
        layer_forward=layer_forward,
        hand_joints=hand_joints,
        project=project,
        write_image=write_image,
    )

