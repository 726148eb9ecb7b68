"""Learning-rate schedules: plateau halving with a floor, cosine with warm-up, step decay."""

from __future__ import annotations

import math

import pytest
import torch

from hand_recon_core.training.config import OptimConfig, ScheduleConfig
from hand_recon_core.training.schedules import build_optimizer, build_schedule


def _opt(lr: float = 1.0, name: str = "adam") -> torch.optim.Optimizer:
    return build_optimizer(OptimConfig(name=name, lr=lr), [torch.nn.Parameter(torch.zeros(2))])


def test_optimizers_are_built_as_configured():
    p = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(build_optimizer(OptimConfig(name="adam", betas=[0.8, 0.9]), p), torch.optim.Adam)
    adamw = build_optimizer(OptimConfig(name="adamw", weight_decay=0.05), p)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["weight_decay"] == 0.05
    sgd = build_optimizer(OptimConfig(name="sgd", momentum=0.8, nesterov=True), p)
    assert sgd.param_groups[0]["momentum"] == 0.8 and sgd.param_groups[0]["nesterov"]


def test_plateau_halves_after_patience_stale_observations_and_stops_at_the_floor():
    opt = _opt(1e-3)
    s = build_schedule(opt, ScheduleConfig(name="plateau", factor=0.5, patience=2, threshold=1e-4, min_lr=2e-4,
                                           monitor="val/loss"), total_steps=100)
    seq = [(1.0, 1e-3), (1.0, 1e-3), (0.99995, 5e-4),  # 2 observations without an improvement > 1e-4: halve
           (0.5, 5e-4), (0.5, 5e-4), (0.5, 2.5e-4),     # improvement resets the count
           (0.5, 2.5e-4), (0.5, 2e-4),                  # 1.25e-4 is below the floor: clamped to min_lr
           (0.5, 2e-4), (0.5, 2e-4)]                    # at the floor: no further change
    for value, lr in seq:
        s.observe({"val/loss": value, "val/other": 0.0})
        assert opt.param_groups[0]["lr"] == pytest.approx(lr)
    assert s.observe({"train/loss": 0.0}) is False  # not the monitored key


def test_plateau_max_mode_and_nan():
    opt = _opt(1.0)
    s = build_schedule(opt, ScheduleConfig(name="plateau", patience=1, mode="max", monitor="val/pck"), 10)
    s.observe({"val/pck": 0.5})
    s.observe({"val/pck": 0.6})
    assert opt.param_groups[0]["lr"] == 1.0
    assert s.observe({"val/pck": math.nan}) is True
    assert opt.param_groups[0]["lr"] == 0.5


def test_cosine_with_linear_warmup():
    opt = _opt(1.0)
    s = build_schedule(opt, ScheduleConfig(name="cosine", warmup_steps=10, min_lr=0.1), total_steps=110)
    expected = {0: 0.0, 5: 0.5, 10: 1.0, 60: 0.1 + 0.9 * 0.5, 35: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)),
                110: 0.1, 200: 0.1}
    for step, lr in expected.items():
        s.at_step(step, 0)
        assert opt.param_groups[0]["lr"] == pytest.approx(lr), step


def test_step_decay_by_epoch_milestones_and_every():
    opt = _opt(1.0)
    s = build_schedule(opt, ScheduleConfig(name="step", milestones=[2, 4], gamma=0.1), total_steps=100)
    for epoch, lr in [(0, 1.0), (1, 1.0), (2, 0.1), (3, 0.1), (4, 0.01), (9, 0.01)]:
        s.at_step(epoch * 10, epoch)
        assert opt.param_groups[0]["lr"] == pytest.approx(lr)
    opt = _opt(1.0)
    s = build_schedule(opt, ScheduleConfig(name="step", every=10, gamma=0.9), total_steps=100)
    s.at_step(0, 25)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.81)
    s = build_schedule(_opt(1.0), ScheduleConfig(name="step", milestones=[5], gamma=0.5, unit="step"), 100)
    s.at_step(4, 0)
    assert s.lrs() == [1.0]
    s.at_step(5, 0)
    assert s.lrs() == [0.5]


def test_none_is_constant_and_warmup_applies_to_any_schedule():
    opt = _opt(0.2)
    s = build_schedule(opt, ScheduleConfig(name="none", warmup_steps=4, warmup_start_factor=0.5), 10)
    s.at_step(0, 0)
    assert s.lrs() == [pytest.approx(0.1)]
    s.at_step(2, 0)
    assert s.lrs() == [pytest.approx(0.15)]
    s.at_step(9, 3)
    assert s.lrs() == [pytest.approx(0.2)]


def test_state_dict_round_trip():
    cfg = ScheduleConfig(name="plateau", patience=1)
    a = build_schedule(_opt(1.0), cfg, 10)
    for v in (1.0, 1.0, 1.0, 2.0):
        a.observe({"val/loss": v})
    opt_b = _opt(1.0)
    b = build_schedule(opt_b, cfg, 10)
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict() and opt_b.param_groups[0]["lr"] == a.lrs()[0] == 0.125
    with pytest.raises(ValueError, match="plateau"):
        build_schedule(_opt(), ScheduleConfig(name="cosine"), 10).load_state_dict(a.state_dict())
