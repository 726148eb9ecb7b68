"""hand_recon_core.models (see the package docstring).

Subpackages:
    backbones  ResNet-18/34/50 with torchvision-compatible state-dict keys; ``build_backbone(name, pretrained)``.
"""
