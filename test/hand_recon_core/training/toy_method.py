"""Test-local toy method and dataset for the engine tests (loaded through the config's ``imports``).

``toy-images`` dataset: random 16x16 images in the sample format with one right hand whose ``joints_3d`` are a
fixed template shifted by ``t = mean RGB / 255 - 0.5`` (metres). ``toy`` method: a tiny conv net regressing
``t`` with an MSE loss; ``encode_targets`` adds ``target`` and flips the image horizontally with probability
0.5 drawn from ``numpy.random`` (which exercises the per-sample seeding; the target is flip-invariant).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from hand_recon_core.data.build import register_dataset
from hand_recon_core.data.sample import RIGHT, collate_samples, empty_hands
from hand_recon_core.models.registry import register_method

TEMPLATE = (np.arange(63, dtype=np.float32).reshape(21, 3) * 0.002 + np.array([0.0, 0.0, 0.5], np.float32))
BOX = np.array([2.0, 2.0, 14.0, 14.0], np.float32)


class ToyImages(Dataset):
    """``count`` random ``size`` x ``size`` images (seeded per index)."""

    def __init__(self, count: int = 64, size: int = 16, seed: int = 0) -> None:
        self.count, self.size, self.seed = int(count), int(size), int(seed)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, index])
        image = (rng.random((self.size, self.size, 3)) * rng.random(3) * 255).astype(np.uint8)
        t = image.reshape(-1, 3).mean(0) / 255.0 - 0.5
        hands = empty_hands(1)
        hands["handedness"][:] = RIGHT
        hands["joints_3d"][0] = TEMPLATE + t.astype(np.float32)
        hands["keypoints_2d"][0] = 8.0
        hands["joint_valid"][:] = 1
        hands["joint_visible"][:] = 1
        hands["bbox"][0] = BOX
        hands["has_3d"][:] = True
        return {"image": image, "K": np.diag([20.0, 20.0, 1.0]).astype(np.float32), **hands,
                "dataset": "toy-images", "sample_id": f"toy/{index}", "hand_model_id": "open"}


register_dataset("toy-images", ToyImages)


class ToyNet(nn.Module):
    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, hidden, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, 3)

    def forward(self, batch: dict) -> torch.Tensor:
        x = batch["pixels"]
        return self.fc(self.drop(torch.relu(self.conv(x)).mean((2, 3))))


@register_method("toy")
class ToyMethod:
    """Regress the per-image colour mean (3 numbers) from the image."""

    def __init__(self, hidden: int = 8, dropout: float = 0.0, loss_scale: float = 1.0) -> None:
        self.hidden, self.dropout, self.loss_scale = int(hidden), float(dropout), float(loss_scale)

    def build(self, cfg, hand_model_id: str) -> nn.Module:
        return ToyNet(self.hidden, self.dropout)

    def encode_targets(self, sample: dict, train: bool = False) -> dict:
        sample = dict(sample)
        if train and np.random.random() < 0.5:  # noqa: NPY002 - the engine seeds the global generator per sample
            sample["image"] = np.ascontiguousarray(sample["image"][:, ::-1])
        sample["target"] = (sample["image"].reshape(-1, 3).mean(0) / 255.0 - 0.5).astype(np.float32)
        return sample

    def collate(self, samples: list[dict]) -> dict:
        batch = collate_samples([{k: v for k, v in s.items() if k != "target"} for s in samples])
        batch["pixels"] = batch["image"].permute(0, 3, 1, 2).float() / 255.0
        batch["target"] = torch.from_numpy(np.stack([s["target"] for s in samples]))
        return batch

    def loss(self, model_out: torch.Tensor, batch: dict):
        mse = ((model_out.float() - batch["target"]) ** 2).mean() * self.loss_scale
        return mse, {"mse": mse.detach(), "abs": (model_out.float() - batch["target"]).abs().mean().detach()}

    def predict(self, model_out: torch.Tensor, batch: dict) -> list[dict]:
        out = []
        for t in model_out.detach().float().cpu().numpy():
            out.append({"handedness": np.array([RIGHT]), "score": np.array([0.9]), "bbox": BOX[None].copy(),
                        "joints_3d": (TEMPLATE + t)[None].astype(np.float32),
                        "keypoints_2d": np.full((1, 21, 2), 8.0, np.float32)})
        return out


@register_method("toy-wide")
class ToyWideMethod(ToyMethod):
    """The toy method under another name (for the wrong-method checks)."""
