"""The conventional two-stage baseline of the scaling benchmark: detect, crop every hand, regress each crop.

This is the pipeline the single-stage paper compares against in its Fig. 9 ("the computation cost of
multi-stage methods grows linearly with the number of hands"): a detector network on the whole image, then one
single-hand regressor forward pass per hand crop. Both networks use the same ResNet backbone as the single-stage
model they are compared with, so the comparison isolates the pipeline structure. Weights are random: the module
exists for timing (``hand-recon bench scaling``), not for accuracy.

* :class:`HandDetectorNet`: backbone -> ``c5`` (stride 32) -> 1x1 convolutions -> centre heatmap (1 channel) and
  box size (2 channels, pixels / stride); peaks by :func:`~hand_recon_core.models.heads.center.decode_peaks`.
* :class:`SingleHandRegressor`: backbone on a ``crop_size`` x ``crop_size`` hand crop (224, the paper's
  single-hand input) -> global average pool -> MLP -> 61 numbers (global orientation 3 + finger pose 45
  axis-angle, betas 10, weak-perspective camera 3) -> the hand layer of the hand's side -> vertices / joints
  placed in the camera frame with :func:`~hand_recon_core.geometry.cameras.crop_weak_perspective_to_full_translation`.
* :class:`TwoStageBaseline`: the whole baseline on one image, given the boxes to crop (random detector weights
  find no real hands, so the benchmark crops the scene's ground-truth boxes after running and decoding the
  detector for its cost).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.geometry.cameras import crop_weak_perspective_to_full_translation
from hand_recon_core.hand_model.constants import NUM_BETAS, NUM_HAND_POSE
from hand_recon_core.hand_model.loader import load_hand_model
from hand_recon_core.models.backbones import build_backbone
from hand_recon_core.models.heads.center import decode_peaks

__all__ = ["HandDetectorNet", "SingleHandRegressor", "TwoStageBaseline"]

#: ImageNet statistics (the backbone's convention).
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
#: Regressor output: global orient 3 + finger pose 45 + betas 10 + weak-perspective camera 3.
NUM_OUTPUTS = 3 + NUM_HAND_POSE + NUM_BETAS + 3
#: Weak-perspective scale at a zero camera output (normalised units per metre: a 0.2 m hand fills the crop).
_INIT_SCALE = 10.0


def _normalise(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float ImageNet-normalised."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    mean = x.new_tensor(_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class HandDetectorNet(nn.Module):
    """Stage 1: a centre-heatmap hand detector on the backbone's stride-32 features.

    Args:
        backbone: ``resnet18`` | ``resnet34`` | ``resnet50``.
    """

    def __init__(self, backbone: str = "resnet18") -> None:
        super().__init__()
        self.backbone = build_backbone(backbone)
        ch = self.backbone.out_channels["c5"]
        self.head = nn.Sequential(nn.Conv2d(ch, 128, 1), nn.ReLU(inplace=True), nn.Conv2d(128, 3, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, 3, S, S)`` normalised -> ``(centre logits (B, 1, S/32, S/32), box size (B, 2, S/32, S/32))``."""
        out = self.head(self.backbone.forward_features(x)["c5"])
        return out[:, :1], out[:, 1:]


class SingleHandRegressor(nn.Module):
    """Stage 2: hand-model parameters from one hand crop (module docstring).

    Args:
        backbone: backbone name.
        hand_model_id: hand model of the output meshes.
        hidden: MLP width.
    """

    def __init__(self, backbone: str = "resnet18", hand_model_id: str = "open", hidden: int = 512) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone)
        ch = self.backbone.out_channels["c5"]
        self.mlp = nn.Sequential(nn.Linear(ch, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, NUM_OUTPUTS))
        nn.init.zeros_(self.mlp[-1].bias)
        self.layers = nn.ModuleList([load_hand_model(hand_model_id, side=s, pose_repr="axis_angle",
                                                     flat_hand_mean=True) for s in ("right", "left")])

    def forward(self, crops: torch.Tensor, handedness: int) -> dict[str, torch.Tensor]:
        """Regress the hands of ``crops``.

        Args:
            crops: (B, 3, C, C) normalised crops of hands of one side.
            handedness: ``RIGHT`` or ``LEFT`` (selects the hand layer).

        Returns:
            ``vertices (B, V, 3)`` and ``joints (B, 21, 3)`` wrist-relative (metres, camera orientation) and
            ``cam (B, 3)`` weak-perspective ``(s, tx, ty)`` of the crop.
        """
        feat = self.backbone.forward_features(crops)["c5"].mean(dim=(-2, -1))
        p = self.mlp(feat)
        go, fp = p[:, :3], p[:, 3:3 + NUM_HAND_POSE]
        betas = p[:, 3 + NUM_HAND_POSE:3 + NUM_HAND_POSE + NUM_BETAS]
        raw = p[:, -3:]
        s = _INIT_SCALE * torch.exp(raw[:, :1].clamp(-3.0, 3.0))
        cam = torch.cat([s, raw[:, 1:]], dim=1)
        out = self.layers[int(handedness)](global_orient=go, hand_pose=fp, betas=betas)
        root = out.joints[:, :1]
        return {"vertices": out.vertices - root, "joints": out.joints - root, "cam": cam}


