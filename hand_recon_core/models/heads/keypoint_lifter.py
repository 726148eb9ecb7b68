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

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hand_recon_core.data.sample import NUM_JOINTS
from hand_recon_core.models.heads.center import encode_center_heatmap

__all__ = [
    "KEYPOINT_BOX_FRACTION",
    "SLOT_KEYPOINT_STRIDE",
    "KeypointLifter",
    "attention_centres",
    "keypoint_frame",
    "lift_slot_keypoints",
    "load_detector_keypoints",
    "read_keypoints",
    "slot_keypoint_heatmaps",
    "slot_keypoint_modules",
    "soft_argmax_keypoints",
]

#: Stride of the per-slot keypoint heatmaps of the methods with fixed hand slots (ACR, DIR), input pixels.
SLOT_KEYPOINT_STRIDE = 4
#: Keypoint heatmap Gaussians use the CenterNet radius rule of a box this fraction of the hand's box.
KEYPOINT_BOX_FRACTION = 0.25


def _cell_centres(logits: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input-pixel centres ``(ys (h,), xs (w,))`` of the cells of a ``(..., h, w)`` heatmap of stride ``stride``."""
    h, w = logits.shape[-2:]
    ys = torch.arange(h, device=logits.device, dtype=torch.float32) * stride + (stride - 1) / 2.0
    xs = torch.arange(w, device=logits.device, dtype=torch.float32) * stride + (stride - 1) / 2.0
    return ys, xs


def _expected_position(weight: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, eps: float
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted mean cell centre of ``weight (N, J, h, w)``: ``(u (N, J), v (N, J), total weight + eps)``."""
    total = weight.sum(dim=(2, 3)) + eps
    u = (weight.sum(dim=2) * xs).sum(dim=-1) / total
    v = (weight.sum(dim=3) * ys).sum(dim=-1) / total
    return u, v, total


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
    prob = torch.sigmoid(logits.float()[batch.long()])  # (M, J, h, w)
    ys, xs = _cell_centres(logits, stride)
    sigma = (window * extent.float()).clamp_min(stride)[:, None, None]
    gy = torch.exp(-0.5 * ((ys[None, :] - centre[:, 1:2].float()) / sigma[:, :, 0]) ** 2)  # (M, h)
    gx = torch.exp(-0.5 * ((xs[None, :] - centre[:, 0:1].float()) / sigma[:, :, 0]) ** 2)  # (M, w)
    weight = prob.pow(power) * (gy[:, None, :, None] * gx[:, None, None, :])
    u, v, total = _expected_position(weight, ys, xs, eps)  # (M, J)
    # a joint without any weight (far outside every window) falls back to the centre
    empty = total <= 2 * eps
    u = torch.where(empty, centre[:, 0:1].float().expand_as(u), u)
    v = torch.where(empty, centre[:, 1:2].float().expand_as(v), v)
    return torch.stack([u, v], dim=-1)


def soft_argmax_keypoints(logits: torch.Tensor, stride: int, power: float = 2.0, eps: float = 1e-8) -> torch.Tensor:
    """Soft-argmax of every heatmap channel over the whole map (one hand per channel group, as in ACR's slots).

    Args:
        logits: (B, C, h, w) keypoint heatmap logits, ``stride`` input pixels per cell.
        stride: heatmap stride, input pixels.
        power: exponent of the probabilities ``sigmoid(logits)`` in the weights (sharpens the peaks).

    Returns:
        (B, C, 2) float32 expected positions ``(u, v)``, input pixels (cell centres at
        ``stride * i + (stride - 1) / 2``).
    """
    ys, xs = _cell_centres(logits, stride)
    u, v, _ = _expected_position(torch.sigmoid(logits.float()).pow(power), ys, xs, eps)
    return torch.stack([u, v], dim=-1)


def keypoint_frame(keypoints: torch.Tensor, min_extent: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and size of a keypoint set, the frame :class:`KeypointLifter` normalises it in.

    Args:
        keypoints: (M, J, 2) input pixels.
        min_extent: lower bound of the size, input pixels (a collapsed, not yet learned heatmap must not blow the
            normalised coordinates up).

    Returns:
        ``centre (M, 2)``: mean keypoint, input pixels; ``extent (M,)``: longer side of the keypoints' box, input
        pixels, at least ``min_extent``.
    """
    centre = keypoints.mean(dim=-2)
    extent = (keypoints.amax(dim=-2) - keypoints.amin(dim=-2)).amax(dim=-1).clamp_min(min_extent)
    return centre, extent


class KeypointLifter(nn.Module):
    """MLP from normalised 2D keypoints (and handedness) to a hand-model code correction (module docstring).

    Args:
        num_params: size of the code it corrects.
        num_joints: keypoints per hand.
        hidden: hidden widths.
        extra_inputs: further inputs per hand appended to the normalised keypoints (e.g. where the hand is in the
            image, for a code that holds a camera: see DIR's lifter).
    """

    def __init__(self, num_params: int, num_joints: int = 21, hidden: Sequence[int] = (512, 512),
                 extra_inputs: int = 0) -> None:
        super().__init__()
        self.extra_inputs, self.num_joints = int(extra_inputs), int(num_joints)
        layers: list[nn.Module] = []
        c = 2 * num_joints + 1 + self.extra_inputs
        for h in hidden:
            layers += [nn.Linear(c, h), nn.ReLU(inplace=True)]
            c = h
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(c, num_params)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, keypoints: torch.Tensor, centre: torch.Tensor, extent: torch.Tensor,
                handedness: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Code correction.

        Args:
            keypoints: (M, J, 2) input pixels.
            centre: (M, 2) input pixels.
            extent: (M,) input pixels.
            handedness: (M,) int64 codes (0 right, 1 left).
            extra: (M, extra_inputs) further inputs (required when ``extra_inputs > 0``).

        Returns:
            (M, num_params) float32.
        """
        rel = (keypoints.float() - centre.float()[:, None]) / extent.float().clamp_min(1.0)[:, None, None]
        side = 1.0 - 2.0 * handedness.float()[:, None]  # +1 right, -1 left
        pieces = [rel.flatten(1), side]
        if self.extra_inputs:
            if extra is None or extra.shape[-1] != self.extra_inputs:
                raise ValueError(f"the lifter expects {self.extra_inputs} extra inputs per hand")
            pieces.append(extra.float())
        return self.out(self.hidden(torch.cat(pieces, dim=1)))


# ------------------------------------------------------------------------------------------------------------
# methods with fixed hand slots (ACR, DIR): one group of 21 heatmap channels per slot (slot = handedness code)
# ------------------------------------------------------------------------------------------------------------


def slot_keypoint_heatmaps(keypoints: np.ndarray, selected: np.ndarray, image_size: int,
                           box_sizes: np.ndarray | None = None) -> np.ndarray:
    """Keypoint heatmap targets of a fixed-slot method (channel ``21 slot + joint``, CenterNet Gaussians).

    Args:
        keypoints: (K, J, 2) keypoints of the K slots, input pixels.
        selected: (K, J) bool, the joints to draw (e.g. the valid ones, or the valid and visible ones); of those,
            the ones inside the ``S x S`` input are drawn.
        image_size: input side ``S``, pixels.
        box_sizes: (K, 2) each slot's hand box ``(width, height)``, input pixels (default: the box of its drawn
            keypoints, at least 1 px); the Gaussians follow the radius rule of a box :data:`KEYPOINT_BOX_FRACTION`
            of it.

    Returns:
        (K J, S / 4, S / 4) float32 in [0, 1].
    """
    kp = np.asarray(keypoints, np.float64)
    drawn = np.asarray(selected, bool) & (kp >= -0.5).all(-1) & (kp < image_size - 0.5).all(-1)
    if box_sizes is None:
        box_sizes = np.ones((kp.shape[0], 2))
        for slot in np.flatnonzero(drawn.any(axis=1)):
            box_sizes[slot] = np.maximum(np.ptp(kp[slot][drawn[slot]], axis=0), 1.0)
    slots, joints = np.nonzero(drawn)
    sizes = np.asarray(box_sizes, np.float64)[slots] * KEYPOINT_BOX_FRACTION
    h = int(image_size) // SLOT_KEYPOINT_STRIDE
    heatmap, _, _ = encode_center_heatmap(torch.from_numpy(kp[slots, joints].reshape(-1, 2)),
                                          torch.from_numpy(sizes.reshape(-1, 2)),
                                          torch.from_numpy((slots * kp.shape[1] + joints).astype(np.int64)),
                                          kp.shape[0] * kp.shape[1], (h, h), SLOT_KEYPOINT_STRIDE)
    return heatmap.numpy()


def attention_centres(attn: torch.Tensor, image_size: int) -> torch.Tensor:
    """Centroid of each hand's attention map (Eq. 1), input pixels.

    Args:
        attn: ``(B, 2, h, w)`` non-negative attention over a feature map covering the ``S x S`` input (cell ``x``
            centred on pixel ``stride x + (stride - 1) / 2``, ``stride = S / w``).
        image_size: input side ``S``, pixels.

    Returns:
        ``(B, 2, 2)`` attention-weighted mean cell centre ``(u, v)`` of every hand, float32 pixels.
    """
    h, w = attn.shape[-2:]
    weights = attn.float() / attn.float().sum(dim=(-2, -1), keepdim=True).clamp_min(1e-8)
    sy, sx = image_size / h, image_size / w
    ys = torch.arange(h, device=attn.device, dtype=torch.float32) * sy + (sy - 1) / 2.0
    xs = torch.arange(w, device=attn.device, dtype=torch.float32) * sx + (sx - 1) / 2.0
    return torch.stack([(weights.sum(-2) * xs).sum(-1), (weights.sum(-1) * ys).sum(-1)], dim=-1)


#: Window of :func:`lift_slot_keypoints` around a slot's centre: Gaussian of standard deviation this fraction of the
#: input side (0.25: 32 px on a 128 px input, about half a hand of the two-hand crops and scenes).
SLOT_WINDOW = 0.25


def lift_slot_keypoints(lifter: KeypointLifter, logits: torch.Tensor, image_size: int,
                        centres: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The lifter's code correction of every slot, from the slots' keypoint heatmaps.

    Per slot ``k`` (handedness code), the soft-argmax keypoints of channels ``21 k .. 21 k + 20`` (detached,
    float32) are normalised by their own centre and size (:func:`keypoint_frame`, at least two heatmap cells);
    a lifter built with ``extra_inputs=3`` also reads where the hand is: its centre in normalised input
    coordinates ``2 u / S - 1`` and ``log(size / S)`` (what a code holding a camera needs). With ``centres`` (the
    method's own estimate of where each slot's hand is) the soft-argmax is weighted by a Gaussian window of
    standard deviation :data:`SLOT_WINDOW` ``x S`` around it (:func:`read_keypoints`): a slot whose heatmaps still
    fire on both hands of a pair reads one hand instead of the average of the two.

    Args:
        lifter: the lifter (``extra_inputs`` 0 or 3).
        logits: (B, K J, S/4, S/4) heatmap logits.
        image_size: input side ``S``, pixels.
        centres: optional (B, K, 2) window centre of every slot, input pixels (detached here).

    Returns:
        ``(correction (B, K, num_params) float32, keypoints (B, K, J, 2) input pixels)``.
    """
    b, channels, h, w = logits.shape
    num_slots = channels // lifter.num_joints
    with torch.autocast(device_type=logits.device.type, enabled=False):
        if centres is None:
            kp = soft_argmax_keypoints(logits.detach(), SLOT_KEYPOINT_STRIDE)
        else:
            flat_logits = logits.detach().reshape(b * num_slots, lifter.num_joints, h, w)
            index = torch.arange(b * num_slots, device=logits.device)
            size = torch.full((b * num_slots,), float(image_size), device=logits.device)
            kp = read_keypoints(flat_logits, index, centres.detach().reshape(-1, 2).float(), size,
                                SLOT_KEYPOINT_STRIDE, window=SLOT_WINDOW)
        kp = kp.reshape(b, num_slots, lifter.num_joints, 2)
        flat = kp.flatten(0, 1)
        centre, extent = keypoint_frame(flat, min_extent=2.0 * SLOT_KEYPOINT_STRIDE)
        slots = torch.arange(num_slots, device=kp.device).repeat(b)
        extra = None
        if lifter.extra_inputs:
            extra = torch.cat([centre * (2.0 / image_size) - 1.0, torch.log(extent / image_size)[:, None]], dim=1)
        correction = lifter(flat, centre, extent, slots, extra).view(b, num_slots, -1)
    return correction, kp


def slot_keypoint_modules(backbone_channels: Mapping[str, int], num_params: int, channels: int, hidden: int,
                          num_slots: int = 2) -> tuple[nn.Module, nn.Module, KeypointLifter]:
    """The keypoint path of a fixed-slot method, in the single-stage detector's layout (see
    :func:`load_detector_keypoints`): ``(fusion, heatmap branch, lifter)``.

    Args:
        backbone_channels: the ResNet's ``out_channels`` (``c2`` .. ``c5``).
        num_params: size of the code (or feature) the lifter corrects.
        channels, hidden: widths of the c3/c4/c5 fusion and of the heatmap branch.
        num_slots: hand slots (21 heatmap channels each).

    Returns:
        a :class:`~hand_recon_core.models.heads.single_stage.MultiScaleFusion`, a
        :class:`~hand_recon_core.models.heads.single_stage.KeypointBranch` with ``num_slots x 21`` outputs and a
        :class:`KeypointLifter` reading the hand's position too (``extra_inputs=3``).
    """
    from hand_recon_core.models.heads.single_stage import KeypointBranch, MultiScaleFusion

    ch = backbone_channels
    return (MultiScaleFusion([ch["c3"], ch["c4"], ch["c5"]], channels),
            KeypointBranch(channels, ch["c2"], hidden, num_slots * NUM_JOINTS),
            KeypointLifter(num_params, NUM_JOINTS, extra_inputs=3))


def load_detector_keypoints(fusion: nn.Module, head: nn.Module, checkpoint: str | Path) -> None:
    """Initialise a fixed-slot keypoint path from a trained single-stage detector's keypoint branch.

    The detector (``single_stage`` with ``keypoint_branch``) computes 21 heatmaps from its c3/c4/c5 fusion
    (``fusion.*``, a :class:`~hand_recon_core.models.heads.single_stage.MultiScaleFusion`) and ``c2``
    (``keypoints.*``, a :class:`~hand_recon_core.models.heads.single_stage.KeypointBranch`). A fixed-slot
    method built with the same widths gets both, the 21-channel output layer copied into every slot's group
    (the slots then learn to tell the hands apart): its heatmaps start where the detector's training left them.
    The backbone is not touched (see ``hand-recon export --format backbone``).

    Args:
        fusion: the method's ``MultiScaleFusion``.
        head: the method's ``KeypointBranch`` with ``slots x 21`` outputs.
        checkpoint: a ``single_stage`` training checkpoint or package.

    Raises:
        FileNotFoundError, CheckpointError: unreadable, not a single-stage detector or without keypoint branch.
        CheckpointMismatchError: the widths differ (the message lists the keys and shapes).
    """
    from hand_recon_core.training.checkpoint import CheckpointError, load_checkpoint, load_model_state

    ckpt = load_checkpoint(checkpoint)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    if ckpt.get("method") != "single_stage" or not any(k.startswith("keypoints.") for k in state):
        raise CheckpointError(f"{checkpoint}: not a single-stage detector with a keypoint branch "
                              f"(method {ckpt.get('method')!r})")
    load_model_state(fusion, {k[len("fusion."):]: v for k, v in state.items() if k.startswith("fusion.")},
                     source=f"{checkpoint} (fusion.*)")
    branch = {k[len("keypoints."):]: v for k, v in state.items() if k.startswith("keypoints.")}
    slots = head.out.out_channels // branch["out.weight"].shape[0]
    branch["out.weight"] = branch["out.weight"].repeat(slots, 1, 1, 1)
    branch["out.bias"] = branch["out.bias"].repeat(slots)
    load_model_state(head, branch, source=f"{checkpoint} (keypoints.*)")
