"""The synthetic scene engine: the project's training / evaluation / demo data.

Families (:mod:`.families`): ``single`` (FreiHAND-like crops), ``interacting`` (two hands in contact,
InterHand2.6M-like), ``multi`` (0-10 hands over a 512 x 512 image, the single-stage paper's setting) and
``hand_object`` (a hand grasping a box / cylinder / sphere, HO3D / Dex-YCB-like). Every sample follows
:mod:`hand_recon_core.data.sample` (image, K, per-hand parameters, 3D joints and vertices, occlusion-aware 2D
keypoints, boxes, instance mask, 33-class part segmentation, depth, DIR dense correspondence) and, with
``extras=True``, carries the extra ground truth of :data:`.ground_truth.EXTRA_KEYS` (centres, interacting pairs,
lighting, albedo, objects).

Modules: :mod:`.camera` (intrinsics, rotations), :mod:`.appearance` (skin, lighting, backgrounds),
:mod:`.hands` (hand layers, posing), :mod:`.scene` (placement, occluders), :mod:`.grasp` (hand-object grasps),
:mod:`.families`, :mod:`.engine` (seeding, rendering), :mod:`.ground_truth` (labels), :mod:`.dataset`,
:mod:`.shards` / :mod:`.writer` (on-disk format), :mod:`.preview` (contact sheets).

Public API::

    build_synthetic_dataset(family, **kwargs)   # used by data.build for ``synthetic-<family>`` specs
    SyntheticDataset(family, count, size, seed, **kw)
    ShardDataset(directory)
    generate_sample(family, index, seed, size, **kw)
    generate_shards(family, count, out, ...)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import ConcatDataset, Dataset

from hand_recon_core.data.synthetic.dataset import FAMILY_ALIASES, SyntheticDataset, canonical_family
from hand_recon_core.data.synthetic.engine import generate_sample
from hand_recon_core.data.synthetic.families import DEFAULT_SIZES, FAMILIES
from hand_recon_core.data.synthetic.ground_truth import EXTRA_KEYS, split_extras
from hand_recon_core.data.synthetic.shards import ShardDataset
from hand_recon_core.data.synthetic.writer import generate_shards

__all__ = [
    "DEFAULT_SIZES",
    "EXTRA_KEYS",
    "FAMILIES",
    "FAMILY_ALIASES",
    "ShardDataset",
    "SyntheticDataset",
    "build_synthetic_dataset",
    "canonical_family",
    "generate_sample",
    "generate_shards",
    "split_extras",
]


def build_synthetic_dataset(family: str, shards: str | Path | Sequence[str | Path] | None = None,
                            **kwargs) -> Dataset:
    """The dataset of a ``synthetic-<family>`` spec.

    Args:
        family: family name or alias (``single``, ``interacting`` / ``two-hand``, ``multi``, ``hand_object``).
        shards: optional shard directory written by ``hand-recon synth``, or a list of them (concatenated in
            order, e.g. two seed streams): read it (``ShardDataset``; the family must match) instead of
            generating on the fly. Remaining kwargs then go to ``ShardDataset`` (``extras``, ``transform``).
        **kwargs: :class:`SyntheticDataset` arguments (``count`` (default 1000), ``size``, ``seed``,
            ``hand_model``, ``background_dir``, ``extras``, ``transform``, family parameters).

    Returns:
        A map-style dataset of sample dicts.
    """
    family = canonical_family(family)
    if shards is not None:
        dirs = [shards] if isinstance(shards, (str, Path)) else list(shards)
        if not dirs:
            raise ValueError("shards: empty list of shard directories")
        parts = [ShardDataset(d, **kwargs) for d in dirs]
        for d, ds in zip(dirs, parts):
            if ds.meta["family"] != family:
                raise ValueError(f"shards in {d} hold family {ds.meta['family']!r}, not {family!r}")
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)
    return SyntheticDataset(family, **kwargs)
