"""Appearance of the synthetic scenes: skin albedo, spherical-harmonics lighting, backgrounds, object colours.

All randomness is drawn from the ``numpy.random.Generator`` passed in, so a scene is reproducible from its seed.
Colours are sRGB-like values in [0, 1] that the renderer multiplies by the SH shading (no gamma handling).

Skin palette (:data:`SKIN_PALETTE`): nine anchor colours from very light to very dark skin, chosen by this
project to span the range of skin colours seen in hand photographs (roughly Fitzpatrick types I to VI). A hand's
base tone is the palette interpolated at a uniform position ``t in [0, 8]``; per-hand white-balance jitter, a
lighter/pinker palmar side (stronger for darker tones, as palms have less melanin), pinkish nails on the dorsal
fingertips, low-frequency blotches (3D value noise on the rest-pose surface, so the texture moves with the skin)
and per-vertex noise complete the per-vertex albedo.

Lighting (:func:`sample_sh`): 27 SH coefficients (channel-major, :func:`hand_recon_core.render.rasterizer.sh_shading`
convention) = ambient ``U(0.25, 0.6)`` + one distant light of intensity ``U(0.3, 0.8)`` (both scaled down so
that their sum is at most ``MAX_SHADING`` = 1.1) from a direction in the camera's hemisphere (80 %) or anywhere
(20 %), times a per-channel colour ``U(0.93, 1.07)``, plus Gaussian noise (sigma 0.03) on the eight band-1/2
coefficients of each channel.
"""

from __future__ import annotations

import numpy as np

from hand_recon_core.render.backgrounds import ImageFolderBackgrounds, random_background
from hand_recon_core.render.rasterizer import compute_vertex_normals, sh_from_directional_light
from hand_recon_core.render.textures import checker_colors, noise_colors, value_noise

__all__ = [
    "SKIN_PALETTE",
    "NAIL_COLOR",
    "PALM_COLOR",
    "skin_tone",
    "skin_albedo",
    "quantize_colors",
    "sample_sh",
    "sample_background",
    "object_colors",
]

#: Skin anchor colours (sRGB in [0, 1]), very light to very dark.
SKIN_PALETTE = np.array([
    [0.98, 0.82, 0.72],
    [0.94, 0.75, 0.62],
    [0.87, 0.66, 0.52],
    [0.78, 0.57, 0.42],
    [0.66, 0.46, 0.32],
    [0.55, 0.37, 0.25],
    [0.44, 0.29, 0.20],
    [0.34, 0.22, 0.15],
    [0.25, 0.16, 0.11],
], dtype=np.float64)
#: Largest shading (ambient + light intensity) of a surface facing the light (avoids washed-out light skin).
MAX_SHADING = 1.1
#: Colour the nails are blended towards.
NAIL_COLOR = np.array([0.93, 0.80, 0.78])
#: Colour the palmar skin is blended towards.
PALM_COLOR = np.array([0.92, 0.72, 0.62])
#: Parts (kinematic joints, MANO native order) of the distal phalanges: index, middle, pinky, ring, thumb.
_DISTAL_PARTS = (3, 6, 9, 12, 15)
#: Nail radius around the fingertip vertex (metres).
_NAIL_RADIUS = 0.011


def skin_tone(t: float) -> np.ndarray:
    """Palette colour at position ``t`` (linear interpolation between neighbouring anchors).

    Args:
        t: position in ``[0, len(SKIN_PALETTE) - 1]`` (0 very light, 8 very dark).

    Returns:
        (3,) float64 RGB in [0, 1].
    """
    t = float(np.clip(t, 0.0, len(SKIN_PALETTE) - 1))
    i = min(int(np.floor(t)), len(SKIN_PALETTE) - 2)
    a = t - i
    return (1.0 - a) * SKIN_PALETTE[i] + a * SKIN_PALETTE[i + 1]


