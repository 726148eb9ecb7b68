"""21-joint orders and one table-driven conversion between them.

Orders (all for one hand; the left hand uses the same order as the right):

* ``"mano21"`` (canonical; the hand layer's output): the 16 MANO kinematic joints in native order (wrist;
  index, middle, pinky, ring MCP/PIP/DIP; thumb CMC/MCP/IP), then the fingertips thumb, index, middle, ring,
  pinky (indices 16-20).
* ``"openpose21"`` (identical to FreiHAND and MediaPipe, aliases ``"freihand21"`` and ``"mediapipe21"``):
  0 wrist; thumb 1-4 (CMC, MCP, IP, tip); index 5-8 (MCP, PIP, DIP, tip); middle 9-12; ring 13-16;
  pinky 17-20.
* ``"interhand21"`` (InterHand2.6M, per hand: right joints 0-20, left 21-41 in the dataset): thumb tip to
  base (0-3), index tip to base (4-7), middle (8-11), ring (12-15), pinky (16-19), wrist 20.

Joints are identified by semantic names shared by every order, so the conversion tables are derived from the
name lists (and checked against the published index tables in the tests).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from hand_recon_core.hand_model.constants import KINEMATIC_JOINT_NAMES

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

_FINGERS_THUMB_FIRST = ("thumb", "index", "middle", "ring", "pinky")
_SEGMENTS = {"thumb": ("cmc", "mcp", "ip", "tip")}
for _f in ("index", "middle", "ring", "pinky"):
    _SEGMENTS[_f] = ("mcp", "pip", "dip", "tip")


def _finger_names(finger: str) -> list[str]:
    return [f"{finger}_{s}" for s in _SEGMENTS[finger]]


_MANO21 = (*KINEMATIC_JOINT_NAMES, *(f"{f}_tip" for f in _FINGERS_THUMB_FIRST))
_OPENPOSE21 = ("wrist", *(n for f in _FINGERS_THUMB_FIRST for n in _finger_names(f)))
_INTERHAND21 = (*(n for f in _FINGERS_THUMB_FIRST for n in reversed(_finger_names(f))), "wrist")

#: Joint names of each order (canonical names; aliases resolve to the same tuple).
JOINT_NAMES: dict[str, tuple[str, ...]] = {
    "mano21": _MANO21,
    "openpose21": _OPENPOSE21,
    "freihand21": _OPENPOSE21,
    "mediapipe21": _OPENPOSE21,
    "interhand21": _INTERHAND21,
}

#: Order name aliases -> canonical order name.
ALIASES: dict[str, str] = {"freihand21": "openpose21", "mediapipe21": "openpose21"}


def _parent_name(name: str) -> str | None:
    """Anatomical parent of a joint name (None for the wrist)."""
    if name == "wrist":
        return None
    finger, seg = name.split("_")
    chain = _SEGMENTS[finger]
    i = chain.index(seg)
    return "wrist" if i == 0 else f"{finger}_{chain[i - 1]}"


def _parents_for(names: tuple[str, ...]) -> tuple[int, ...]:
    pos = {n: i for i, n in enumerate(names)}
    return tuple(-1 if _parent_name(n) is None else pos[_parent_name(n)] for n in names)


#: Parent of each joint (-1 for the wrist) in each order.
PARENTS: dict[str, tuple[int, ...]] = {order: _parents_for(names) for order, names in JOINT_NAMES.items()}


def canonical_order(order: str) -> str:
    """Resolve an order name or alias to its canonical name.

    Args:
        order: one of ``JOINT_NAMES`` keys.

    Returns:
        ``"mano21"``, ``"openpose21"`` or ``"interhand21"``.

    Raises:
        KeyError: unknown order, with the list of known ones.
    """
    if order not in JOINT_NAMES:
        raise KeyError(f"unknown joint order {order!r}; known: {sorted(JOINT_NAMES)}")
    return ALIASES.get(order, order)


def conversion_index(src: str, dst: str) -> np.ndarray:
    """Index table ``idx`` with ``joints_dst = joints_src[..., idx, :]``.

    Args:
        src: source order name.
        dst: destination order name.

    Returns:
        (21,) int64 array.
    """
    src_pos = {n: i for i, n in enumerate(JOINT_NAMES[canonical_order(src)])}
    return np.array([src_pos[n] for n in JOINT_NAMES[canonical_order(dst)]], dtype=np.int64)


def convert_joints(joints: ArrayT, src: str, dst: str) -> ArrayT:
    """Reorder 21 joints from one order to another.

    Args:
        joints: (..., 21, C) numpy array or torch tensor (any dtype/device, any units/frame; C is usually 2 or
            3). Left and right hands use the same orders.
        src: order of ``joints`` (``"mano21"``, ``"openpose21"``/``"freihand21"``/``"mediapipe21"``,
            ``"interhand21"``).
        dst: order wanted.

    Returns:
        (..., 21, C), same type, dtype and device as the input (a new array/tensor; differentiable for torch).
    """
    if joints.ndim < 2 or joints.shape[-2] != 21:
        raise ValueError(f"joints must have shape (..., 21, C), got {tuple(joints.shape)}")
    idx = conversion_index(src, dst)
    if isinstance(joints, torch.Tensor):
        return joints.index_select(-2, torch.as_tensor(idx, device=joints.device))
    return np.take(joints, idx, axis=-2)


def bone_pairs(order: str = "mano21") -> list[tuple[int, int]]:
    """The 20 bones of an order as (parent, child) joint indices, in child order.

    Args:
        order: joint order name.

    Returns:
        List of 20 ``(parent_index, child_index)`` tuples.
    """
    parents = PARENTS[order]
    return [(p, c) for c, p in enumerate(parents) if p >= 0]


def bone_vectors(joints: ArrayT, order: str = "mano21") -> ArrayT:
    """Bone vectors child - parent for the 20 bones of ``order``.

    Args:
        joints: (..., 21, C) joints in ``order`` (numpy or torch).
        order: joint order name.

    Returns:
        (..., 20, C) vectors, same units/frame as ``joints``, in :func:`bone_pairs` order.
    """
    pairs = np.array(bone_pairs(order), dtype=np.int64)
    if isinstance(joints, torch.Tensor):
        p = torch.as_tensor(pairs, device=joints.device)
        return joints.index_select(-2, p[:, 1]) - joints.index_select(-2, p[:, 0])
    return np.take(joints, pairs[:, 1], axis=-2) - np.take(joints, pairs[:, 0], axis=-2)


def bone_lengths(joints: ArrayT, order: str = "mano21") -> ArrayT:
    """Lengths of the 20 bones of ``order``.

    Args:
        joints: (..., 21, C) joints in ``order``.
        order: joint order name.

    Returns:
        (..., 20) lengths, same units as ``joints``.
    """
    v = bone_vectors(joints, order)
    if isinstance(v, torch.Tensor):
        return torch.linalg.vector_norm(v, dim=-1)
    return np.linalg.norm(v, axis=-1)
