"""ResNet-18/34/50 backbones with torchvision-compatible parameter names, returning multi-scale features.

The module tree mirrors torchvision's ``torchvision.models.resnet`` (v1.5: the stride of a bottleneck sits on
its 3x3 convolution), so a torchvision ``state_dict`` loads with strict key checking::

    conv1, bn1                                  stem: 7x7/2 conv (3 -> 64), BN, ReLU, 3x3/2 max-pool
    layer{1..4}.{j}.conv1/bn1, conv2/bn2        BasicBlock (resnet18/34)
    layer{1..4}.{j}.conv1/bn1 ... conv3/bn3     Bottleneck (resnet50)
    layer{1..4}.0.downsample.0 / .1             1x1 conv + BN shortcut where stride or width changes
    fc                                          optional classifier (only with ``num_classes``)

Features (``forward_features``), for an input ``(B, 3, H, W)`` (ImageNet-normalised RGB, as the torchvision
weights expect):

======  ======  ==================  =========================
name    stride  resnet18 / 34 ch.   resnet50 channels
======  ======  ==================  =========================
c2      4       64                  256
c3      8       128                 512
c4      16      256                 1024
c5      32      512                 2048
======  ======  ==================  =========================

Spatial sizes are ``ceil(H / stride) x ceil(W / stride)`` (exactly ``H / stride`` when divisible).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = [
    "BACKBONES",
    "BasicBlock",
    "Bottleneck",
    "CheckpointMismatchError",
    "FEATURE_STRIDES",
    "ResNet",
    "build_backbone",
    "load_pretrained",
    "resnet18",
    "resnet34",
    "resnet50",
]

logger = logging.getLogger(__name__)

#: Names of the feature maps returned by ``forward_features`` and their strides (pixels).
FEATURE_STRIDES: dict[str, int] = {"c2": 4, "c3": 8, "c4": 16, "c5": 32}


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's keys or shapes do not match the model (strict loading)."""


def _conv3x3(inplanes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(inplanes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34); output width ``planes``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand, residual (ResNet-50); output ``4 * planes``."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet trunk with torchvision parameter names.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: number of blocks in ``layer1..layer4``.
        num_classes: if given, add ``avgpool`` + ``fc`` (``forward_logits``); ``None`` for a pure backbone.
        zero_init_residual: initialise the last BN of each residual branch to zero (identity-like blocks).
        name: architecture name used in messages (``"resnet50"``...).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        num_classes: int | None = None,
        zero_init_residual: bool = False,
        name: str = "resnet",
    ):
        super().__init__()
        self.name = name
        self._inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0], stride=1)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        #: Channels of each feature map returned by ``forward_features``.
        self.out_channels: dict[str, int] = {
            f"c{i + 2}": width * block.expansion for i, width in enumerate((64, 128, 256, 512))
        }
        self.strides: dict[str, int] = dict(FEATURE_STRIDES)
        self.num_classes = num_classes
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512 * block.expansion, num_classes)
        self._init_weights(zero_init_residual)

    @property
    def has_classifier(self) -> bool:
        """Whether the model has the ``fc`` classifier."""
        return self.num_classes is not None

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self._inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        modules = [block(self._inplanes, planes, stride, downsample)]
        self._inplanes = planes * block.expansion
        modules.extend(block(self._inplanes, planes) for _ in range(1, blocks))
        return nn.Sequential(*modules)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Multi-scale features.

        Args:
            x: ``(B, 3, H, W)`` image batch (ImageNet-normalised RGB for torchvision weights).

        Returns:
            ``{"c2": (B, C2, H/4, W/4), "c3": (B, C3, H/8, W/8), "c4": (B, C4, H/16, W/16),
            "c5": (B, C5, H/32, W/32)}``; channels in ``self.out_channels`` (module docstring table).
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return {"c2": c2, "c3": c3, "c4": c4, "c5": c5}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Same as :meth:`forward_features` (a backbone returns features)."""
        return self.forward_features(x)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier output ``(B, num_classes)``; only for models built with ``num_classes``."""
        if not self.has_classifier:
            raise RuntimeError(f"{self.name} was built without a classifier (num_classes=None)")
        c5 = self.forward_features(x)["c5"]
        return self.fc(torch.flatten(self.avgpool(c5), 1))