def skin_albedo(rest_vertices: np.ndarray, faces: np.ndarray, part_labels: np.ndarray, tip_vertex_ids: np.ndarray,
                rng: np.random.Generator, tone: float | None = None,
                dorsal_dirs: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Per-vertex skin albedo of one hand.

    Args:
        rest_vertices: (V, 3) rest-pose vertices in the hand-model frame (metres; palm facing -y, dorsum +y).
        faces: (F, 3) int triangles (outward CCW).
        part_labels: (V,) int part (kinematic joint 0-15) of each vertex.
        tip_vertex_ids: (5,) int fingertip vertices (thumb, index, middle, ring, pinky).
        rng: random generator.
        tone: palette position (see :func:`skin_tone`); uniform in [0, 8] when None.
        dorsal_dirs: optional (16, 3) unit dorsal (nail side) direction per part in the model frame; default
            +y for every part.

    Returns:
        ``(albedo (V, 3) float32 in [0, 1], 8-bit levels (see :func:`quantize_colors`), tone)``.
    """
    v = np.asarray(rest_vertices, dtype=np.float64)
    n_vert = v.shape[0]
    if tone is None:
        tone = float(rng.uniform(0.0, len(SKIN_PALETTE) - 1))
    base = skin_tone(tone) * (1.0 + rng.normal(0.0, 0.03, size=3))
    darkness = tone / (len(SKIN_PALETTE) - 1)
    col = np.tile(base, (n_vert, 1))

    normals = compute_vertex_normals(v, faces).astype(np.float64)
    if dorsal_dirs is None:
        dorsal_dirs = np.tile([0.0, 1.0, 0.0], (16, 1))
    dorsal = np.asarray(dorsal_dirs, dtype=np.float64)[np.asarray(part_labels)]
    facing = np.sum(normals * dorsal, axis=1)  # +1 dorsal, -1 palmar

    # palmar side: lighter / pinker, more so for dark skin
    palm_w = np.clip(-facing, 0.0, 1.0) ** 1.5 * (0.12 + 0.45 * darkness) * rng.uniform(0.7, 1.2)
    col = col + palm_w[:, None] * (PALM_COLOR * (0.75 + 0.25 * (1 - darkness)) - col)

    # nails: dorsal side of the distal phalanges near the fingertip vertex
    tips = v[np.asarray(tip_vertex_ids)]
    d_tip = np.min(np.linalg.norm(v[:, None, :] - tips[None], axis=-1), axis=1)
    distal = np.isin(part_labels, _DISTAL_PARTS)
    nail_w = distal * np.clip(facing * 2.0 - 0.6, 0.0, 1.0) * np.clip(1.0 - d_tip / _NAIL_RADIUS, 0.0, 1.0)
    nail_w = np.clip(nail_w * 1.5, 0.0, 0.75)
    col = col + nail_w[:, None] * (NAIL_COLOR * (0.8 + 0.2 * (1 - darkness)) - col)

    # low-frequency blotches (solid noise on the rest surface) and fine per-vertex noise
    blotch = value_noise(v, rng, scale=rng.uniform(0.012, 0.03), octaves=3).astype(np.float64)
    amp = rng.uniform(0.05, 0.14)
    col = col * (1.0 + amp * (blotch[:, None] - 0.5) * 2.0)
    redness = value_noise(v, rng, scale=0.025, octaves=2).astype(np.float64)
    col[:, 0] *= 1.0 + rng.uniform(0.0, 0.06) * (redness - 0.5) * 2.0
    col = col * (1.0 + rng.normal(0.0, 0.015, size=(n_vert, 1))) + rng.normal(0.0, 0.006, size=(n_vert, 3))
    return quantize_colors(col), float(tone)


def quantize_colors(colors: np.ndarray) -> np.ndarray:
    """Clip colours to [0, 1] and quantise them to 8 bits (multiples of 1/255, as float32).

    Args:
        colors: (..., 3) float RGB.

    Returns:
        (..., 3) float32 ``round(clip(c) * 255) / 255`` (bitwise reproducible from the 8-bit levels).
    """
    q = np.rint(np.clip(np.asarray(colors, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    return q.astype(np.float32) / np.float32(255.0)


def sample_sh(rng: np.random.Generator) -> np.ndarray:
    """Random plausible SH lighting (see the module docstring for the ranges).

    Args:
        rng: random generator.

    Returns:
        (27,) float32 coefficients, channel-major (red 0-8, green 9-17, blue 18-26).
    """
    if rng.random() < 0.8:
        d = np.array([rng.normal(0.0, 0.7), rng.normal(-0.2, 0.7), -1.0])  # towards the camera side
    else:
        d = rng.normal(size=3)
    color = rng.uniform(0.93, 1.07, size=3)
    ambient, intensity = rng.uniform(0.25, 0.6), rng.uniform(0.3, 0.8)
    scale = min(1.0, MAX_SHADING / (ambient + intensity))
    sh = sh_from_directional_light(d, intensity=intensity * scale, ambient=ambient * scale,
                                   color=color).reshape(3, 9)
    sh[:, 1:] += rng.normal(0.0, 0.03, size=(3, 8))
    return sh.reshape(27).astype(np.float32)


def sample_background(size: tuple[int, int], rng: np.random.Generator,
                      images: ImageFolderBackgrounds | None = None, image_probability: float = 0.7) -> np.ndarray:
    """Background: a crop of a folder image (with ``image_probability`` when ``images`` is given) or a
    procedural one (gradient, value noise, checker, stripes; uniformly), see
    :func:`hand_recon_core.render.backgrounds.random_background`.

    Args:
        size: (H, W) pixels.
        rng: random generator.
        images: optional image folder source.
        image_probability: probability of an image crop when ``images`` is given.

    Returns:
        (H, W, 3) float32 RGB in [0, 1].
    """
    return random_background(size, rng, images=images, image_probability=image_probability)


def object_colors(vertices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-vertex albedo of an object / occluder: value-noise blend of two colours (50 %), a checker (25 %) or
    a plain colour with slight noise (25 %), evaluated on the object-frame vertex positions (metres).

    Args:
        vertices: (V, 3) object-frame vertices, metres.
        rng: random generator.

    Returns:
        (V, 3) float32 RGB in [0, 1].
    """
    v = np.asarray(vertices, dtype=np.float64)
    kind = rng.random()
    c1, c2 = rng.random(3), rng.random(3)
    if kind < 0.5:
        return noise_colors(v, rng, c1, c2, scale=rng.uniform(0.01, 0.05))
    if kind < 0.75:
        return checker_colors(v, rng.uniform(0.008, 0.03), c1, c2)
    col = np.tile(c1, (v.shape[0], 1)) + rng.normal(0.0, 0.02, size=v.shape)
    return np.clip(col, 0.0, 1.0).astype(np.float32)

