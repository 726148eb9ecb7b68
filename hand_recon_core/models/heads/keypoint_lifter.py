"""Keypoint lifter: a hand-model code from the hand's own 2D keypoints, read off the keypoint heatmaps.

Ours, an option of the single-stage method (``keypoint_lifter: true``), not in its paper. Why: on the synthetic
benchmark the per-cell parameter head, trained from scratch on a CPU budget, does not learn the global
orientation (held-out rotation error about that of random rotations), while the dense keypoint heatmaps do learn
and a small MLP recovers the 3D hand from 2D keypoints (root-relative joints to ~12 mm, orientation to ~7 degrees
from exact keypoints; ~35 mm / ~21 degrees with 10 px of noise on 128 px crops; ``training/results/OBSERVATIONS.md``).
This is the 2D-to-3D lifting idea of the hand-object paper's SemGCN stage, applied per detected hand.

Per hand (a detected or ground-truth centre cell):

1. **Read the keypoints.** Heatmap probabilities ``p = sigmoid(logits)`` (the focal-loss targets are peaks of
   1), weighted by ``p^2`` times a Gaussian window of standard deviation ``window * extent`` around the hand
   centre (``extent``: the hand's 2D size in input pixels, its own per-cell output), then soft-argmax: one
   expected position per joint, in input pixels. The window separates the hands of a multi-hand image.
2. **Normalise.** ``(keypoint - centre) / extent`` (42 numbers) and the handedness (+1 right, -1 left).
3. **Lift.** An MLP maps them to a correction of the cell's hand-model code (same layout); its last layer starts
   at zero, so a network with the lifter starts from the plain per-cell code.

The keypoints are detached: the heatmaps keep their own dense supervision and the 3D losses train the lifter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["KeypointLifter", "read_keypoints"]


def read_keypoints(logits: torch.Tensor, batch: torch.Tensor, centre: torch.Tensor, extent: torch.Tensor,
                   stride: int, window: float = 0.75, power: float = 2.0, eps: float = 1e-8) -> torch.Tensor:
    """Soft-argmax keypoints of each hand within a Gaussian window around its centre.

    Args:
        logits: (B, J, h, w) keypoint heatmap logits (stride ``stride`` input pixels per cell).
        batch: (M,) int64 image of each hand.
        centre: (M, 2) hand centres, input pixels.
        extent: (M,) hand sizes (longer side of the 2D box), input pixels.
        stride: heatmap stride, input pixels.
        window: Gaussian window standard deviation as a fraction of ``extent``.
        power: exponent of the probabilities in the weights (sharpens the peaks).

    Returns:
        (M, J, 2) float32 keypoints, input pixels.
    """
    if batch.numel() == 0:
        return logits.new_zeros(0, logits.shape[1], 2, dtype=torch.float32)
    _, _, h, w = logits.shape
    prob = torch.sigmoid(logits.float()[batch.long()])  # (M, J, h, w)
    ys = torch.arange(h, device=logits.device, dtype=torch.float32) * stride + (stride - 1) / 2.0
    xs = torch.arange(w, device=logits.device, dtype=torch.float32) * stride + (stride - 1) / 2.0
    sigma = (window * extent.float()).clamp_min(stride)[:, None, None]
    gy = torch.exp(-0.5 * ((ys[None, :] - centre[:, 1:2].float()) / sigma[:, :, 0]) ** 2)  # (M, h)
    gx = torch.exp(-0.5 * ((xs[None, :] - centre[:, 0:1].float()) / sigma[:, :, 0]) ** 2)  # (M, w)
    weight = prob.pow(power) * (gy[:, None, :, None] * gx[:, None, None, :])
    total = weight.sum(dim=(2, 3)) + eps  # (M, J)
    u = (weight.sum(dim=2) * xs).sum(dim=-1) / total
    v = (weight.sum(dim=3) * ys).sum(dim=-1) / total
    # a joint without any weight (far outside every window) falls back to the centre
    empty = total <= 2 * eps
    u = torch.where(empty, centre[:, 0:1].float().expand_as(u), u)
    v = torch.where(empty, centre[:, 1:2].float().expand_as(v), v)
    return torch.stack([u, v], dim=-1)


class KeypointLifter(nn.Module):
    """MLP from normalised 2D keypoints (and handedness) to a hand-model code correction (module docstring).

    Args:
        num_params: size of the code it corrects.
        num_joints: keypoints per hand.
        hidden: hidden widths.
    """

    def __init__(self, num_params: int, num_joints: int = 21, hidden: Sequence[int] = (512, 512)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 2 * num_joints + 1
        for h in hidden:
            layers += [nn.Linear(c, h), nn.ReLU(inplace=True)]
            c = h
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(c, num_params)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, keypoints: torch.Tensor, centre: torch.Tensor, extent: torch.Tensor,
                handedness: torch.Tensor) -> torch.Tensor:
        """Code correction.

        Args:
            keypoints: (M, J, 2) input pixels.
            centre: (M, 2) input pixels.
            extent: (M,) input pixels.
            handedness: (M,) int64 codes (0 right, 1 left).

        Returns:
            (M, num_params) float32.
        """
        rel = (keypoints.float() - centre.float()[:, None]) / extent.float().clamp_min(1.0)[:, None, None]
        side = 1.0 - 2.0 * handedness.float()[:, None]  # +1 right, -1 left
        return self.out(self.hidden(torch.cat([rel.flatten(1), side], dim=1)))
