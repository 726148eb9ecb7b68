"""The training loop shared by all methods: :class:`Trainer`.

One optimiser step per batch::

    schedule.at_step(step, epoch)                       # lr of this step (closed form / plateau state)
    with autocast(precision):                           # fp32: off; bf16 (CPU or CUDA); fp16 (CUDA, GradScaler)
        out = model(batch); total, parts = method.loss(out, batch)
    scaler.scale(total).backward()                      # DDP all-reduces the gradients
    scaler.unscale_(opt); clip_grad_norm_(max_norm)     # when train.grad_clip_norm is set
    scaler.step(opt); scaler.update()

Around it: validation every ``train.val_every_epochs`` epochs and/or ``train.val_every_steps`` steps (loss and
loss parts, averaged over the whole validation set and all ranks; the plateau schedule observes them),
logging every ``log.every_steps`` steps (window means, all-reduced over ranks), checkpoints every
``checkpoint.every_steps`` steps and/or ``checkpoint.every_epochs`` epochs and at the end (rank 0 only; the
final weights are validated first if they have not been), a
tqdm bar and the curves PNG on rank 0.

Resume (``resume="auto"`` or a path): the checkpoint's model, optimiser, schedule, grad-scaler, step, epoch,
position in the epoch, per-rank RNG states and partial epoch sums are restored, the epoch's permutation is
rebuilt and the consumed batches skipped (:mod:`hand_recon_core.training.data`), so on CPU with a fixed
thread count the resumed run reproduces an uninterrupted one bit for bit.

Multi-process training: launch with ``torchrun --nproc_per_node=K -m hand_recon_core.cli.main train ...``;
the model is wrapped in ``DistributedDataParallel`` (gloo on CPU, nccl on CUDA), each rank reads its shard,
``data.batch_size`` is per rank.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from hand_recon_core.data.build import build_dataset
from hand_recon_core.models.registry import create_method, import_plugins
from hand_recon_core.training import checkpoint as ckpt_io
from hand_recon_core.training.config import ConfigError, ExperimentConfig, config_to_dict
from hand_recon_core.training.data import MethodDataset, make_loader, steps_per_epoch
from hand_recon_core.training.distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_sums,
    barrier,
    cleanup,
    init_distributed,
)
from hand_recon_core.training.logs import RunLogger
from hand_recon_core.training.schedules import build_optimizer, build_schedule

__all__ = ["StopTraining", "Trainer", "autocast_context", "move_to_device", "resolve_device", "seed_everything"]

logger = logging.getLogger(__name__)


class StopTraining(Exception):
    """Raised by a hook to end :meth:`Trainer.fit` early (no final checkpoint is written)."""


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy.random`` and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global generator is the state we manage)
    torch.manual_seed(seed)


def resolve_device(name: str, info_local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA when available (``cuda:LOCAL_RANK``), else CPU; ``"cuda"`` without CUDA is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("config key 'train.device': 'cuda' requested but CUDA is not available")
        return torch.device("cuda", info_local_rank)
    return torch.device("cpu")


def autocast_context(precision: str, device: torch.device):
    """The autocast region for ``precision`` (``fp32``: a null context)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("config key 'train.precision': fp16 mixed precision needs CUDA (use bf16 on CPU)")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def move_to_device(obj: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move every tensor in nested dicts/lists/tuples to ``device`` (other values unchanged)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, Mapping):
        return {k: move_to_device(v, device, non_blocking) for k, v in obj.items()}
    if isinstance(obj, list):
        return [move_to_device(v, device, non_blocking) for v in obj]
    if isinstance(obj, tuple):
        return tuple(move_to_device(v, device, non_blocking) for v in obj)
    return obj


def _scalar(value: Any) -> torch.Tensor | float:
    return value.detach().float() if isinstance(value, torch.Tensor) else float(value)


