"""Procedural and image backgrounds for :func:`.rasterizer.render_meshes`.

Every function returns an ``(H, W, 3)`` float32 RGB image in [0, 1] and draws all its randomness from the given
``numpy.random.Generator``: the same generator state gives the same image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFolderBackgrounds",
    "checker_background",
    "gradient_background",
    "noise_background",
    "random_background",
    "stripes_background",
]

#: file suffixes (lower case) read by :class:`ImageFolderBackgrounds`
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _random_colors(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random((n, 3)).astype(np.float32)


def gradient_background(size: tuple[int, int], rng: np.random.Generator,
                        colors: Sequence[Sequence[float]] | None = None) -> np.ndarray:
    """Linear gradient between two colours along a random direction.

    Args:
        size: (H, W) in pixels.
        rng: random generator.
        colors: optional (2, 3) RGB end colours in [0, 1]; random when None.

    Returns:
        (H, W, 3) float32 RGB in [0, 1].
    """
    h, w = size
    c = _random_colors(rng, 2) if colors is None else np.asarray(colors, np.float32).reshape(2, 3)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.cos(angle) * (xs + 0.5) / w + np.sin(angle) * (ys + 0.5) / h
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return ((1.0 - t)[..., None] * c[0] + t[..., None] * c[1]).astype(np.float32)


def noise_background(size: tuple[int, int], rng: np.random.Generator, scale: float | None = None,
                     octaves: int = 4, colors: Sequence[Sequence[float]] | None = None) -> np.ndarray:
    """Fractal value noise (random lattices, bicubic upsampling per octave) mapped to a 3-colour ramp.

    Args:
        size: (H, W) in pixels.
        rng: random generator.
        scale: lattice spacing of the first octave in pixels; random in [H/8, H/2] when None.
        octaves: number of octaves, each at twice the frequency and half the amplitude.
        colors: optional (3, 3) RGB ramp in [0, 1]; random when None.

    Returns:
        (H, W, 3) float32 RGB in [0, 1].
    """
    h, w = size
    if scale is None:
        scale = rng.uniform(h / 8, h / 2)
    field = np.zeros((h, w), dtype=np.float32)
    amp, norm, s = 1.0, 0.0, float(scale)
    for _ in range(octaves):
        gh, gw = max(2, int(np.ceil(h / s)) + 1), max(2, int(np.ceil(w / s)) + 1)
        lattice = rng.random((gh, gw)).astype(np.float32)
        field += amp * cv2.resize(lattice, (w, h), interpolation=cv2.INTER_CUBIC)
        norm += amp
        amp *= 0.5
        s = max(s / 2.0, 1.0)
    field = np.clip(field / norm, 0.0, 1.0)
    c = _random_colors(rng, 3) if colors is None else np.asarray(colors, np.float32).reshape(3, 3)
    t = field[..., None] * 2.0
    low = (1.0 - t) * c[0] + t * c[1]
    high = (2.0 - t) * c[1] + (t - 1.0) * c[2]
    return np.clip(np.where(t < 1.0, low, high), 0.0, 1.0).astype(np.float32)


def checker_background(size: tuple[int, int], rng: np.random.Generator,
                       cell: float | None = None) -> np.ndarray:
    """A randomly rotated checkerboard of two random colours.

    Args:
        size: (H, W) in pixels.
        rng: random generator.
        cell: cell size in pixels; random in [H/16, H/4] when None.

    Returns:
        (H, W, 3) float32 RGB in [0, 1].
    """
    h, w = size
    cell = rng.uniform(h / 16, h / 4) if cell is None else cell
    angle = rng.uniform(0.0, np.pi / 2)
    c = _random_colors(rng, 2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    a = (np.cos(angle) * xs + np.sin(angle) * ys) / cell
    b = (-np.sin(angle) * xs + np.cos(angle) * ys) / cell
    parity = (np.floor(a).astype(np.int64) + np.floor(b).astype(np.int64)) & 1
    return np.where(parity[..., None] == 0, c[0], c[1]).astype(np.float32)


def stripes_background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Smooth sinusoidal stripes of two random colours at a random angle and period (H/20 .. H/3).

    Args:
        size: (H, W) in pixels.
        rng: random generator.

    Returns:
        (H, W, 3) float32 RGB in [0, 1].
    """
    h, w = size
    period = rng.uniform(h / 20, h / 3)
    angle = rng.uniform(0.0, np.pi)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    c = _random_colors(rng, 2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = 0.5 + 0.5 * np.sin(2.0 * np.pi * (np.cos(angle) * xs + np.sin(angle) * ys) / period + phase)
    return ((1.0 - t)[..., None] * c[0] + t[..., None] * c[1]).astype(np.float32)


class ImageFolderBackgrounds:
    """Random crops of the images found (recursively, sorted) in a folder.

    Args:
        folder: directory searched recursively for files with a suffix in :data:`IMAGE_EXTENSIONS`.
        min_crop: smallest crop side as a fraction of the shorter image side.

    Raises:
        FileNotFoundError: when the folder holds no image.
    """

    def __init__(self, folder: str | Path, min_crop: float = 0.4) -> None:
        self.folder = Path(folder)
        self.paths = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.paths:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {self.folder}")
        self.min_crop = min_crop

    def __len__(self) -> int:
        return len(self.paths)

    def sample(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """A random image, random crop with the target aspect ratio, random horizontal flip, resized.

        Args:
            size: (H, W) output size in pixels.
            rng: random generator.

        Returns:
            (H, W, 3) float32 RGB in [0, 1].
        """
        h, w = size
        path = self.paths[int(rng.integers(len(self.paths)))]
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot read image {path}")
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        ih, iw = img.shape[:2]
        aspect = w / h
        max_ch = min(ih, iw / aspect)
        ch = rng.uniform(self.min_crop, 1.0) * max_ch
        cw = ch * aspect
        y0 = rng.uniform(0.0, ih - ch)
        x0 = rng.uniform(0.0, iw - cw)
        crop = img[int(y0):max(int(y0 + ch), int(y0) + 1), int(x0):max(int(x0 + cw), int(x0) + 1)]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        interp = cv2.INTER_AREA if crop.shape[0] > h else cv2.INTER_LINEAR
        out = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=interp)
        return out.astype(np.float32) / 255.0


_KINDS = {
    "gradient": gradient_background,
    "noise": noise_background,
    "checker": checker_background,
    "stripes": stripes_background,
}


def random_background(size: tuple[int, int], rng: np.random.Generator,
                      images: ImageFolderBackgrounds | None = None,
                      kinds: Sequence[str] = ("gradient", "noise", "checker", "stripes"),
                      image_probability: float = 0.5) -> np.ndarray:
    """A background of a random kind: an image crop (with ``image_probability`` when ``images`` is given)
    or one of the procedural ``kinds`` (``gradient``, ``noise``, ``checker``, ``stripes``) chosen uniformly.

    Args:
        size: (H, W) in pixels.
        rng: random generator.
        images: optional image source.
        kinds: procedural kinds to choose from.
        image_probability: probability of an image crop when ``images`` is given.

    Returns:
        (H, W, 3) float32 RGB in [0, 1].
    """
    if images is not None and rng.random() < image_probability:
        return images.sample(size, rng)
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind not in _KINDS:
        raise ValueError(f"unknown background kind {kind!r}; choose from {sorted(_KINDS)}")
    return _KINDS[kind](size, rng)
