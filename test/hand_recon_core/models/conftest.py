"""Fixtures shared by the method tests."""

from __future__ import annotations

import math

import pytest
import torch


def _optimise(method, net, batch, steps: int, optimizer: torch.optim.Optimizer, parts: list | None = None
              ) -> list[float]:
    """``steps`` optimisation steps of ``method.loss(net(batch), batch)``; returns the finite losses (and appends
    each step's loss terms to ``parts`` when given)."""
    net.train()
    losses = []
    for _ in range(steps):
        total, terms = method.loss(net(batch), batch)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(float(total.detach()))
        if parts is not None:
            parts.append(terms)
    assert all(math.isfinite(v) for v in losses), losses
    return losses


@pytest.fixture
def optimise():
    """The :func:`_optimise` loop: ``optimise(method, net, batch, steps, optimizer) -> losses``."""
    return _optimise