def _read_state_dict(checkpoint: str | os.PathLike | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(checkpoint, (str, os.PathLike)):
        source = os.fspath(checkpoint)
        if not os.path.isfile(source):
            raise FileNotFoundError(f"pretrained weights not found: {source}")
        state = torch.load(source, map_location="cpu", weights_only=True)
    else:
        source, state = "<state dict>", checkpoint
    if not isinstance(state, Mapping):
        raise CheckpointMismatchError(f"{source}: expected a state dict, got {type(state).__name__}")
    # A training checkpoint may wrap the weights; accept exactly one documented wrapper key.
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    return dict(state), source


def load_pretrained(model: ResNet, checkpoint: str | os.PathLike | Mapping[str, Any]) -> list[str]:
    """Load torchvision-format weights into ``model`` with strict key and shape checking.

    The only tolerated difference: when ``model`` has no classifier, the checkpoint's ``fc.*`` entries are
    dropped (and the dropped keys are logged and returned). BatchNorm ``num_batches_tracked`` buffers absent
    from older torchvision files are filled in by PyTorch. Everything else (missing, unexpected or
    differently shaped entries) raises :class:`CheckpointMismatchError` listing the offending keys.

    Args:
        model: the ResNet to fill.
        checkpoint: path to a ``.pth`` file (plain state dict, or a dict with a ``"state_dict"`` entry) or a
            state dict.

    Returns:
        The checkpoint keys that were ignored (``fc.*`` for classifier-free models, else empty).

    Raises:
        FileNotFoundError: no such file.
        CheckpointMismatchError: keys or shapes differ.
    """
    state, source = _read_state_dict(checkpoint)
    ignored: list[str] = []
    if not model.has_classifier:
        ignored = sorted(k for k in state if k.startswith("fc."))
        for k in ignored:
            del state[k]
        if ignored:
            logger.info("%s: ignoring %s (the %s backbone has no classifier)", source, ignored, model.name)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in state
        if k in expected and tuple(getattr(state[k], "shape", ())) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:

        def _listing(title: str, items: list[str]) -> str:
            shown = ", ".join(items[:10]) + (f", ... (+{len(items) - 10})" if len(items) > 10 else "")
            return f"\n  {len(items)} {title}: {shown}" if items else ""

        raise CheckpointMismatchError(
            f"{source} does not match {model.name} (strict loading; only fc.* may be ignored, and only for a "
            f"model without classifier):"
            + _listing("missing keys", missing)
            + _listing("unexpected keys", unexpected)
            + _listing("shape mismatches", mismatched)
        )
    model.load_state_dict(state, strict=True)
    return ignored


_SPECS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def _build(name: str, pretrained: str | os.PathLike | None, num_classes: int | None) -> ResNet:
    block, layers = _SPECS[name]
    model = ResNet(block, layers, num_classes=num_classes, name=name)
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model


def resnet18(pretrained: str | os.PathLike | None = None, num_classes: int | None = None) -> ResNet:
    """ResNet-18 (BasicBlock, 2-2-2-2); features 64/128/256/512 channels. See :func:`build_backbone`."""
    return _build("resnet18", pretrained, num_classes)


def resnet34(pretrained: str | os.PathLike | None = None, num_classes: int | None = None) -> ResNet:
    """ResNet-34 (BasicBlock, 3-4-6-3); features 64/128/256/512 channels. See :func:`build_backbone`."""
    return _build("resnet34", pretrained, num_classes)


def resnet50(pretrained: str | os.PathLike | None = None, num_classes: int | None = None) -> ResNet:
    """ResNet-50 (Bottleneck, 3-4-6-3); features 256/512/1024/2048 channels. See :func:`build_backbone`."""
    return _build("resnet50", pretrained, num_classes)


#: Backbone factories by name.
BACKBONES = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}


def build_backbone(
    name: str, pretrained: str | os.PathLike | None = None, num_classes: int | None = None
) -> ResNet:
    """Build a backbone by name.

    Args:
        name: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        pretrained: optional path to torchvision-format weights (e.g. the ImageNet ``.pth`` files), loaded
            strictly by :func:`load_pretrained`; nothing is downloaded.
        num_classes: add the ``fc`` classifier with this many outputs (1000 to keep ImageNet's head).

    Returns:
        The model; ``model.out_channels`` / ``model.strides`` describe ``forward_features``.

    Raises:
        KeyError: unknown name.
    """
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; available: {sorted(BACKBONES)}")
    return BACKBONES[name](pretrained=pretrained, num_classes=num_classes)
