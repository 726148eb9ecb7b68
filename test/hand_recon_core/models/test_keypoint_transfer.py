"""Starting a fixed-slot keypoint path (ACR, DIR) from the shipped detector's keypoint branch."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from hand_recon_core.models.dir import DIRMethod
from hand_recon_core.training.checkpoint import CheckpointError, load_checkpoint, pack_checkpoint

ASSET = Path(__file__).resolve().parents[3] / "hand_recon_core" / "assets" / "detector_default.pt"
CFG = SimpleNamespace(backbone=SimpleNamespace(name="resnet18", pretrained=None))
TINY = dict(image_size=64, decoder_channels=16, joint_channels=16, mfp_channels=8, gcn_layers=1,
            transformer_layers=1, transformer_heads=2, head_hidden=32, num_stages=1)


def test_dir_keypoint_path_starts_from_the_detectors_branch_in_every_slot():
    detector = load_checkpoint(ASSET)["model"]
    net = DIRMethod(**TINY, keypoint_lifter=True, keypoint_init=str(ASSET)).build(CFG, "open")
    out_w = net.keypoint_head.out.weight
    assert out_w.shape[0] == 42
    for slot in (0, 1):
        assert torch.equal(out_w[21 * slot: 21 * (slot + 1)], detector["keypoints.out.weight"].float())
        assert torch.equal(net.keypoint_head.out.bias[21 * slot: 21 * (slot + 1)],
                           detector["keypoints.out.bias"].float())
    for key, value in net.keypoint_fusion.state_dict().items():
        assert torch.equal(value, detector[f"fusion.{key}"].to(value.dtype)), key
    with pytest.raises(ValueError, match="keypoint_init needs keypoint_lifter"):
        DIRMethod(**TINY, keypoint_init=str(ASSET))


def test_keypoint_init_refuses_other_checkpoints_and_widths(tmp_path):
    ckpt = load_checkpoint(ASSET)
    ckpt["method"] = "acr"
    other = tmp_path / "not_a_detector.pt"
    torch.save(ckpt, other)
    with pytest.raises(CheckpointError, match="not a single-stage detector"):
        DIRMethod(**TINY, keypoint_lifter=True, keypoint_init=str(other)).build(CFG, "open")
    from hand_recon_core.training.checkpoint import CheckpointMismatchError

    with pytest.raises(CheckpointMismatchError, match="fusion"):
        DIRMethod(**TINY, keypoint_lifter=True, keypoint_channels=32, keypoint_init=str(ASSET)).build(CFG, "open")


def test_packing_drops_the_training_only_initialisation(tmp_path):
    ckpt = load_checkpoint(ASSET)
    ckpt["config"]["method"]["kwargs"].update(init_weights="runs/x", keypoint_init="some/detector.pt")
    ckpt["config"]["backbone"]["pretrained"] = "runs/cpu/detector_backbone.pth"
    src = tmp_path / "trained.pt"
    torch.save(ckpt, src)
    packed = load_checkpoint(pack_checkpoint(src, tmp_path / "packed.pt"))
    kwargs = packed["config"]["method"]["kwargs"]
    assert kwargs["init_weights"] is None and kwargs["keypoint_init"] is None
    assert packed["config"]["backbone"]["pretrained"] is None


def test_acr_keypoint_path_starts_from_the_detectors_branch():
    from hand_recon_core.models.acr import ACRMethod

    detector = load_checkpoint(ASSET)["model"]
    method = ACRMethod(input_size=64, feature_channels=16, head_channels=16, mlp_hidden=32, keypoint_lifter=True,
                       keypoint_init=str(ASSET))
    net = method.build_network("resnet18")
    assert torch.equal(net.keypoint_head.out.weight[21:], detector["keypoints.out.weight"].float())
    assert torch.equal(net.keypoint_head.block[0][0].weight, detector["keypoints.block.0.0.weight"].float())
