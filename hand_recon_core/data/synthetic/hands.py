"""Hands of the synthetic scenes: cached hand layers, pose/shape sampling, posing in the camera frame.

Parameters follow :mod:`hand_recon_core.data.sample`: ``hand_pose`` (48,) = global orientation in the camera
frame (axis-angle) + 15 absolute finger rotations (flat hand = 0; the layers are built with
``flat_hand_mean=True``), ``betas`` (10,), ``transl`` (3,) with smplx semantics (the wrist lands at
``J0(betas) + transl``). Vertices and joints are produced by running the layer on exactly these float32
parameters, so re-running the layer on the stored parameters reproduces them.

Shape: ``betas ~ N(0, BETA_STD^2)`` clipped to ``+-BETA_CLIP`` per coefficient.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from hand_recon_core.hand_model.constants import NUM_BETAS, SIDES
from hand_recon_core.hand_model.layer import HandLayer
from hand_recon_core.hand_model.loader import load_hand_model
from hand_recon_core.hand_model.pose_sampler import PoseSampler

__all__ = [
    "BETA_STD",
    "BETA_CLIP",
    "HandModels",
    "Hand",
    "get_hand_models",
    "single_thread",
    "sample_betas",
    "pose_hands",
    "rest_wrist",
]

#: Standard deviation of the sampled shape coefficients.
BETA_STD = 1.0
#: Clip of the sampled shape coefficients.
BETA_CLIP = 2.5


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block (bitwise-reproducible reductions whatever the
    caller's thread setting, e.g. in the main process vs a DataLoader worker), then restore the setting."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@dataclass
class HandModels:
    """The right and left layers of one hand model plus per-model constants the engine needs.

    Attributes:
        name: the name or path the layers were loaded from (e.g. ``"open"``), stored as ``hand_model_id``.
        layers: ``{"right": HandLayer, "left": HandLayer}`` (float32, CPU, ``flat_hand_mean=True``).
        samplers: ``{"right": PoseSampler, "left": PoseSampler}``.
        faces: ``{"right": (F, 3) int64, "left": (F, 3) int64}`` outward CCW triangles.
        part_labels: (V,) int64 part (kinematic joint 0-15) of every vertex (same for both sides).
        tip_vertex_ids: (5,) int64.
        dense_code: (V, 3) float32 dense-correspondence code of every vertex (see
            :mod:`hand_recon_core.data.synthetic.ground_truth`), the same for both sides.
        rest_vertices: ``{side: (V, 3) float64}`` flat rest template (betas 0), model frame.
        dorsal_dirs: ``{side: (16, 3) float64}`` unit dorsal direction per part in the model frame.
    """

    name: str
    layers: dict[str, HandLayer]
    samplers: dict[str, PoseSampler]
    faces: dict[str, np.ndarray]
    part_labels: np.ndarray
    tip_vertex_ids: np.ndarray
    dense_code: np.ndarray
    rest_vertices: dict[str, np.ndarray]
    dorsal_dirs: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_vertices(self) -> int:
        """Number of mesh vertices V."""
        return int(self.part_labels.shape[0])


def _dense_code(rest_right: np.ndarray) -> np.ndarray:
    lo, hi = rest_right.min(axis=0), rest_right.max(axis=0)
    return ((rest_right - lo) / (hi - lo)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def get_hand_models(name: str = "open") -> HandModels:
    """Load (once per process) the right and left layers of a hand model.

    Args:
        name: ``"open"``, ``"mano"`` or a path accepted by :func:`hand_recon_core.hand_model.loader.load_hand_model`.

    Returns:
        :class:`HandModels`.
    """
    layers = {s: load_hand_model(name, side=s, flat_hand_mean=True) for s in SIDES}
    samplers = {s: PoseSampler(layers[s]) for s in SIDES}
    faces = {s: layers[s].faces.numpy().astype(np.int64) for s in SIDES}
    rest = {s: layers[s].v_template.double().numpy() for s in SIDES}
    dorsal = {}
    for s in SIDES:
        frames = samplers[s].frames  # right-hand convention: column 1 is palmar
        d = -frames[:, :, 1]
        if s == "left":
            d = d * np.array([-1.0, 1.0, 1.0])
        dorsal[s] = d / np.linalg.norm(d, axis=1, keepdims=True)
    right_rest = rest["right"]
    return HandModels(
        name=str(name), layers=layers, samplers=samplers, faces=faces,
        part_labels=layers["right"].part_labels.numpy().astype(np.int64),
        tip_vertex_ids=layers["right"].tip_vertex_ids.numpy().astype(np.int64),
        dense_code=_dense_code(right_rest), rest_vertices=rest, dorsal_dirs=dorsal)


def sample_betas(rng: np.random.Generator, n: int = 1, std: float = BETA_STD) -> np.ndarray:
    """Random shape coefficients.

    Args:
        rng: random generator.
        n: number of hands.
        std: standard deviation per coefficient.

    Returns:
        (n, 10) float32, ``N(0, std^2)`` clipped to ``+-BETA_CLIP``.
    """
    return np.clip(rng.normal(0.0, std, size=(n, NUM_BETAS)), -BETA_CLIP, BETA_CLIP).astype(np.float32)


@dataclass
class Hand:
    """One posed hand in the camera frame.

    Attributes:
        side: ``"right"`` or ``"left"``.
        hand_pose: (48,) float32 axis-angle, radians: global orientation (camera frame) + 15 finger joints.
        betas: (10,) float32.
        transl: (3,) float32 metres (smplx semantics).
        vertices: (V, 3) float32 camera frame, metres.
        joints: (21, 3) float32 camera frame, metres, ``mano21`` order.
        albedo: (V, 3) float32 skin colour in [0, 1] (set by the appearance step).
        tone: skin palette position (see :func:`hand_recon_core.data.synthetic.appearance.skin_tone`).
    """

    side: str
    hand_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray
    albedo: np.ndarray | None = None
    tone: float = 0.0


def pose_hands(models: HandModels, sides: list[str], hand_pose: np.ndarray, betas: np.ndarray,
               transl: np.ndarray) -> list[Hand]:
    """Run the layers on float32 parameters (one thread, no grad) and wrap the results.

    Args:
        models: the hand models.
        sides: N side names.
        hand_pose: (N, 48) axis-angle (global orientation + absolute finger pose), radians.
        betas: (N, 10).
        transl: (N, 3) metres.

    Returns:
        N :class:`Hand` (parameters cast to float32 first; vertices/joints are the layer output for them).
    """
    hp = np.asarray(hand_pose, dtype=np.float32).reshape(-1, 48)
    bt = np.asarray(betas, dtype=np.float32).reshape(-1, NUM_BETAS)
    tr = np.asarray(transl, dtype=np.float32).reshape(-1, 3)
    hands: list[Hand | None] = [None] * len(sides)
    with torch.no_grad(), single_thread():
        for side in SIDES:
            idx = [i for i, s in enumerate(sides) if s == side]
            if not idx:
                continue
            out = models.layers[side](global_orient=torch.from_numpy(hp[idx, :3]),
                                      hand_pose=torch.from_numpy(hp[idx, 3:]),
                                      betas=torch.from_numpy(bt[idx]), transl=torch.from_numpy(tr[idx]))
            for k, i in enumerate(idx):
                hands[i] = Hand(side=side, hand_pose=hp[i].copy(), betas=bt[i].copy(), transl=tr[i].copy(),
                                vertices=out.vertices[k].numpy().astype(np.float32),
                                joints=out.joints[k].numpy().astype(np.float32))
    return [h for h in hands if h is not None]


def rest_wrist(models: HandModels, side: str, betas: np.ndarray) -> np.ndarray:
    """Rest wrist joint ``J0(betas)`` (model frame, metres) of one hand.

    Args:
        models: the hand models.
        side: ``"right"`` or ``"left"``.
        betas: (10,) shape.

    Returns:
        (3,) float64.
    """
    with torch.no_grad(), single_thread():
        j = models.layers[side].rest_joints(torch.as_tensor(np.asarray(betas, np.float32))[None])
    return j[0, 0].double().numpy()
