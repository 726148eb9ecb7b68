"""Input normalisation shared by the metric functions (evaluation runs in numpy float64)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def as_float64(x: Any, name: str = "array") -> np.ndarray:
    """Return ``x`` (numpy array, torch tensor or nested sequence) as a numpy float64 array.

    Torch tensors are detached and moved to the CPU first; the result never shares memory with a tensor
    that requires grad.

    Raises:
        TypeError: for ``None``.
    """
    if x is None:
        raise TypeError(f"{name} must be an array or tensor, got None")
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def as_mask(mask: Any, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """Return a boolean mask of exactly ``shape`` (all True when ``mask`` is None).

    Raises:
        ValueError: when the mask shape differs from ``shape``.
    """
    if mask is None:
        return np.ones(shape, dtype=bool)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    m = np.asarray(mask).astype(bool)
    if m.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {m.shape}")
    return m
