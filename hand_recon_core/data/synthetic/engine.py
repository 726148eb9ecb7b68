"""Sample generation: seeding, appearance, rendering, ground truth.

Sample ``index`` of a (family, seed) stream is a pure function of ``(seed, family, index)`` and the keyword
parameters: its generator is ``numpy.random.default_rng(SeedSequence([seed, FAMILY_CODES[family], index]))``
and scene sampling (hand layers, pose sampler) runs on one torch thread
(:func:`hand_recon_core.data.synthetic.hands.single_thread`), so the same arguments give a bitwise identical
sample in any process or DataLoader worker.

Pipeline of :func:`generate_sample`: the family places hands / objects (:mod:`.families`), :func:`dress_scene`
adds skin albedo, SH lighting, a background and the pixel-noise level (:mod:`.appearance`), :func:`render_scene`
renders hands first and objects after them with :func:`hand_recon_core.render.rasterizer.render_meshes`
(anti-aliased colour, exact label maps; ``K`` is passed unchanged: the project pixel convention), Gaussian
pixel noise is added and the image quantised to uint8, then :func:`.ground_truth.build_sample` derives every
label.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from hand_recon_core.data.synthetic.appearance import SKIN_PALETTE, sample_background, sample_sh, skin_albedo
from hand_recon_core.data.synthetic.families import DEFAULT_SIZES, FAMILIES
from hand_recon_core.data.synthetic.ground_truth import build_sample
from hand_recon_core.data.synthetic.hands import HandModels, get_hand_models, single_thread
from hand_recon_core.data.synthetic.scene import Scene
from hand_recon_core.render.backgrounds import ImageFolderBackgrounds
from hand_recon_core.render.rasterizer import RenderResult, render_meshes

__all__ = [
    "FAMILY_CODES",
    "MAX_NOISE_STD",
    "sample_rng",
    "dress_scene",
    "render_scene",
    "finish_image",
    "generate_scene",
    "generate_sample",
    "dataset_name",
]

#: Stable code of each family in the seed sequence (never reorder: it would change every sample).
FAMILY_CODES: dict[str, int] = {"single": 1, "interacting": 2, "multi": 3, "hand_object": 4, "truncation": 5}
#: Largest standard deviation of the Gaussian pixel noise (image in [0, 1]); half of the images get none.
MAX_NOISE_STD = 0.02


def dataset_name(family: str) -> str:
    """Dataset name of a family's samples, e.g. ``"synthetic-single"``."""
    return f"synthetic-{family}"


