"""Procedural per-vertex colours (checker, value noise) for meshes rendered by :mod:`.rasterizer`.

The rasterizer interpolates per-vertex colours, so a procedural texture is as detailed as the mesh is dense.
The functions take *coordinates* per vertex: UVs ``(V, 2)`` from :mod:`.primitives`, or the 3D vertex positions
``(V, 3)`` in metres (a "solid" texture, free of UV seams). All randomness comes from a ``numpy.random.Generator``
so results are reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["checker_colors", "noise_colors", "value_noise"]


def checker_colors(coords: np.ndarray, cell: float, color_a: Sequence[float] = (0.9, 0.9, 0.9),
                   color_b: Sequence[float] = (0.2, 0.2, 0.2)) -> np.ndarray:
    """Checkerboard colouring: ``color_a`` where ``sum_d floor(coords_d / cell)`` is even, else ``color_b``.

    Args:
        coords: (V, D) float per-vertex coordinates (UVs, or positions in metres).
        cell: checker cell size in the units of ``coords``.
        color_a: (3,) RGB in [0, 1].
        color_b: (3,) RGB in [0, 1].

    Returns:
        (V, 3) float32 RGB.
    """
    c = np.asarray(coords, dtype=np.float64)
    parity = np.floor(c / cell).astype(np.int64).sum(axis=1) & 1
    return np.where(parity[:, None] == 0, np.asarray(color_a, np.float32), np.asarray(color_b, np.float32))


def value_noise(coords: np.ndarray, rng: np.random.Generator, scale: float = 1.0, octaves: int = 3,
                persistence: float = 0.5) -> np.ndarray:
    """Fractal value noise in [0, 1] at arbitrary D-dimensional points (smoothly interpolated lattice values).

    Each octave draws its own random lattice (hashed through a random 256-entry permutation), interpolates the
    2^D corner values with the smoothstep weight, and is added with weight ``persistence^octave`` at twice the
    previous frequency; the sum is normalised to [0, 1].

    Args:
        coords: (N, D) float points (same units as ``scale``).
        rng: random generator (consumed: the lattices are drawn from it).
        scale: lattice spacing of the first octave.
        octaves: number of octaves (>= 1).
        persistence: amplitude ratio between consecutive octaves.

    Returns:
        (N,) float32 noise in [0, 1].
    """
    x = np.asarray(coords, dtype=np.float64)
    n, dim = x.shape
    total = np.zeros(n)
    norm = 0.0
    amp, freq = 1.0, 1.0 / scale
    for _ in range(octaves):
        perm = rng.permutation(256)
        values = rng.random(256)
        p = x * freq + rng.uniform(0, 256, size=dim)
        base = np.floor(p).astype(np.int64)
        frac = p - base
        w = frac * frac * (3.0 - 2.0 * frac)
        octave = np.zeros(n)
        for corner in range(1 << dim):
            h = np.zeros(n, dtype=np.int64)
            weight = np.ones(n)
            for d in range(dim):
                bit = (corner >> d) & 1
                h = perm[(h + base[:, d] + bit) & 255]
                weight = weight * (w[:, d] if bit else 1.0 - w[:, d])
            octave += weight * values[h]
        total += amp * octave
        norm += amp
        amp *= persistence
        freq *= 2.0
    return (total / norm).astype(np.float32)


def noise_colors(coords: np.ndarray, rng: np.random.Generator, color_a: Sequence[float],
                 color_b: Sequence[float], scale: float = 0.02, octaves: int = 3) -> np.ndarray:
    """Blend two colours by fractal value noise (blotchy / marbled textures).

    Args:
        coords: (V, D) float per-vertex coordinates (e.g. positions in metres).
        rng: random generator.
        color_a: (3,) RGB in [0, 1] where the noise is 0.
        color_b: (3,) RGB in [0, 1] where the noise is 1.
        scale: feature size in the units of ``coords`` (default 2 cm for positions in metres).
        octaves: noise octaves.

    Returns:
        (V, 3) float32 RGB in [0, 1].
    """
    t = value_noise(coords, rng, scale=scale, octaves=octaves)[:, None]
    a = np.asarray(color_a, np.float32)
    b = np.asarray(color_b, np.float32)
    return ((1.0 - t) * a + t * b).astype(np.float32)
