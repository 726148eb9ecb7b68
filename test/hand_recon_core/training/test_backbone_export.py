"""``extract_backbone`` / ``hand-recon export --format backbone``: a trained network's ResNet as torchvision weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hand_recon_core.cli.main import main
from hand_recon_core.models.backbones import build_backbone
from hand_recon_core.training.checkpoint import CheckpointError, extract_backbone, load_checkpoint

ASSET = Path(__file__).resolve().parents[3] / "hand_recon_core" / "assets" / "detector_default.pt"


def test_the_shipped_detectors_backbone_loads_into_a_fresh_resnet_and_another_method(tmp_path):
    from hand_recon_core.models.acr import ACRMethod

    out = tmp_path / "bb" / "detector_backbone.pth"
    info = extract_backbone(ASSET, out)
    assert info["backbone"] == "resnet18" and out.is_file()
    source = {k[len("backbone."):]: v for k, v in load_checkpoint(ASSET)["model"].items() if k.startswith("backbone.")}
    net = build_backbone("resnet18", pretrained=out)  # strict torchvision-format loading
    for key, value in net.state_dict().items():
        assert value.dtype == source[key].dtype or value.dtype == torch.float32
        assert torch.equal(value, source[key].to(value.dtype)), key
    acr = ACRMethod(input_size=64, feature_channels=16, head_channels=16, mlp_hidden=32).build_network(
        "resnet18", pretrained=str(out))
    assert torch.equal(acr.backbone.conv1.weight, source["conv1.weight"].float())


def test_a_checkpoint_without_a_backbone_is_refused(tmp_path):
    ckpt = load_checkpoint(ASSET)
    ckpt["model"] = {k: v for k, v in ckpt["model"].items() if not k.startswith("backbone.")}
    bad = tmp_path / "no_backbone.pt"
    torch.save(ckpt, bad)
    with pytest.raises(CheckpointError, match="no backbone weights"):
        extract_backbone(bad, tmp_path / "x.pth")
    assert main(["export", "--checkpoint", str(bad), "--format", "backbone", "--out", str(tmp_path / "x.pth")]) == 2
    assert main(["export", "--checkpoint", str(ASSET), "--format", "backbone"]) == 2  # --out is required
    assert not (tmp_path / "x.pth").exists()