class TwoStageBaseline:
    """The detect-crop-regress pipeline (module docstring) with random weights.

    Args:
        backbone: the backbone of both stages.
        hand_model_id: hand model.
        input_size: detector input side, pixels (the image is letterboxed to it).
        crop_size: hand crop side, pixels (224: the single-stage paper's single-hand input).
        crop_margin: crop side / longer box side.
        device: torch device.
        batch_crops: run all crops of an image in one regressor batch per side instead of one by one (the
            conventional pipelines of the paper's comparison process hands one by one).
    """

    def __init__(self, backbone: str = "resnet18", hand_model_id: str = "open", input_size: int = 512,
                 crop_size: int = 224, crop_margin: float = 1.3, device: str | torch.device = "cpu",
                 batch_crops: bool = False) -> None:
        self.device = torch.device(device)
        self.detector = HandDetectorNet(backbone).to(self.device).eval()
        self.regressor = SingleHandRegressor(backbone, hand_model_id).to(self.device).eval()
        self.input_size, self.crop_size, self.crop_margin = int(input_size), int(crop_size), float(crop_margin)
        self.batch_crops = bool(batch_crops)

    def _crop(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(crop (C, C, 3) uint8, crop centre (2,) full-image pixels, crop side in full-image pixels)."""
        centre = 0.5 * (box[:2] + box[2:])
        side = max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0) * self.crop_margin
        a = self.crop_size / side
        c = (self.crop_size - 1) / 2.0
        matrix = np.array([[a, 0.0, c - a * centre[0]], [0.0, a, c - a * centre[1]]])
        crop = cv2.warpAffine(image, matrix, (self.crop_size, self.crop_size), flags=cv2.INTER_LINEAR)
        # the full-image pixel mapped to the crop's normalised origin (crop pixel C / 2)
        origin = centre + (self.crop_size / 2.0 - c) / a
        return crop, origin, side

    @torch.inference_mode()
    def __call__(self, image: np.ndarray, K: np.ndarray, boxes: np.ndarray, handedness: Sequence[int]
                 ) -> list[dict[str, np.ndarray]]:
        """Run both stages on one image.

        Args:
            image: (H, W, 3) uint8 RGB.
            K: (3, 3) intrinsics, pixels.
            boxes: (N, 4) xyxy hand boxes to crop, pixels (see the module docstring).
            handedness: (N,) ``RIGHT`` / ``LEFT``.

        Returns:
            Per hand: ``vertices_3d (V, 3)`` and ``joints_3d (21, 3)`` metres in the camera frame.
        """
        dev = self.device
        height, width = image.shape[:2]
        s = self.input_size / max(height, width)
        lb = np.zeros((self.input_size, self.input_size, 3), np.uint8)
        resized = cv2.resize(image, (max(1, round(width * s)), max(1, round(height * s))),
                             interpolation=cv2.INTER_LINEAR)
        lb[: resized.shape[0], : resized.shape[1]] = resized
        heat, _ = self.detector(_normalise(torch.from_numpy(lb)[None].to(dev)))
        decode_peaks(torch.sigmoid(heat), threshold=0.0, top_k=max(1, len(boxes)))
        k = torch.as_tensor(np.asarray(K, np.float32), device=dev)
        crops = [self._crop(image, np.asarray(b, np.float64)) for b in boxes]
        results: list[dict[str, np.ndarray]] = [{} for _ in boxes]
        groups = ([[i for i, h in enumerate(handedness) if h == side] for side in (RIGHT, LEFT)] if self.batch_crops
                  else [[i] for i in range(len(boxes))])
        for idx in groups:
            if not idx:
                continue
            side = int(handedness[idx[0]])
            x = _normalise(torch.from_numpy(np.stack([crops[i][0] for i in idx])).to(dev))
            out = self.regressor(x, side)
            centre = torch.as_tensor(np.stack([crops[i][1] for i in idx]), dtype=torch.float32, device=dev)
            size = torch.as_tensor([crops[i][2] for i in idx], dtype=torch.float32, device=dev)
            transl = crop_weak_perspective_to_full_translation(out["cam"], centre, size, k)  # (B, 3)
            verts = (out["vertices"] + transl[:, None]).cpu().numpy()
            joints = (out["joints"] + transl[:, None]).cpu().numpy()
            for j, i in enumerate(idx):
                results[i] = {"vertices_3d": verts[j], "joints_3d": joints[j]}
        return results
