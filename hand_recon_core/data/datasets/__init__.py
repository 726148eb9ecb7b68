"""Loaders for the real datasets' on-disk formats, all returning :mod:`hand_recon_core.data.sample` samples.

``build_dataset(name, root, split, **kwargs)`` builds one by name:

=============  ==========================================  =========================================
name           class                                       splits
=============  ==========================================  =========================================
``interhand``  :class:`.interhand.InterHand26MDataset`     ``train``, ``val``, ``test``
``freihand``   :class:`.freihand.FreiHANDDataset`          ``training``, ``evaluation``
``ho3d``       :class:`.ho3d.HO3DDataset`                  ``train``, ``evaluation``
``dexycb``     :class:`.dexycb.DexYCBDataset`              ``train``, ``val``, ``test``, ``all``
``rhd``        :class:`.rhd.RHDDataset`                    ``training``, ``evaluation``
=============  ==========================================  =========================================

Loaders whose datasets carry MANO fits take ``hand_models`` (MANO
:class:`~hand_recon_core.hand_model.model_data.HandModelData`, e.g. from
:func:`~hand_recon_core.hand_model.mano_pickle.load_mano_pickle`); without them the samples carry
``has_params = False``.
"""

from __future__ import annotations

import os
from typing import Any

from torch.utils.data import Dataset

from hand_recon_core.data.datasets.dexycb import DexYCBDataset
from hand_recon_core.data.datasets.freihand import FreiHANDDataset
from hand_recon_core.data.datasets.ho3d import HO3DDataset
from hand_recon_core.data.datasets.interhand import InterHand26MDataset
from hand_recon_core.data.datasets.rhd import RHDDataset

__all__ = [
    "DATASETS",
    "build_dataset",
    "DexYCBDataset",
    "FreiHANDDataset",
    "HO3DDataset",
    "InterHand26MDataset",
    "RHDDataset",
]

#: Registry: dataset name -> loader class.
DATASETS: dict[str, type[Dataset]] = {
    "interhand": InterHand26MDataset,
    "freihand": FreiHANDDataset,
    "ho3d": HO3DDataset,
    "dexycb": DexYCBDataset,
    "rhd": RHDDataset,
}


def build_dataset(name: str, root: str | os.PathLike[str], split: str, **kwargs: Any) -> Dataset:
    """Build the loader registered as ``name``.

    Args:
        name: one of ``DATASETS`` (``interhand``, ``freihand``, ``ho3d``, ``dexycb``, ``rhd``).
        root: the dataset's root folder.
        split: a split of that dataset (see the table in this package's docstring).
        **kwargs: loader-specific options (e.g. ``hand_models``, ``load_depth``, ``setup``).

    Returns:
        A ``torch.utils.data.Dataset`` whose items pass ``validate_sample``.

    Raises:
        KeyError: unknown name, listing the known ones.
    """
    try:
        cls = DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None
    return cls(root, split, **kwargs)
