"""Losses shared by several methods (pure torch, batched, differentiable).

Modules:
    keypoints    2D re-projection error, 2D bone-direction error, global-local keypoint consistency, heatmap
                 soft-argmax, root-relative 3D joint error.
    priors       anatomical joint angles of a pose, joint-angle interval (limit) prior, shape prior.
    photometric  per-hand crops, crop intrinsics, soft rendering of shaded hands, masked photometric error.
"""
