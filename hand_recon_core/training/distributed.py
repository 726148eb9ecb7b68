"""``torch.distributed`` helpers: set-up from the ``torchrun`` environment, rank queries, metric reduction.

``torchrun --nproc_per_node=K -m hand_recon_core.cli.main train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` then joins the process group with
``nccl`` when training on CUDA and ``gloo`` on CPU. A plain ``python -m ...`` run (no ``WORLD_SIZE``) is a
single process and never touches ``torch.distributed``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_gather_objects", "all_reduce_sums", "barrier", "cleanup", "init_distributed"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs and writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """More than one process (a process group is initialised)."""
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group described by the ``torchrun`` environment (no-op without ``WORLD_SIZE`` > 1).

    Args:
        device_type: ``"cuda"`` (backend ``nccl``, the device is set to ``cuda:LOCAL_RANK``) or ``"cpu"``
            (backend ``gloo``).

    Returns:
        The rank information.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank)


def cleanup(info: DistInfo) -> None:
    """Leave the process group (after a final barrier)."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for all ranks (no-op for one process)."""
    if info.enabled:
        dist.barrier()


def all_reduce_sums(values: Mapping[str, float], info: DistInfo, device: torch.device) -> dict[str, float]:
    """Sum each named float over all ranks (every rank must pass the same keys in the same order).

    Args:
        values: name -> local sum (e.g. loss x count, and the count).
        info: rank information.
        device: where the reduction tensor lives (CUDA for nccl).

    Returns:
        name -> global sum (float64 reduction).
    """
    if not info.enabled:
        return {k: float(v) for k, v in values.items()}
    keys = list(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(keys, t.cpu().tolist()))


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Gather a picklable object from every rank (list indexed by rank; ``[obj]`` for one process)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
