"""Tests for hand_recon_core.models.backbones.resnet."""

import logging

import pytest
import torch

from hand_recon_core.models.backbones import (
    CheckpointMismatchError,
    build_backbone,
    load_pretrained,
)

ARCH = {  # block type, blocks per stage (torchvision's definitions)
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}


def torchvision_shapes(name, with_fc=True, with_num_batches_tracked=True):
    """Expected torchvision ``state_dict`` keys and shapes, written from the architecture rules."""
    kind, blocks = ARCH[name]
    expansion = 1 if kind == "basic" else 4
    shapes = {}

    def bn(prefix, c):
        shapes.update({f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                       f"{prefix}.running_var": (c,)})
        if with_num_batches_tracked:
            shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        stride = 1 if stage == 1 else 2
        for j in range(n):
            p = f"layer{stage}.{j}"
            if kind == "basic":
                shapes[f"{p}.conv1.weight"] = (planes, inplanes, 3, 3)
                bn(f"{p}.bn1", planes)
                shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
            else:
                shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
                bn(f"{p}.bn1", planes)
                shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
                shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
                bn(f"{p}.bn3", planes * 4)
            if j == 0 and (stride != 1 or inplanes != planes * expansion):
                shapes[f"{p}.downsample.0.weight"] = (planes * expansion, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    if with_fc:
        shapes["fc.weight"] = (1000, 512 * expansion)
        shapes["fc.bias"] = (1000,)
    return shapes


def fake_checkpoint(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.tensor(7) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g)
        for k, s in shapes.items()
    }


def test_rules_agree_with_known_torchvision_keys():
    r50 = torchvision_shapes("resnet50")
    assert r50["layer1.0.conv1.weight"] == (64, 64, 1, 1)
    assert r50["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert r50["layer2.0.downsample.0.weight"] == (512, 256, 1, 1)
    assert r50["layer4.2.bn3.running_var"] == (2048,)
    assert r50["fc.weight"] == (1000, 2048)
    assert len(r50) == 320 and len(torchvision_shapes("resnet50", with_num_batches_tracked=False)) == 267
    r18 = torchvision_shapes("resnet18")
    assert "layer1.0.downsample.0.weight" not in r18
    assert r18["layer2.0.downsample.0.weight"] == (128, 64, 1, 1)
    assert r18["layer4.1.bn2.running_mean"] == (512,)
    assert len(r18) == 122


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_key_set_and_shapes_equal_torchvision(name):
    model = build_backbone(name, num_classes=1000)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == torchvision_shapes(name)
    backbone = build_backbone(name)
    assert set(backbone.state_dict()) == set(torchvision_shapes(name, with_fc=False))


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_load_torchvision_state_dict(name, tmp_path):
    ckpt = fake_checkpoint(torchvision_shapes(name))
    with_fc = build_backbone(name, num_classes=1000)
    with_fc.load_state_dict(ckpt)  # plain torch strict loading works
    torch.testing.assert_close(with_fc.layer1[0].conv1.weight, ckpt["layer1.0.conv1.weight"])
    path = tmp_path / f"{name}.pth"
    torch.save(ckpt, path)
    model = build_backbone(name, pretrained=path)
    torch.testing.assert_close(model.state_dict()["layer4.1.bn2.running_var"], ckpt["layer4.1.bn2.running_var"])
    assert not hasattr(model, "fc")


def test_fc_is_ignored_only_without_classifier_and_reported(caplog):
    ckpt = fake_checkpoint(torchvision_shapes("resnet18"))
    model = build_backbone("resnet18")
    with caplog.at_level(logging.INFO, logger="hand_recon_core.models.backbones.resnet"):
        ignored = load_pretrained(model, ckpt)
    assert ignored == ["fc.bias", "fc.weight"]
    assert "fc.weight" in caplog.text and "no classifier" in caplog.text
    # A classifier model must get its fc from the checkpoint.
    no_fc = fake_checkpoint(torchvision_shapes("resnet18", with_fc=False))
    with pytest.raises(CheckpointMismatchError, match="missing keys: fc.weight"):
        load_pretrained(build_backbone("resnet18", num_classes=1000), no_fc)


def test_old_checkpoints_without_num_batches_tracked_load():
    ckpt = fake_checkpoint(torchvision_shapes("resnet18", with_num_batches_tracked=False))
    assert load_pretrained(build_backbone("resnet18"), ckpt) == ["fc.bias", "fc.weight"]


def test_strict_loading_error_names_the_keys():
    ckpt = fake_checkpoint(torchvision_shapes("resnet18"))
    del ckpt["layer3.1.conv2.weight"]
    ckpt["layer5.0.conv1.weight"] = torch.zeros(1)
    ckpt["layer2.0.bn1.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointMismatchError) as info:
        load_pretrained(build_backbone("resnet18"), ckpt)
    message = str(info.value)
    assert "1 missing keys: layer3.1.conv2.weight" in message
    assert "1 unexpected keys: layer5.0.conv1.weight" in message
    assert "layer2.0.bn1.weight: checkpoint (3,) vs model (128,)" in message
    # A resnet50 checkpoint does not load into a resnet18.
    with pytest.raises(CheckpointMismatchError, match="does not match resnet18"):
        load_pretrained(build_backbone("resnet18"), fake_checkpoint(torchvision_shapes("resnet50")))


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_backbone("resnet18", pretrained=tmp_path / "nope.pth")
    with pytest.raises(KeyError):
        build_backbone("resnet101")


@pytest.mark.parametrize(
    "name, channels",
    [("resnet18", (64, 128, 256, 512)), ("resnet34", (64, 128, 256, 512)), ("resnet50", (256, 512, 1024, 2048))],
)
def test_feature_shapes(name, channels):
    model = build_backbone(name).eval()
    with torch.no_grad():
        feats = model.forward_features(torch.randn(2, 3, 64, 96))
    assert list(feats) == ["c2", "c3", "c4", "c5"]
    for (key, f), c, stride in zip(feats.items(), channels, (4, 8, 16, 32)):
        assert f.shape == (2, c, 64 // stride, 96 // stride)
        assert model.out_channels[key] == c and model.strides[key] == stride


def test_classifier_forward():
    model = build_backbone("resnet18", num_classes=10).eval()
    with torch.no_grad():
        assert model.forward_logits(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    with pytest.raises(RuntimeError):
        build_backbone("resnet18").forward_logits(torch.randn(1, 3, 64, 64))
