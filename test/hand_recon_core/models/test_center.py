"""Tests for hand_recon_core.models.heads.center (hand-computed cases)."""

from __future__ import annotations

import math

import pytest
import torch

from hand_recon_core.models.heads.center import (
    cell_to_pixel,
    center_focal_loss,
    decode_peaks,
    encode_center_heatmap,
    gather_cells,
    gaussian_radius,
    pixel_to_cell,
)


def _cornernet_radius(h: float, w: float, o: float) -> float:
    r1 = ((h + w) + math.sqrt((h + w) ** 2 - 4 * w * h * (1 - o) / (1 + o))) / 2
    r2 = (2 * (h + w) + math.sqrt(4 * (h + w) ** 2 - 16 * (1 - o) * w * h)) / 2
    r3 = (-2 * o * (h + w) + math.sqrt(4 * o * o * (h + w) ** 2 - 16 * o * (o - 1) * w * h)) / 2
    return min(r1, r2, r3)


@pytest.mark.parametrize("h,w,o", [(5.0, 5.0, 0.7), (10.0, 4.0, 0.7), (3.0, 8.0, 0.5)])
def test_gaussian_radius_matches_hand_formula(h, w, o):
    assert float(gaussian_radius(h, w, o)) == pytest.approx(_cornernet_radius(h, w, o), rel=1e-5)
    # square of side 5 at IoU 0.7: case 3 wins, (-14 + sqrt(280)) / 2
    assert float(gaussian_radius(5.0, 5.0, 0.7)) == pytest.approx((-14 + math.sqrt(280)) / 2, rel=1e-6)


def test_pixel_cell_round_trip():
    stride = 8
    cells = torch.tensor([[0, 0], [3, 5], [7, 1]])
    pix = cell_to_pixel(cells, stride)
    assert torch.allclose(pix[1], torch.tensor([3 * 8 + 3.5, 5 * 8 + 3.5]))
    assert torch.equal(pixel_to_cell(pix, stride), cells)
    # pixel 7 (centre) lies in cell 0 ([-0.5, 7.5)), pixel 7.6 in cell 1
    assert pixel_to_cell(torch.tensor([[7.0, 7.6]]), stride).tolist() == [[0, 1]]


def test_encode_center_heatmap_peaks_channels_and_radius():
    centers = torch.tensor([[20.0, 30.0], [100.0, 60.0], [-50.0, 10.0]])
    sizes = torch.tensor([[40.0, 40.0], [64.0, 80.0], [30.0, 30.0]])
    hm, cells, in_map = encode_center_heatmap(centers, sizes, torch.tensor([0, 1, 0]), 2, (16, 16), 8)
    assert hm.shape == (2, 16, 16)
    assert in_map.tolist() == [True, True, False]
    assert cells[:2].tolist() == [[2, 3], [12, 7]]
    assert hm[0, 3, 2] == 1.0 and hm[1, 7, 12] == 1.0
    assert int((hm == 1.0).sum()) == 2  # exactly one positive per drawn object
    # radius of object 0: box 5x5 cells -> floor(1.37) = 1: the Gaussian is truncated beyond 1 cell
    assert hm[0, 3, 3] > 0 and hm[0, 3, 4] == 0
    sigma = 3.0 / 6.0
    assert float(hm[0, 3, 3]) == pytest.approx(math.exp(-1 / (2 * sigma * sigma)), rel=1e-5)
    # min_radius widens it
    hm2, _, _ = encode_center_heatmap(centers[:1], sizes[:1], None, 1, (16, 16), 8, min_radius=3)
    assert hm2[0, 3, 5] > 0 and hm2[0, 3, 6] == 0


def test_encode_overlapping_gaussians_take_maximum_and_valid_mask():
    centers = torch.tensor([[20.0, 20.0], [28.0, 20.0]])
    sizes = torch.full((2, 2), 80.0)
    hm, _, _ = encode_center_heatmap(centers, sizes, None, 1, (8, 8), 8)
    a, _, _ = encode_center_heatmap(centers[:1], sizes[:1], None, 1, (8, 8), 8)
    b, _, _ = encode_center_heatmap(centers[1:], sizes[1:], None, 1, (8, 8), 8)
    assert torch.allclose(hm, torch.maximum(a, b))
    hm_v, _, in_map = encode_center_heatmap(centers, sizes, None, 1, (8, 8), 8, valid=torch.tensor([True, False]))
    assert torch.allclose(hm_v, a) and in_map.tolist() == [True, False]


