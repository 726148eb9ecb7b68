"""Shared network blocks (graph convolutions, graph pooling, attention ...); import the submodules directly.

Kept empty on purpose: each block module is imported by name (e.g. ``hand_recon_core.models.blocks.chebyshev``)
so that one method's blocks never import another's.
"""
