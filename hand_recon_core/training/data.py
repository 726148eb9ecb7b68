"""Data loading for the engine: per-sample seeding, the method's target encoding, resumable sharded order.

Determinism contract (what makes ``--resume`` continue the exact same data stream):

* **Order.** Each epoch's order is ``torch.utils.data.DistributedSampler(shuffle=True, seed=cfg.seed)`` with
  ``set_epoch(epoch)``: a permutation that depends only on (seed, epoch), split round-robin over the ranks
  (one process: the whole permutation). A resumed partial epoch rebuilds the same permutation and skips the
  batches already consumed (:class:`SkipBatchSampler`).
* **Per-sample randomness** (augmentation, synthetic scenes, target encoding): :class:`MethodDataset` seeds
  ``random``, ``numpy.random`` and the torch CPU generator from ``(seed, epoch, index)`` before loading sample
  ``index``, so a sample's content does not depend on which worker loads it, on ``num_workers`` or on where
  the run was resumed. In the main process (``num_workers=0``) the global generators are restored afterwards,
  so data loading never disturbs the training RNG (dropout etc.).
* **Loader RNG.** Each epoch's ``DataLoader`` gets its own generator seeded from ``(seed, epoch, rank)``, so
  creating an iterator does not draw from the global torch generator either.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler, get_worker_info

__all__ = ["MethodDataset", "SkipBatchSampler", "make_loader", "sample_seed"]


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for sample ``index`` of ``epoch`` (``numpy.random.SeedSequence`` mixing)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index)]).generate_state(1)[0])


class MethodDataset(Dataset):
    """A dataset whose items are seeded per (seed, epoch, index) and encoded by the method.

    Args:
        dataset: a map-style dataset of :mod:`hand_recon_core.data.sample` samples.
        encode: the method's ``encode_targets(sample) -> sample`` (None: identity).
        seed: the run's seed.
        keep_raw: also return the un-encoded sample (evaluation keeps the ground truth that way): items become
            ``(encoded, raw)`` pairs.

    Attributes:
        epoch: the epoch whose seeds are used; set it before creating the epoch's iterator.
    """

    def __init__(self, dataset: Dataset, encode: Callable[[dict], dict] | None, seed: int,
                 keep_raw: bool = False) -> None:
        self.dataset = dataset
        self.encode = encode
        self.seed = int(seed)
        self.keep_raw = keep_raw
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _load(self, index: int) -> Any:
        s = sample_seed(self.seed, self.epoch, index)
        random.seed(s)
        np.random.seed(s)  # noqa: NPY002 (the global generator is the state we manage)
        torch.default_generator.manual_seed(s)
        sample = self.dataset[index]
        if self.keep_raw:
            raw = sample
            sample = self.encode(dict(sample)) if self.encode is not None else dict(sample)
            return sample, raw
        return self.encode(sample) if self.encode is not None else sample

    def __getitem__(self, index: int) -> Any:
        if get_worker_info() is not None:  # a worker process: its global RNG is ours to use
            return self._load(index)
        py, npy, th = random.getstate(), np.random.get_state(), torch.get_rng_state()  # noqa: NPY002
        try:
            return self._load(index)
        finally:
            random.setstate(py)
            np.random.set_state(npy)  # noqa: NPY002 (the global generator is the state we manage)
            torch.set_rng_state(th)


class SkipBatchSampler(Sampler[list[int]]):
    """Yields the batches of ``batch_sampler`` after skipping the first ``skip`` (a resumed partial epoch)."""

    def __init__(self, batch_sampler: BatchSampler, skip: int = 0) -> None:
        self.batch_sampler = batch_sampler
        self.skip = int(skip)

    def __iter__(self) -> Iterator[list[int]]:
        for i, batch in enumerate(self.batch_sampler):
            if i >= self.skip:
                yield batch

    def __len__(self) -> int:
        return max(0, len(self.batch_sampler) - self.skip)


def _collate_pairs(collate: Callable[[Sequence[Mapping[str, Any]]], Any]):
    def fn(items: Sequence[tuple[dict, dict]]) -> tuple[Any, list[dict]]:
        return collate([e for e, _ in items]), [r for _, r in items]

    return fn


def make_loader(dataset: MethodDataset, collate: Callable[[Sequence[Mapping[str, Any]]], Any], batch_size: int,
                *, shuffle: bool, drop_last: bool, epoch: int, seed: int, rank: int, world_size: int,
                num_workers: int, skip_batches: int = 0, pin_memory: bool = False) -> DataLoader:
    """The ``DataLoader`` of one epoch (see the module docstring for the determinism contract).

    Args:
        dataset: the wrapped dataset (its ``epoch`` is set here).
        collate: the method's ``collate(samples) -> batch`` (with ``dataset.keep_raw`` the loader yields
            ``(batch, raw_samples)``).
        batch_size: images per batch and rank.
        shuffle: random order (training) or dataset order (evaluation).
        drop_last: drop the last incomplete batch of the rank.
        epoch, seed, rank, world_size: order and seeding.
        num_workers: loader worker processes.
        skip_batches: batches of this epoch already consumed.
        pin_memory: pin host memory (CUDA).

    Returns:
        The loader; ``len(loader)`` counts the remaining batches.
    """
    dataset.epoch = int(epoch)
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                                 drop_last=False)
    sampler.set_epoch(int(epoch))
    batches = SkipBatchSampler(BatchSampler(sampler, batch_size, drop_last), skip_batches)
    generator = torch.Generator().manual_seed(sample_seed(seed, epoch, 1_000_003 + rank))
    return DataLoader(dataset, batch_sampler=batches, num_workers=num_workers,
                      collate_fn=_collate_pairs(collate) if dataset.keep_raw else collate,
                      generator=generator, pin_memory=pin_memory)


def steps_per_epoch(num_samples: int, batch_size: int, world_size: int, drop_last: bool) -> int:
    """Batches per rank and epoch for ``num_samples`` samples (DistributedSampler pads to equal shards)."""
    per_rank = -(-num_samples // world_size)
    return per_rank // batch_size if drop_last else -(-per_rank // batch_size)