def test_focal_loss_hand_computed():
    target = torch.tensor([1.0, 0.5, 0.0]).view(1, 1, 1, 3)
    prob = torch.tensor([0.8, 0.3, 0.1]).view(1, 1, 1, 3)
    expected = -(
        (0.2**2) * math.log(0.8)
        + (0.5**4) * (0.3**2) * math.log(0.7)
        + 1.0 * (0.1**2) * math.log(0.9)
    ) / 1.0
    got = center_focal_loss(prob, target, logits=False)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    logits = torch.log(prob / (1 - prob))
    assert float(center_focal_loss(logits, target)) == pytest.approx(expected, rel=1e-5)
    # two positives: normalised by k = 2
    t2 = torch.tensor([1.0, 1.0]).view(1, 1, 1, 2)
    p2 = torch.tensor([0.5, 0.5]).view(1, 1, 1, 2)
    assert float(center_focal_loss(p2, t2, logits=False)) == pytest.approx(-(0.25 * math.log(0.5)), rel=1e-5)
    # no positives: the sum of negatives (k clamped to 1); per-image weight 0 removes the image
    t0 = torch.zeros(2, 1, 1, 1)
    p0 = torch.full((2, 1, 1, 1), 0.5)
    assert float(center_focal_loss(p0, t0, logits=False)) == pytest.approx(-2 * 0.25 * math.log(0.5), rel=1e-5)
    w = torch.tensor([1.0, 0.0])
    assert float(center_focal_loss(p0, t0, logits=False, weight=w)) == pytest.approx(-0.25 * math.log(0.5), rel=1e-5)


def test_focal_loss_gradient_pushes_towards_target():
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 1, 2] = 1.0
    logits = torch.zeros(1, 1, 4, 4, requires_grad=True)
    center_focal_loss(logits, target).backward()
    assert logits.grad[0, 0, 1, 2] < 0  # raise the centre
    assert (logits.grad[0, 0, 0, 0]) > 0  # lower the background


def test_decode_finds_exactly_planted_peaks():
    centers = torch.tensor([[20.0, 30.0], [100.0, 60.0], [60.0, 110.0]])
    sizes = torch.tensor([[40.0, 40.0], [48.0, 48.0], [32.0, 32.0]])
    hm0, cells0, _ = encode_center_heatmap(centers, sizes, torch.tensor([0, 1, 1]), 2, (16, 16), 8)
    hm1, cells1, _ = encode_center_heatmap(centers[:1], sizes[:1], torch.tensor([1]), 2, (16, 16), 8)
    hm = torch.stack([hm0 * torch.tensor([0.9, 0.8]).view(2, 1, 1), hm1 * 0.7])
    peaks = decode_peaks(hm, threshold=0.5, top_k=10)
    assert peaks.batch.tolist() == [0, 0, 0, 1]
    assert peaks.score.tolist() == pytest.approx([0.9, 0.8, 0.8, 0.7])
    found = {(int(b), int(c), int(y), int(x)) for b, c, y, x in zip(peaks.batch, peaks.channel, peaks.y, peaks.x)}
    expected = {(0, 0, 3, 2), (0, 1, 7, 12), (0, 1, 13, 7), (1, 1, 3, 2)}
    assert found == expected
    assert cells0.tolist() == [[2, 3], [12, 7], [7, 13]] and cells1.tolist() == [[2, 3]]
    # threshold and top-k
    assert decode_peaks(hm, threshold=0.85).batch.tolist() == [0]
    assert decode_peaks(hm, threshold=0.5, top_k=1).batch.tolist() == [0, 1]
    # an empty map gives no peaks
    assert decode_peaks(torch.zeros(2, 2, 8, 8), threshold=0.1).batch.numel() == 0


def test_decode_channel_agnostic_merges_channels():
    hm = torch.zeros(1, 2, 5, 5)
    hm[0, 0, 2, 2] = 0.9
    hm[0, 1, 2, 2] = 0.6
    hm[0, 1, 2, 3] = 0.7  # neighbour of a stronger peak of the other channel
    per_channel = decode_peaks(hm, threshold=0.5)
    assert per_channel.batch.numel() == 2  # (0, 2, 2) and (1, 2, 3); (1, 2, 2) is suppressed by (1, 2, 3)
    merged = decode_peaks(hm, threshold=0.5, channel_agnostic=True)
    assert merged.channel.tolist() == [0] and merged.y.tolist() == [2] and merged.x.tolist() == [2]


def test_gather_cells_is_differentiable():
    fm = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5).requires_grad_()
    out = gather_cells(fm, torch.tensor([1, 0]), torch.tensor([2, 3]), torch.tensor([4, 0]))
    assert torch.equal(out[0], fm[1, :, 2, 4].detach()) and torch.equal(out[1], fm[0, :, 3, 0].detach())
    out.sum().backward()
    assert fm.grad.sum() == 6
