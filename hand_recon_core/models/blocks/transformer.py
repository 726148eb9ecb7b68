"""A small pre-norm transformer encoder over tokens (plain matmuls, so it exports cleanly to ONNX).

Each layer (pre-norm, as in ViT / GPT-2; Xiong et al. 2020 "On Layer Normalization in the Transformer
Architecture")::

    x = x + Dropout(MHA(LN_1(x)))            multi-head scaled dot-product self-attention
    x = x + Dropout(MLP(LN_2(x)))            Linear(C, r C) -> GELU -> Linear(r C, C)

It computes exactly what ``torch.nn.TransformerEncoderLayer(d_model=C, nhead=H, dim_feedforward=r C,
activation="gelu", batch_first=True, norm_first=True)`` computes (the tests copy the weights across and compare),
but written with explicit matmuls and without the fused fast paths, so the traced graph is the same in training
and inference and the ONNX export holds only MatMul / Softmax / LayerNormalization-style nodes.

Token shapes are ``(B, N, C)`` (batch, tokens, channels). There is no positional encoding here; callers add
their own (DIR adds one learned embedding per joint token).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MultiHeadSelfAttention", "TransformerEncoderLayer", "TransformerEncoder"]


class MultiHeadSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention.

    Args:
        dim: token channels ``C`` (divisible by ``num_heads``).
        num_heads: heads ``H``.
        dropout: dropout on the attention weights.

    Shapes:
        ``forward(x)``: ``(B, N, C) -> (B, N, C)``.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, N, D)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim)), dim=-1)
        out = self.attn_drop(attn) @ v  # (B, H, N, D)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class TransformerEncoderLayer(nn.Module):
    """One pre-norm encoder layer (module docstring).

    Args:
        dim: token channels ``C``.
        num_heads: attention heads.
        mlp_ratio: hidden width of the MLP as a multiple of ``C``.
        dropout: dropout on the attention weights and on both residual branches.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerEncoderLayer` followed by a final LayerNorm.

    Args:
        dim: token channels ``C``.
        num_layers: number of layers (0 gives just the final LayerNorm).
        num_heads: attention heads per layer.
        mlp_ratio: MLP width multiple.
        dropout: dropout (see :class:`TransformerEncoderLayer`).

    Shapes:
        ``forward(x)``: ``(B, N, C) -> (B, N, C)``.
    """

    def __init__(self, dim: int, num_layers: int, num_heads: int, mlp_ratio: float = 2.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerEncoderLayer(dim, num_heads, mlp_ratio, dropout)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)