def sample_rng(seed: int, family: str, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of the ``(seed, family)`` stream.

    Args:
        seed: stream seed (>= 0).
        family: family name.
        index: sample index (>= 0).

    Returns:
        A fresh ``numpy.random.Generator``.
    """
    if family not in FAMILY_CODES:
        raise KeyError(f"unknown family {family!r}; known: {sorted(FAMILY_CODES)}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), FAMILY_CODES[family], int(index)]))


@functools.lru_cache(maxsize=4)
def _image_folder(path: str) -> ImageFolderBackgrounds:
    return ImageFolderBackgrounds(path)


def dress_scene(scene: Scene, models: HandModels, rng: np.random.Generator,
                background_dir: str | Path | None = None) -> None:
    """Add appearance to a scene in place: skin albedo per hand, SH light, background, pixel-noise level.

    Hands of one person (``scene.meta["same_person"]``, the ``interacting`` family) share a skin tone (palette
    position jittered by N(0, 0.15) per hand); otherwise every hand draws its own tone.

    Args:
        scene: the scene.
        models: the hand models (rest templates, part labels, tips for the skin texture).
        rng: random generator.
        background_dir: optional folder of background images (70 % of the backgrounds when given).
    """
    shared_tone = float(rng.uniform(0.0, len(SKIN_PALETTE) - 1)) if scene.meta.get("same_person") else None
    for hand in scene.hands:
        tone = None if shared_tone is None else float(np.clip(shared_tone + rng.normal(0.0, 0.15), 0.0,
                                                              len(SKIN_PALETTE) - 1))
        hand.albedo, hand.tone = skin_albedo(models.rest_vertices[hand.side], models.faces[hand.side],
                                             models.part_labels, models.tip_vertex_ids, rng, tone=tone,
                                             dorsal_dirs=models.dorsal_dirs[hand.side])
    scene.sh = sample_sh(rng)
    images = _image_folder(str(background_dir)) if background_dir else None
    scene.background = sample_background(scene.size, rng, images)
    scene.noise_std = float(rng.uniform(0.0, MAX_NOISE_STD)) if rng.random() < 0.5 else 0.0


def render_scene(scene: Scene, models: HandModels, antialias: bool = True) -> RenderResult:
    """Render hands (meshes ``0 .. N - 1``) then objects (``N ..``).

    Args:
        scene: a dressed scene.
        models: the hand models (faces per side).
        antialias: anti-alias the colour image.

    Returns:
        The :class:`~hand_recon_core.render.rasterizer.RenderResult`.
    """
    verts = [h.vertices for h in scene.hands] + [o.vertices for o in scene.objects]
    faces = [models.faces[h.side] for h in scene.hands] + [o.faces for o in scene.objects]
    colors = [h.albedo for h in scene.hands] + [o.albedo for o in scene.objects]
    return render_meshes(verts, faces, colors, scene.K.astype(np.float64), scene.size, sh_coeffs=scene.sh,
                         background=scene.background, antialias=antialias)


def finish_image(image: np.ndarray, noise_std: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian pixel noise and quantise.

    Args:
        image: (H, W, 3) float RGB in [0, 1].
        noise_std: noise standard deviation (0 for none).
        rng: random generator.

    Returns:
        (H, W, 3) uint8.
    """
    img = np.asarray(image, dtype=np.float32)
    if noise_std > 0:
        img = img + np.float32(noise_std) * rng.standard_normal(size=img.shape, dtype=np.float32)
    return np.rint(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def generate_scene(family: str, index: int, seed: int = 0, size: int | None = None, *, hand_model: str = "open",
                   background_dir: str | Path | None = None, **params) -> tuple[Scene, HandModels,
                                                                                 np.random.Generator]:
    """The dressed scene of one sample (before rendering).

    Args:
        family: ``single``, ``interacting``, ``multi`` or ``hand_object``.
        index: sample index.
        seed: stream seed.
        size: square image side in pixels (default per family, see ``families.DEFAULT_SIZES``).
        hand_model: hand model name or path (``"open"``, ``"mano"``, a file).
        background_dir: optional folder of background images.
        **params: family parameters (see the family functions in :mod:`.families`).

    Returns:
        ``(scene, models, rng)``; ``rng`` continues the sample's random stream.
    """
    rng = sample_rng(seed, family, index)
    models = get_hand_models(str(hand_model))
    side = int(size or DEFAULT_SIZES[family])
    with single_thread():  # also the pose sampler's own layer calls: results must not depend on thread counts
        scene = FAMILIES[family](rng, (side, side), models, **params)
    dress_scene(scene, models, rng, background_dir)
    return scene, models, rng


def generate_sample(family: str, index: int, seed: int = 0, size: int | None = None, *, hand_model: str = "open",
                    background_dir: str | Path | None = None, extras: bool = False, **params) -> dict:
    """Generate one sample (see the module docstring).

    Args:
        family: ``single``, ``interacting``, ``multi`` or ``hand_object``.
        index: sample index (>= 0).
        seed: stream seed.
        size: square image side in pixels (default per family).
        hand_model: hand model name or path.
        background_dir: optional folder of background images.
        extras: also return the extra keys of :data:`.ground_truth.EXTRA_KEYS` (centres,
            interactions, lighting, albedo, objects); without them the sample passes ``validate_sample``.
        **params: family parameters.

    Returns:
        The sample dict (:mod:`hand_recon_core.data.sample` format, ``dataset = "synthetic-<family>"``,
        ``sample_id = "<family>/<seed>/<index>"``).
    """
    scene, models, rng = generate_scene(family, index, seed, size, hand_model=hand_model,
                                        background_dir=background_dir, **params)
    render = render_scene(scene, models)
    image = finish_image(render.image, scene.noise_std, rng)
    return build_sample(scene, render, image, models, dataset=dataset_name(family),
                        sample_id=f"{family}/{seed}/{index}", extras=extras)
