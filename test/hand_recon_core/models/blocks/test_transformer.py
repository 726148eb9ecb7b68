"""Tests of hand_recon_core.models.blocks.transformer (equivalence with torch's layer, equivariance)."""

from __future__ import annotations

import torch
from torch import nn

from hand_recon_core.models.blocks.transformer import TransformerEncoder, TransformerEncoderLayer


def _copy_into_torch_layer(ours: TransformerEncoderLayer, ref: nn.TransformerEncoderLayer) -> None:
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(ours.attn.qkv.weight)
        ref.self_attn.in_proj_bias.copy_(ours.attn.qkv.bias)
        ref.self_attn.out_proj.weight.copy_(ours.attn.proj.weight)
        ref.self_attn.out_proj.bias.copy_(ours.attn.proj.bias)
        ref.linear1.load_state_dict(ours.mlp[0].state_dict())
        ref.linear2.load_state_dict(ours.mlp[3].state_dict())
        ref.norm1.load_state_dict(ours.norm1.state_dict())
        ref.norm2.load_state_dict(ours.norm2.state_dict())


def test_layer_matches_torch_pre_norm_encoder_layer():
    torch.manual_seed(0)
    ours = TransformerEncoderLayer(32, num_heads=4, mlp_ratio=2.0).eval()
    with torch.no_grad():
        for p in (ours.norm1.weight, ours.norm2.weight, ours.norm1.bias, ours.norm2.bias):
            p.normal_()
    ref = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, activation="gelu", batch_first=True,
                                     norm_first=True).eval()
    _copy_into_torch_layer(ours, ref)
    x = torch.randn(3, 42, 32)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5)


def test_encoder_is_permutation_equivariant_and_keeps_shape():
    torch.manual_seed(1)
    enc = TransformerEncoder(16, num_layers=2, num_heads=2).eval()
    x = torch.randn(2, 10, 16)
    perm = torch.randperm(10)
    with torch.no_grad():
        y = enc(x)
        assert y.shape == x.shape
        assert torch.allclose(enc(x[:, perm]), y[:, perm], atol=1e-5)


def test_every_token_attends_to_every_other_in_one_layer():
    torch.manual_seed(2)
    enc = TransformerEncoder(8, num_layers=1, num_heads=2).eval()
    x0 = torch.randn(1, 6, 8)
    x = x0.clone()
    x[0, 0] += torch.randn(8)  # not a constant shift, which the LayerNorm would remove
    with torch.no_grad():
        diff = (enc(x) - enc(x0))[0].abs().sum(-1)
    assert bool((diff > 1e-6).all())