class Trainer:
    """Trains ``cfg.method`` on ``cfg.data`` (see the module docstring).

    Args:
        cfg: a validated experiment config.
        resume: None (fresh run; an output directory holding checkpoints is then an error), ``"auto"`` (the
            latest checkpoint of the output directory, or a fresh start when there is none) or a checkpoint path.
        hooks: callables ``hook(trainer)`` run after every optimiser step (tests use them to simulate a kill by
            raising; :class:`StopTraining` ends training quietly).

    Attributes:
        step: optimiser steps taken. epoch: current epoch (0-based). model: the bare (unwrapped) model.
        out_dir: the output directory. total_steps: steps of the whole run.
    """

    def __init__(self, cfg: ExperimentConfig, resume: str | Path | None = None,
                 hooks: Sequence[Callable[[Trainer], None]] = ()) -> None:
        cfg.validate()
        self.cfg = cfg
        self.resume = resume
        self.hooks = list(hooks)
        self.out_dir = cfg.resolved_output_dir()
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.last_metrics: dict[str, float] = {}
        self._epoch_sums: dict[str, float] = {}
        self._last_val_step = -1
        self._last_ckpt_step = -1

    # ------------------------------------------------------------------------------------------------------
    # set-up
    # ------------------------------------------------------------------------------------------------------

    def _setup(self) -> None:
        cfg = self.cfg
        import_plugins(cfg.imports)
        resume_from = self._resume_path()
        want_cuda = cfg.train.device == "cuda" or (cfg.train.device == "auto" and torch.cuda.is_available())
        self.dist: DistInfo = init_distributed("cuda" if want_cuda else "cpu")
        self.device = resolve_device(cfg.train.device, self.dist.local_rank)
        autocast_context(cfg.train.precision, self.device)  # validates precision vs device early
        if cfg.train.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        if cfg.schedule.name == "plateau" and cfg.schedule.monitor.startswith("val/") and cfg.data.val is None:
            raise ConfigError(f"config key 'schedule.monitor': {cfg.schedule.monitor!r} needs data.val "
                              "(or monitor 'train/loss')")

        seed_everything(cfg.seed)  # identical initial weights on every rank
        self.method = create_method(cfg.method.name, cfg.method.kwargs)
        self.model: nn.Module = self.method.build(cfg, cfg.hand_model).to(self.device)

        self.train_set = MethodDataset(build_dataset(cfg.data.train),
                                       functools.partial(self.method.encode_targets, train=True), cfg.seed)
        self.val_set = None
        if cfg.data.val is not None:
            self.val_set = MethodDataset(build_dataset(cfg.data.val), self.method.encode_targets, cfg.seed)
        self.steps_per_epoch = steps_per_epoch(len(self.train_set), cfg.data.batch_size, self.dist.world_size,
                                               cfg.data.drop_last)
        if self.steps_per_epoch == 0:
            raise ConfigError(f"config key 'data.batch_size': {cfg.data.batch_size} x {self.dist.world_size} "
                              f"rank(s) is larger than the training set ({len(self.train_set)} samples)")
        limits = [cfg.train.max_steps] if cfg.train.max_steps is not None else []
        if cfg.train.epochs is not None:
            limits.append(cfg.train.epochs * self.steps_per_epoch)
        self.total_steps = min(limits)

        self.optimizer = build_optimizer(cfg.optim, self.model.parameters())
        self.schedule = build_schedule(self.optimizer, cfg.schedule, self.total_steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.train.precision == "fp16")

        if resume_from is not None:
            self._load(resume_from)
        else:
            seed_everything(cfg.seed + self.dist.rank)  # training randomness (dropout ...) differs per rank

        self.ddp_model: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

        self.log = RunLogger(self.out_dir, enabled=self.dist.is_main, tensorboard=cfg.log.tensorboard,
                             resume_step=self.step if resume_from is not None else None)
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
            logger.info("training %s (%s) on %s x %d: %d steps (%d per epoch), output %s", cfg.experiment,
                        cfg.method.name, self.device, self.dist.world_size, self.total_steps, self.steps_per_epoch,
                        self.out_dir)

    def _resume_path(self) -> Path | None:
        folder = self.out_dir / "checkpoints"
        if self.resume is None:
            if ckpt_io.find_latest_checkpoint(folder) is not None:
                raise FileExistsError(f"{folder} already holds checkpoints: pass --resume auto to continue that run, "
                                      "or choose another --out")
            return None
        if str(self.resume) == "auto":
            found = ckpt_io.find_latest_checkpoint(folder)
            if found is None:
                logger.info("--resume auto: no checkpoint in %s, starting fresh", folder)
            return found
        return Path(self.resume)

    def _load(self, path: Path) -> None:
        ckpt = ckpt_io.load_checkpoint(path, map_location="cpu")
        ckpt_io.check_method(ckpt, self.cfg.method.name, source=str(path))
        ckpt_io.check_hand_model(ckpt, self.cfg.hand_model, source=str(path))
        ckpt_io.load_model_state(self.model, ckpt["model"], source=str(path))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.step, self.epoch = int(ckpt["step"]), int(ckpt["epoch"])
        self.batch_in_epoch = int(ckpt.get("batch_in_epoch", 0))
        self._epoch_sums = {k: float(v) for k, v in (ckpt.get("epoch_sums") or {}).items()}
        self._last_val_step = int(ckpt.get("last_val_step", -1))
        self.last_metrics = {k: float(v) for k, v in (ckpt.get("metrics") or {}).items()}
        rng = ckpt.get("rng") or []
        if int(ckpt.get("world_size", 1)) == self.dist.world_size and self.dist.rank < len(rng):
            ckpt_io.restore_rng_state(rng[self.dist.rank])
        else:
            logger.warning("checkpoint written by %s process(es), resuming with %d: RNG states re-seeded",
                           ckpt.get("world_size"), self.dist.world_size)
            seed_everything(self.cfg.seed + 7919 * self.step + self.dist.rank)
        old, new = _flatten(ckpt.get("config", {})), _flatten(config_to_dict(self.cfg))
        changed = sorted(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in set(old) | set(new)
                         if old.get(k) != new.get(k))
        if changed:
            logger.warning("resuming with a config that differs from the checkpoint's in: %s", changed)
        if self.dist.is_main:
            logger.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.step, self.epoch,
                        self.batch_in_epoch)

    # ------------------------------------------------------------------------------------------------------
    # checkpoints
    # ------------------------------------------------------------------------------------------------------

    def checkpoint_payload(self, rng_states: list[Any]) -> dict[str, Any]:
        """The dict written by :meth:`save` (see :mod:`hand_recon_core.training.checkpoint`)."""
        return {
            "format": ckpt_io.CHECKPOINT_FORMAT,
            "method": self.cfg.method.name,
            "hand_model": self.cfg.hand_model,
            "hand_model_id": ckpt_io.hand_model_identity(self.cfg.hand_model),
            "config": config_to_dict(self.cfg),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "epoch_sums": {k: float(v) for k, v in self._epoch_sums.items()},
            "last_val_step": self._last_val_step,
            "rng": rng_states,
            "world_size": self.dist.world_size,
            "code_version": ckpt_io.code_version(),
            "metrics": dict(self.last_metrics),
        }

    def save(self) -> Path | None:
        """Write a checkpoint of the current state (collective: every rank must call it). Rank 0 writes."""
        rng_states = all_gather_objects(ckpt_io.capture_rng_state(), self.dist)
        path = None
        if self.dist.is_main:
            folder = self.out_dir / "checkpoints"
            path = ckpt_io.save_checkpoint(ckpt_io.checkpoint_path(folder, self.step),
                                           self.checkpoint_payload(rng_states))
            ckpt_io.prune_checkpoints(folder, self.cfg.checkpoint.keep_last)
        self._last_ckpt_step = self.step
        barrier(self.dist)
        return path

    # ------------------------------------------------------------------------------------------------------
    # validation
    # ------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean validation loss and loss parts over the validation set (all ranks); logs and returns them."""
        if self.val_set is None:
            return {}
        cfg = self.cfg
        loader = make_loader(self.val_set, self.method.collate, cfg.data.val_batch_size or cfg.data.batch_size,
                             shuffle=False, drop_last=False, epoch=0, seed=cfg.seed, rank=self.dist.rank,
                             world_size=self.dist.world_size, num_workers=cfg.data.num_workers,
                             pin_memory=self.device.type == "cuda")
        was_training = self.model.training
        self.model.eval()
        sums: dict[str, float] = {}
        count = 0.0
        for batch in loader:
            batch = move_to_device(batch, self.device, non_blocking=True)
            with autocast_context(cfg.train.precision, self.device):
                out = self.ddp_model(batch)
                total, parts = self.method.loss(out, batch)
            n = float(_batch_size(batch))
            sums["loss"] = sums.get("loss", 0.0) + float(total) * n
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
            count += n
        self.model.train(was_training)
        keys = sorted(sums) if sums else ["loss"]
        if self.dist.enabled:  # every rank must reduce the same keys
            keys = sorted(set().union(*all_gather_objects(keys, self.dist)))
        reduced = all_reduce_sums({**{k: sums.get(k, 0.0) for k in keys}, "__count": count}, self.dist, self.device)
        n = max(reduced.pop("__count"), 1.0)
        metrics = {f"val/{k}": v / n for k, v in reduced.items()}
        self._last_val_step = self.step
        self.log.log("val", self.step, self._epoch_float(), metrics)
        self.last_metrics.update(metrics)
        if self.schedule.observe(metrics) and self.dist.is_main:
            logger.info("plateau: lr reduced to %s at step %d", self.schedule.lrs(), self.step)
        return metrics

    # ------------------------------------------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------------------------------------------

    def _epoch_float(self) -> float:
        return self.epoch + self.batch_in_epoch / self.steps_per_epoch

    def _train_step(self, batch: Any) -> tuple[torch.Tensor, dict[str, Any], float | None]:
        cfg = self.cfg
        self.schedule.at_step(self.step, self.epoch)
        batch = move_to_device(batch, self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(cfg.train.precision, self.device):
            out = self.ddp_model(batch)
            total, parts = self.method.loss(out, batch)
        self.scaler.scale(total).backward()
        grad_norm = None
        if cfg.train.grad_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.train.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return total.detach(), parts, grad_norm

    def _flush_window(self, window: dict[str, Any], window_n: int) -> dict[str, float]:
        local = {k: float(v) for k, v in window.items()}
        keys = sorted(local)
        reduced = all_reduce_sums({k: local[k] for k in keys}, self.dist, self.device)
        metrics = {k: v / (window_n * self.dist.world_size) for k, v in reduced.items()}
        for i, lr in enumerate(self.schedule.lrs()):
            metrics["lr" if i == 0 else f"lr_{i}"] = lr
        if not math.isfinite(metrics.get("loss", 0.0)):
            raise FloatingPointError(f"non-finite training loss {metrics['loss']} at step {self.step}")
        self.log.log("train", self.step, self._epoch_float(), metrics)
        self.last_metrics.update({f"train/{k}": v for k, v in metrics.items()})
        return metrics

    def _end_of_epoch(self) -> None:
        cfg = self.cfg
        sums = all_reduce_sums(dict(sorted(self._epoch_sums.items())), self.dist, self.device)
        n = max(sums.pop("__count", 0.0), 1.0)
        epoch_metrics = {f"train/{k}": v / n for k, v in sums.items()}
        self._epoch_sums = {}
        finished = self.epoch
        self.epoch += 1
        self.batch_in_epoch = 0
        if self.schedule.observe(epoch_metrics) and self.dist.is_main:
            logger.info("plateau: lr reduced to %s after epoch %d", self.schedule.lrs(), finished)
        every_val = cfg.train.val_every_epochs
        if every_val is not None and (finished + 1) % every_val == 0 and self._last_val_step != self.step:
            self.validate()
        every_ckpt = cfg.checkpoint.every_epochs
        if every_ckpt is not None and (finished + 1) % every_ckpt == 0:
            self.save()

    def fit(self) -> dict[str, float]:
        """Train to ``total_steps`` (resuming first when asked); returns the last logged metrics.

        The process group (if any) is left at the end.
        """
        self._setup()
        try:
            return self._fit()
        finally:
            self.log.close(curves=self.cfg.log.curves)
            # The DDP reducer holds the process group; drop it first so the group's (gloo) threads really stop
            # inside destroy_process_group, not later during interpreter teardown (which can abort the rank).
            self.ddp_model = self.model
            gc.collect()
            cleanup(self.dist)

    def _fit(self) -> dict[str, float]:
        cfg = self.cfg
        self.model.train()
        bar = None
        if self.dist.is_main and cfg.log.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, desc=cfg.experiment, unit="step", dynamic_ncols=True)
        window: dict[str, Any] = {}
        window_n = 0
        t0 = time.perf_counter()
        try:
            while self.step < self.total_steps:
                loader = make_loader(self.train_set, self.method.collate, cfg.data.batch_size, shuffle=True,
                                     drop_last=cfg.data.drop_last, epoch=self.epoch, seed=cfg.seed,
                                     rank=self.dist.rank, world_size=self.dist.world_size,
                                     num_workers=cfg.data.num_workers, skip_batches=self.batch_in_epoch,
                                     pin_memory=self.device.type == "cuda")
                for batch in loader:
                    total, parts, grad_norm = self._train_step(batch)
                    self.step += 1
                    self.batch_in_epoch += 1
                    values = {"loss": total, **{k: _scalar(v) for k, v in parts.items()}}
                    if grad_norm is not None:
                        values["grad_norm"] = grad_norm.detach()
                    for k, v in values.items():
                        window[k] = window.get(k, 0.0) + v
                    window_n += 1
                    n = float(_batch_size(batch))
                    self._epoch_sums["loss"] = self._epoch_sums.get("loss", 0.0) + total.double() * n
                    self._epoch_sums["__count"] = self._epoch_sums.get("__count", 0.0) + n
                    if self.step % cfg.log.every_steps == 0 or self.step == self.total_steps:
                        metrics = self._flush_window(window, window_n)
                        window, window_n = {}, 0
                        if bar is not None:
                            bar.set_postfix(loss=f"{metrics['loss']:.4g}", lr=f"{metrics['lr']:.3g}")
                    if bar is not None:
                        bar.update(1)
                    if cfg.train.val_every_steps is not None and self.step % cfg.train.val_every_steps == 0:
                        self.validate()
                    if cfg.checkpoint.every_steps is not None and self.step % cfg.checkpoint.every_steps == 0:
                        self.save()
                    for hook in self.hooks:
                        hook(self)
                    if self.step >= self.total_steps:
                        break
                if self.batch_in_epoch >= self.steps_per_epoch:
                    self._end_of_epoch()
        except StopTraining:
            return dict(self.last_metrics)
        finally:
            if bar is not None:
                bar.close()
        if self.val_set is not None and self._last_val_step != self.step:
            self.validate()  # the final weights always get validation numbers
        if self._last_ckpt_step != self.step:
            self.save()
        if self.dist.is_main:
            logger.info("finished %d steps in %.1f s; output %s", self.step, time.perf_counter() - t0, self.out_dir)
        return dict(self.last_metrics)


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested dict (``{"optim": {"lr": 1}}`` -> ``{"optim.lr": 1}``)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _batch_size(batch: Any) -> int:
    """Images in a batch: ``len(batch["image"])`` when present, else the first tensor's leading size."""
    if isinstance(batch, Mapping):
        if "image" in batch and hasattr(batch["image"], "__len__"):
            return len(batch["image"])
        for v in batch.values():
            if isinstance(v, torch.Tensor) and v.ndim > 0:
                return int(v.shape[0])
            if isinstance(v, list):
                return len(v)
    return 1
