"""Backbones: ResNet-18/34/50 with torchvision-compatible keys (see :mod:`.resnet`)."""

from hand_recon_core.models.backbones.resnet import (
    BACKBONES,
    FEATURE_STRIDES,
    BasicBlock,
    Bottleneck,
    CheckpointMismatchError,
    ResNet,
    build_backbone,
    load_pretrained,
    resnet18,
    resnet34,
    resnet50,
)

__all__ = [
    "BACKBONES",
    "FEATURE_STRIDES",
    "BasicBlock",
    "Bottleneck",
    "CheckpointMismatchError",
    "ResNet",
    "build_backbone",
    "load_pretrained",
    "resnet18",
    "resnet34",
    "resnet50",
]
