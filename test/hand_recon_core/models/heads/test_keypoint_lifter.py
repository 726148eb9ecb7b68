"""The keypoint lifter: windowed soft-argmax reads each hand's own keypoints; the MLP starts as a zero correction."""

from __future__ import annotations

import torch

from hand_recon_core.models.heads.center import cell_to_pixel
from hand_recon_core.models.heads.keypoint_lifter import KeypointLifter, read_keypoints


def _peaks(cells_xy: list[list[tuple[int, int]]], h: int = 32, w: int = 32, joints: int = 3) -> torch.Tensor:
    """Logits with a sharp peak (probability ~1, elsewhere ~0) per listed cell; one list per joint."""
    logits = torch.full((1, joints, h, w), -12.0)
    for j, cells in enumerate(cells_xy):
        for x, y in cells:
            logits[0, j, y, x] = 12.0
    return logits


def test_each_hand_reads_its_own_peaks():
    stride = 4
    # two hands: joint peaks near (5, 5) and near (25, 20) (heatmap cells)
    logits = _peaks([[(5, 5), (25, 20)], [(6, 4), (27, 22)], [(3, 7), (24, 18)]])
    centres = cell_to_pixel(torch.tensor([[5.0, 5.0], [25.0, 20.0]]), stride)
    kp = read_keypoints(logits, torch.tensor([0, 0]), centres, torch.tensor([24.0, 24.0]), stride)
    want = cell_to_pixel(torch.tensor([[[5, 5], [6, 4], [3, 7]], [[25, 20], [27, 22], [24, 18]]]), stride)
    assert torch.allclose(kp, want, atol=0.05)
    # a window as wide as the image mixes the two hands
    mixed = read_keypoints(logits, torch.tensor([0, 0]), centres, torch.tensor([1000.0, 1000.0]), stride)
    assert (mixed - want).abs().max() > 10


def test_no_hands_and_an_empty_window():
    logits = _peaks([[(1, 1)], [(1, 1)], [(1, 1)]])
    assert read_keypoints(logits, torch.zeros(0, dtype=torch.int64), torch.zeros(0, 2), torch.zeros(0), 4).shape == (
        0, 3, 2)
    far = torch.tensor([[120.0, 120.0]])
    kp = read_keypoints(logits, torch.tensor([0]), far, torch.tensor([2.0]), 4)  # window misses every peak
    assert torch.isfinite(kp).all()


def test_lifter_starts_at_zero_and_learns():
    torch.manual_seed(0)
    lifter = KeypointLifter(num_params=7, num_joints=3, hidden=(16,))
    kp = torch.randn(5, 3, 2) * 10 + 50
    centre, extent, side = torch.full((5, 2), 50.0), torch.full((5,), 30.0), torch.tensor([0, 1, 0, 1, 0])
    assert torch.equal(lifter(kp, centre, extent, side), torch.zeros(5, 7))
    target = torch.randn(5, 7)
    opt = torch.optim.Adam(lifter.parameters(), lr=1e-2)
    for _ in range(200):
        loss = ((lifter(kp, centre, extent, side) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.05
    # scale invariant input: the same hand twice as large (keypoints and extent) gives the same code
    twice = lifter(centre[:, None] + 2 * (kp - centre[:, None]), centre, 2 * extent, side)
    assert torch.allclose(twice, lifter(kp, centre, extent, side), atol=1e-5)
