"""Optimisers and learning-rate schedules of the method papers.

* ``plateau`` (HandDGCL: Adam 1e-4, "decays by half when the training loss decreases less than 1e-4
  continuously in 4 epochs", minimum 1e-6): ``factor=0.5, threshold=1e-4, patience=4, min_lr=1e-6``, observed
  on ``monitor`` (``"val/loss"``, ``"train/loss"`` = mean training loss of the epoch, or any ``"val/<metric>"``).
* ``cosine`` (DIR: AdamW 3e-4 with cosine decay): optional linear warm-up, then a half cosine from the base lr
  down to ``min_lr`` at the last step.
* ``step`` (single-stage paper: lr / 10 at epochs 30, 90, 120; hand-object paper: x 0.9 or 0.7 every 10
  epochs): ``lr = base * gamma ** k`` with ``k`` the number of milestones reached (or ``(epoch // every)``).
* ``none``: constant lr (ACR: Adam 5e-5).

``schedule.warmup_steps > 0`` adds a linear warm-up from ``warmup_start_factor * lr`` over the first optimiser
steps to every schedule.

The schedules here are written for exact resume: ``cosine``, ``step`` and the warm-up are closed-form functions
of the global step / epoch (nothing to drift), and ``plateau`` keeps its whole state in three plain numbers
(best value, count of non-improving observations, lr multiplier), stored in the checkpoint. The engine calls
:meth:`LRSchedule.at_step` before every optimiser step and :meth:`LRSchedule.observe` with new metrics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from hand_recon_core.training.config import ConfigError, OptimConfig, ScheduleConfig

__all__ = ["LRSchedule", "build_optimizer", "build_schedule"]


def build_optimizer(cfg: OptimConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimiser of ``cfg`` over ``params``.

    ``adam`` applies ``weight_decay`` as an L2 term on the gradient (``torch.optim.Adam``), ``adamw`` decoupled
    (``torch.optim.AdamW``), ``sgd`` with ``momentum`` / ``nesterov``.
    """
    params = [p for p in params if p.requires_grad]
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                 weight_decay=cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    raise ConfigError(f"config key 'optim.name': unknown optimiser {cfg.name!r}")


class LRSchedule:
    """Sets the learning rate of every parameter group of an optimiser.

    Args:
        optimizer: the optimiser; its current ``lr`` values are taken as the base learning rates.
        cfg: the schedule configuration.
        total_steps: number of optimiser steps of the whole run (cosine needs it).

    Attributes:
        base_lrs: list of base learning rates, one per parameter group.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, total_steps: int) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        self.total_steps = int(total_steps)
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        # plateau state
        self.best: float | None = None
        self.num_bad = 0
        self.scale = 1.0
        self.num_reductions = 0
        self._step = 0
        self._epoch = 0
        self._apply()

    # -- closed-form factors ------------------------------------------------------------------------------

    def _warmup_factor(self, step: int) -> float:
        w = self.cfg.warmup_steps
        if w <= 0 or step >= w:
            return 1.0
        s = self.cfg.warmup_start_factor
        return s + (1.0 - s) * step / w

    def _lr(self, base: float, step: int, epoch: int) -> float:
        c = self.cfg
        if c.name == "none":
            lr = base
        elif c.name == "plateau":
            lr = max(base * self.scale, c.min_lr)
        elif c.name == "cosine":
            span = max(1, self.total_steps - c.warmup_steps)
            progress = min(1.0, max(0.0, (step - c.warmup_steps) / span))
            lr = c.min_lr + (base - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        elif c.name == "step":
            t = epoch if c.unit == "epoch" else step
            k = t // c.every if c.every is not None else sum(1 for m in c.milestones if t >= m)
            lr = max(base * c.gamma**k, c.min_lr)
        else:  # validated by the config
            raise ConfigError(f"config key 'schedule.name': unknown schedule {c.name!r}")
        return lr * self._warmup_factor(step)

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self._lr(base, self._step, self._epoch)

    # -- engine hooks --------------------------------------------------------------------------------------

    def at_step(self, step: int, epoch: int) -> None:
        """Set the learning rates for the optimiser step ``step`` (0-based, global) taken in ``epoch`` (0-based)."""
        self._step, self._epoch = int(step), int(epoch)
        self._apply()

    def observe(self, metrics: Mapping[str, float]) -> bool:
        """Feed new metrics (plateau only acts on ``cfg.monitor``; other schedules ignore this).

        A value improves when it is lower (``mode="min"``) than the best so far by more than ``threshold``
        (absolute), or higher for ``mode="max"``; NaN never improves. After ``patience`` consecutive
        non-improving observations the multiplier is multiplied by ``factor`` and the count restarts (with
        ``patience=4``: the 4th stale validation in a row halves the lr; ``torch.optim.lr_scheduler.
        ReduceLROnPlateau`` would wait for a 5th). The lr never goes below ``min_lr``.

        Returns:
            True when the learning rate was reduced.
        """
        c = self.cfg
        if c.name != "plateau" or c.monitor not in metrics:
            return False
        value = float(metrics[c.monitor])
        if self.best is None and not math.isnan(value):
            improved = True
        elif math.isnan(value):
            improved = False
        elif c.mode == "min":
            improved = value < self.best - c.threshold
        else:
            improved = value > self.best + c.threshold
        if improved:
            self.best, self.num_bad = value, 0
            return False
        self.num_bad += 1
        if self.num_bad < max(c.patience, 1):
            return False
        self.num_bad = 0
        before = self.lrs()
        if all(b * self.scale <= c.min_lr for b in self.base_lrs):
            return False  # already at the floor
        self.scale *= c.factor
        self.num_reductions += 1
        self._apply()
        return self.lrs() != before

    def lrs(self) -> list[float]:
        """Current learning rate of each parameter group."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    # -- checkpointing -------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state (safe for ``torch.load(weights_only=True)``)."""
        return {"name": self.cfg.name, "base_lrs": list(self.base_lrs), "total_steps": self.total_steps,
                "best": self.best, "num_bad": self.num_bad, "scale": self.scale,
                "num_reductions": self.num_reductions, "step": self._step, "epoch": self._epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (the schedule name must match) and re-apply the learning rates.

        ``total_steps`` stays the configured one (a run extended on resume decays over its new length).
        """
        if state["name"] != self.cfg.name:
            raise ValueError(f"checkpoint schedule {state['name']!r} differs from the configured {self.cfg.name!r}")
        self.base_lrs = [float(x) for x in state["base_lrs"]]
        self.best = None if state["best"] is None else float(state["best"])
        self.num_bad = int(state["num_bad"])
        self.scale = float(state["scale"])
        self.num_reductions = int(state["num_reductions"])
        self._step, self._epoch = int(state["step"]), int(state["epoch"])
        self._apply()


def build_schedule(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, total_steps: int) -> LRSchedule:
    """An :class:`LRSchedule` for ``optimizer`` (see the module docstring)."""
    return LRSchedule(optimizer, cfg, total_steps)
