"""Tests for hand_recon_core.losses.priors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_recon_core.hand_model import load_hand_model
from hand_recon_core.hand_model.mirror import mirror_axis_angle
from hand_recon_core.hand_model.pose_sampler import PoseSampler, anatomical_to_axis_angle, axis_angle_to_anatomical
from hand_recon_core.losses.priors import (
    anatomical_angles,
    joint_angle_limit_loss,
    joint_angle_violation,
    shape_prior_loss,
)


@pytest.fixture(scope="module")
def sampler():
    return PoseSampler(load_hand_model("open", side="right", flat_hand_mean=True))


def _frames_limits(sampler):
    return torch.as_tensor(sampler.frames, dtype=torch.float32), torch.as_tensor(sampler.limits, dtype=torch.float32)


def test_layer_carries_limits():
    layer = load_hand_model("open", side="right", flat_hand_mean=True)
    assert layer.joint_limits is not None and tuple(layer.joint_limits.shape) == (16, 3, 2)


def test_anatomical_angles_match_the_pose_sampler(sampler):
    rng = np.random.default_rng(0)
    aa = sampler.sample(rng, 4)
    frames, _ = _frames_limits(sampler)
    got = anatomical_angles(torch.as_tensor(aa, dtype=torch.float32), frames)
    ref = axis_angle_to_anatomical(aa, sampler.frames)
    assert np.allclose(got.numpy(), ref, atol=1e-4)


def test_limit_loss_zero_inside_limits(sampler):
    frames, limits = _frames_limits(sampler)
    rng = np.random.default_rng(1)
    # presets within the open model's limits ("fist", "point", "grasp", "peace", "thumbs_up" exceed them by <= 6 deg)
    presets = np.stack([sampler.preset(n) for n in ("flat", "relaxed", "open", "pinch", "ok")])
    poses = np.concatenate([sampler.sample(rng, 8), presets])
    loss = joint_angle_limit_loss(torch.as_tensor(poses, dtype=torch.float32), frames, limits)
    assert float(loss) == pytest.approx(0.0, abs=1e-5)


def test_limit_loss_positive_outside_and_hand_computed(sampler):
    frames, limits = _frames_limits(sampler)
    angles = np.zeros((1, 15, 3))
    # index MCP (joint 1): flexion 0.3 rad beyond its maximum, abduction 0.2 below its minimum
    angles[0, 0, 0] = sampler.limits[1, 0, 1] + 0.3
    angles[0, 0, 1] = sampler.limits[1, 1, 0] - 0.2
    aa = anatomical_to_axis_angle(angles, sampler.frames)
    pose = torch.as_tensor(aa, dtype=torch.float32)
    loss = joint_angle_limit_loss(pose, frames, limits)
    assert float(loss) == pytest.approx(0.5, abs=1e-4)
    v = joint_angle_violation(anatomical_angles(pose, frames), limits)
    assert v[0, 0, 0] == pytest.approx(0.3, abs=1e-4) and v[0, 0, 1] == pytest.approx(0.2, abs=1e-4)
    # the gradient pulls the angle back into the interval
    pose.requires_grad_(True)
    joint_angle_limit_loss(pose, frames, limits).backward()
    assert pose.grad.abs().sum() > 0


def test_left_hand_poses_are_mirrored_first(sampler):
    frames, limits = _frames_limits(sampler)
    angles = np.zeros((1, 15, 3))
    angles[0, 4, 0] = sampler.limits[5, 0, 1] + 0.25  # middle PIP over-flexed
    right = anatomical_to_axis_angle(angles, sampler.frames)
    left = mirror_axis_angle(right)
    both = torch.as_tensor(np.concatenate([right, left]), dtype=torch.float32)
    per_hand = joint_angle_violation(anatomical_angles(both, frames, torch.tensor([False, True])), limits)
    assert per_hand[0].sum() == pytest.approx(0.25, abs=1e-4)
    assert per_hand[1].sum() == pytest.approx(0.25, abs=1e-4)
    # without the left flag the mirrored pose is read as a (different) right-hand pose
    assert not torch.allclose(anatomical_angles(both[1:], frames), anatomical_angles(both[:1], frames))


def test_shape_prior():
    assert float(shape_prior_loss(torch.zeros(3, 10))) == pytest.approx(0.0, abs=1e-7)
    b = torch.zeros(2, 10)
    b[0, 0], b[0, 1] = 3.0, 4.0
    assert float(shape_prior_loss(b)) == pytest.approx(2.5, rel=1e-4)
    z = torch.zeros(1, 10, requires_grad=True)
    shape_prior_loss(z).backward()
    assert torch.isfinite(z.grad).all()
    assert float(shape_prior_loss(torch.zeros(0, 10))) == 0.0
