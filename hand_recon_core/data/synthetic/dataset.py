"""``SyntheticDataset``: synthetic samples generated on the fly (map-style torch ``Dataset``).

Sample ``i`` is a pure function of ``(family, seed, i)`` and the constructor's keyword arguments (see
:mod:`hand_recon_core.data.synthetic.engine`): any worker, any ``num_workers``, any order gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset

from hand_recon_core.data.synthetic.engine import generate_sample
from hand_recon_core.data.synthetic.families import DEFAULT_SIZES, FAMILIES

__all__ = ["FAMILY_ALIASES", "canonical_family", "SyntheticDataset"]

#: Alternative family names accepted everywhere (e.g. ``synthetic-two-hand`` dataset specs).
FAMILY_ALIASES: dict[str, str] = {
    "two-hand": "interacting",
    "two_hand": "interacting",
    "interacting-hands": "interacting",
    "multi-hand": "multi",
    "multi_hand": "multi",
    "hand-object": "hand_object",
    "ho": "hand_object",
}


def canonical_family(name: str) -> str:
    """Resolve a family name or alias.

    Args:
        name: ``single``, ``interacting``, ``multi``, ``hand_object`` or an alias of :data:`FAMILY_ALIASES`.

    Returns:
        The canonical family name.

    Raises:
        KeyError: unknown name (listing the known ones).
    """
    family = FAMILY_ALIASES.get(name, name)
    if family not in FAMILIES:
        raise KeyError(f"unknown synthetic family {name!r}; known: {sorted(FAMILIES)} "
                       f"(aliases: {sorted(FAMILY_ALIASES)})")
    return family


class SyntheticDataset(Dataset):
    """Synthetic hand scenes rendered on demand.

    Args:
        family: scene family (or alias), see :mod:`hand_recon_core.data.synthetic.families`.
        count: number of samples.
        size: square image side in pixels (default per family: single 224, interacting 256, multi 512,
            hand_object 256).
        seed: stream seed.
        hand_model: hand model name or path (``"open"`` default, ``"mano"``, a file).
        background_dir: optional folder of background images.
        extras: also return the extra keys (``ground_truth.EXTRA_KEYS``: centres,
            interacting pairs, lighting, albedo, objects). Without them (default) every sample passes
            :func:`hand_recon_core.data.sample.validate_sample`.
        transform: optional callable applied to each sample.
        **params: family parameters (keyword arguments of the family function).
    """

    def __init__(self, family: str, count: int = 1000, size: int | None = None, seed: int = 0, *,
                 hand_model: str = "open", background_dir: str | Path | None = None, extras: bool = False,
                 transform: Callable[[dict], dict] | None = None, **params) -> None:
        self.family = canonical_family(family)
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        self.count = int(count)
        self.size = int(size or DEFAULT_SIZES[self.family])
        self.seed = int(seed)
        self.hand_model = str(hand_model)
        self.background_dir = None if background_dir is None else str(background_dir)
        self.extras = bool(extras)
        self.transform = transform
        self.params = dict(params)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        if not -self.count <= index < self.count:
            raise IndexError(f"index {index} out of range for {self.count} samples")
        index = index % self.count if self.count else index
        sample = generate_sample(self.family, index, self.seed, self.size, hand_model=self.hand_model,
                                 background_dir=self.background_dir, extras=self.extras, **self.params)
        return self.transform(sample) if self.transform is not None else sample

    def __repr__(self) -> str:
        return (f"SyntheticDataset(family={self.family!r}, count={self.count}, size={self.size}, seed={self.seed}, "
                f"hand_model={self.hand_model!r}, extras={self.extras})")
