"""Test-local methods (loaded like user plugins) whose outputs the inference tests control exactly.

``stub_refiner``: a two-hand "refiner" that returns the hands it was given, in the sample's camera frame, moved by
a known translation ``shift`` (metres) and in the reversed slot order (left first), so the pipeline's mapping of a
refiner's results back onto its hands is checked against a hand-computed answer. Its network is a single scalar
parameter (it must be a module with a state dict for the loaders and the hash).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.models.registry import register_method


class _StubNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        return {"joints": batch["joints"] * self.gain, "vertices": batch["vertices"] * self.gain}


@register_method("stub_refiner")
class StubRefiner:
    """Returns the input pair moved by ``shift`` (metres, camera frame), left hand first."""

    def __init__(self, shift: Sequence[float] = (0.01, -0.02, 0.03)) -> None:
        self.shift = np.asarray(shift, np.float32)

    def build(self, cfg: Any, hand_model_id: str) -> nn.Module:
        return _StubNet()

    def loss(self, model_out, batch):  # pragma: no cover - not trained
        raise NotImplementedError

    def encode_targets(self, sample: dict[str, Any], train: bool = False) -> dict[str, Any]:
        order = [int(np.flatnonzero(sample["handedness"] == side)[0]) for side in (LEFT, RIGHT)]
        return {"joints": np.asarray(sample["joints_3d"], np.float32)[order],
                "vertices": np.asarray(sample["vertices_3d"], np.float32)[order],
                "K": np.asarray(sample["K"], np.float32), "sides": np.array([LEFT, RIGHT], np.int64)}

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in ("joints", "vertices", "K", "sides")}

    def predict(self, model_out: Mapping[str, Any], batch: Mapping[str, Any]) -> list[dict[str, Any]]:
        shift = torch.as_tensor(self.shift)
        out = []
        for i in range(batch["K"].shape[0]):
            joints = (model_out["joints"][i] + shift).numpy()
            verts = (model_out["vertices"][i] + shift).numpy()
            K = batch["K"][i].numpy().astype(np.float64)
            uvw = joints @ K.T
            kp = (uvw[..., :2] / uvw[..., 2:]).astype(np.float32)
            vuv = verts @ K.T
            vuv = vuv[..., :2] / vuv[..., 2:]
            bbox = np.concatenate([vuv.min(1), vuv.max(1)], axis=1).astype(np.float32)
            out.append({"handedness": batch["sides"][i].numpy(), "score": np.ones(2, np.float32), "bbox": bbox,
                        "keypoints_2d": kp, "joints_3d": joints, "vertices_3d": verts})
        return out
