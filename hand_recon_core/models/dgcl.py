"""HandDGCL: two-hand mesh reconstruction with a Chebyshev GCN decoder trained by disturbing graph contrastive learning.

Reference (THE SPEC): Han, Yao, Wang, Chang, Ban, "HandDGCL: Two-hand 3D reconstruction based Disturbing Graph
Contrastive Learning" (2023), ``shared/papers/handdgcl_two_hand_disturbing_graph_contrastive.txt``. Section and
equation numbers below refer to it.

Pipeline (Fig. 2, Sec. 3.1)::

    crop (B, 3, S, S) ──ResNet-50──> c5 (B, C5, S/32, S/32)
        ──HandSplit (learned positional embedding + one query per hand)──> f_right, f_left (B, 2, 2 d)
        ──two independent MLPs──> graph features G (B, 2, N_c, F_0) on the coarsest mesh level
        ──shared Chebyshev GCN, coarse to fine (Sec. 4.1)──> G_k (B, 2, N_out, F_k)         [Eq. 2]
        ──up-sample layer (per-node xyz + learnable V x N_out matrix)──> vertices (B, 2, V, 3)
    training only (DGCLNet, Sec. 3.2-3.3):
        G ──graph U-Net F_gen──> G^ (Eq. 1) ──same GCN──> G^_k;  S = G_k . G^_k^T (Eq. 3)
        G^ ──linear MLP──> J_k (Eq. 4), the pose subtask;  feature-pose pool (MoCo queue) for Eq. 5-6

At inference only the encoder + decoder path runs: :meth:`DGCLModel.inference_module` returns
:class:`DGCLInferenceNet`, which holds no DGCLNet parameter (Sec. 3.1: "DGCLNet are removed except the inside GCN
during evaluation"); :func:`export_onnx` exports it.

Outputs and frames. The network sees a square crop of side ``S`` around both hands (:meth:`DGCLMethod.encode_targets`).
Per hand (slot 0 = right, 1 = left) it predicts

* root-relative vertices in units of the hand's wrist-to-middle-MCP length ("aligned with a root joint and scaled
  by a length parameter", Sec. 3.4): the pose, supervised by the 3D losses;
* that length ``l`` in metres (supervised through the bone-length loss: "it can ... learn the scale of the
  hands", Sec. 3.4);
* a weak-perspective camera ``(s, tx, ty)`` of the crop (``x_n = s (X + tx)``, :mod:`hand_recon_core.geometry
  .cameras`), supervised by the 2D joint loss ("the absolute position ... and the camera parameter ... are learned
  by 2D hand joints loss", Sec. 3.4).

Joints are regressed from the vertices with the hand layer's ``J_regressor`` plus its fingertip vertices, in the
canonical ``mano21`` order; the root is the wrist (joint 0). Both hands share the decoder: the left hand is
decoded in mirrored space (``x -> -x``, a right hand) and mirrored back, so one GCN serves both hands and the
contrastive pool holds one kind of hand (the left mesh is the mirror image of the right one, vertex for vertex).
:func:`crop_to_camera` maps crop outputs to the full image's camera frame (metres) and pixels.

Losses (Sec. 3.4, Eq. 7-13; weights of Sec. 4.1: lambda_1 = lambda_2 = 10, lambda_3 = lambda_4 = 1e-3,
lambda_5 = lambda_6 = 1, lambda_7 = 1e-2)::

    L = 10 L_3d_joints + 10 L_3d_verts + 1e-3 L_2d_joints                    main (Eq. 8), L1
      + 1e-3 L_length + 1 L_consistent + 1 L_transition                      auxiliary (Eq. 9, 10)
      + 1e-2 (L_cross_contrast + L_self_contrast)                            contrastive (Eq. 11-13)

Units (the paper does not state them; chosen so the paper's weights balance): 3D joint/vertex and consistency
losses in normalised units (1 = the hand's wrist-to-middle-MCP length), 2D in pixels of the paper's 256-pixel
crop (crop pixels x 256 / S, so the weight means the same for every ``input_size``), bone lengths in
millimetres, the transition loss in units of :data:`HAND_BONE_LENGTH_M` (0.095 m). Sign convention: Eq. 11 writes
``-lambda_7 (L_cross + L_self)`` with Eq. 13 a log-probability; we minimise ``lambda_7 (L_cross + L_self)`` with
``L_self = -log softmax`` (InfoNCE) and ``L_cross = ||S_p - S_g||`` (a distance to minimise), the reading under
which both terms do what Sec. 3.3 describes.

Keypoint lifter (ours, ``keypoint_lifter: true``, off by default): trained from scratch on a CPU budget the
per-hand features never learn the global orientation (``training/results/RESULTS.md``). The option adds per-slot
2D keypoint heatmaps (42 channels at stride 4 from a c3/c4/c5 fusion and ``c2``, the single-stage detector's
layout, so ``keypoint_init`` can start them from a trained detector; focal loss ``w_keypoints`` on every valid
in-crop joint) and the keypoint lifter of :mod:`hand_recon_core.models.heads.keypoint_lifter`, whose output (zero
at initialisation) is added to each hand's split feature ``f_h`` before the graph MLPs and camera heads. Each
slot's keypoints are read in a window around the centroid of its hand-split attention, which the option also
supervises (``w_attention``: cross-entropy of the attention against the distribution of the hand's valid
keypoints over the ``c5`` cells). The GCN decoder and DGCLNet are unchanged, so the Table 2 ablation still
isolates DGCLNet.

Ablation switches (Table 2): ``use_dgcl=False`` is the GCN baseline (main + length + transition losses only);
``use_dgcl=True, similarity_distinguish=False`` is "GCN + DGCLNet"; the default adds the similarity-distinguish
cross contrast, "GCN + DGCLNet* (Ours)"; ``disturbance="mask"|"noise"|"edge"|"flip"`` are the explicit graph
disturbances (EGD, Sec. 3.2 (a)-(d)) in place of the graph U-Net.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hand_recon_core.data.augment import affine_intrinsics, hands_box, warp_sample
from hand_recon_core.data.sample import LEFT, META_KEYS, NUM_JOINTS, RIGHT
from hand_recon_core.geometry.cameras import normalized_to_pixels, weak_perspective_project
from hand_recon_core.hand_model.joint_orders import bone_pairs
from hand_recon_core.metrics.position_errors import HAND_BONE_LENGTH_M, MIDDLE_MCP_INDEX, WRIST_INDEX
from hand_recon_core.models.blocks.chebyshev import ChebResBlock
from hand_recon_core.models.blocks.graph_unet import GraphUNet
from hand_recon_core.models.blocks.mesh_graph import (
    MeshHierarchy,
    build_mesh_hierarchy,
    interpolation_matrix,
    to_dense_tensor,
)
from hand_recon_core.models.heads.center import center_focal_loss
from hand_recon_core.models.heads.keypoint_lifter import (
    attention_centres,
    lift_slot_keypoints,
    load_detector_keypoints,
    slot_keypoint_heatmaps,
    slot_keypoint_modules,
)
from hand_recon_core.models.registry import register_method

__all__ = [
    "PAPER_LOSS_WEIGHTS",
    "PAPER_QUEUE_SIZE",
    "PAPER_INPUT_SIZE",
    "DISTURBANCES",
    "HAND_SLOTS",
    "scaled_laplacian_torch",
    "crop_to_camera",
    "crop_pixels_to_image",
    "info_nce",
    "similarity_distinguish_loss",
    "HandSplit",
    "ChebDecoder",
    "UpsampleHead",
    "DGCLInferenceNet",
    "FeaturePoseQueue",
    "DGCLNet",
    "DGCLModel",
    "DGCLMethod",
    "export_onnx",
]

#: Loss weights of Sec. 4.1 (lambda_1 .. lambda_7 of Eq. 8, 9, 11).
PAPER_LOSS_WEIGHTS: dict[str, float] = {
    "joints_3d": 10.0,  # lambda_1
    "verts_3d": 10.0,  # lambda_2
    "joints_2d": 1e-3,  # lambda_3
    "length": 1e-3,  # lambda_4
    "consistency": 1.0,  # lambda_5
    "transition": 1.0,  # lambda_6
    "contrast": 1e-2,  # lambda_7
}
#: "The MoCo-like dictionary is implemented by a queue of 2048" (Sec. 4.1).
PAPER_QUEUE_SIZE = 2048
#: "We take input image of 256 x 256" (Sec. 4.1).
PAPER_INPUT_SIZE = 256
#: Graph disturbances: the DGCLNet generator (graph U-Net) and the four explicit ones of Sec. 3.2 / Table 2.
DISTURBANCES = ("unet", "mask", "noise", "edge", "flip")
#: Output slot of each handedness: slot 0 holds the right hand, slot 1 the left hand.
HAND_SLOTS: tuple[int, int] = (RIGHT, LEFT)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
#: Initial weak-perspective scale (1/metres): a ~0.2 m wide crop spans [-1, 1]. Only an initialisation.
_INIT_CAM_SCALE = 10.0


# ================================================================================================ pure functions
def scaled_laplacian_torch(adj: torch.Tensor) -> torch.Tensor:
    """``L~ = 2 L_n / lambda_max - I`` of a dense adjacency, in torch (for graphs perturbed on the fly).

    Same definition as :func:`hand_recon_core.models.blocks.mesh_graph.scaled_laplacian` (exact ``lambda_max``).

    Args:
        adj: ``(N, N)`` symmetric non-negative adjacency without self-loops.

    Returns:
        ``(N, N)`` scaled Laplacian, same dtype/device.
    """
    n = adj.shape[-1]
    eye = torch.eye(n, dtype=adj.dtype, device=adj.device)
    deg = adj.sum(-1)
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=1e-12).rsqrt(), torch.zeros_like(deg))
    lap = eye - inv_sqrt[:, None] * adj * inv_sqrt[None, :]
    lmax = torch.linalg.eigvalsh(lap.double())[-1].to(adj.dtype).clamp(min=1e-6)
    return 2.0 * lap / lmax - eye


def crop_to_camera(points_rel: torch.Tensor, cam: torch.Tensor, crop_K: torch.Tensor, crop_size: float,
                   crop_rot: torch.Tensor | None = None) -> torch.Tensor:
    """Place both hands' root-relative crop predictions in the original image's camera frame.

    The translation comes from DIR's :func:`hand_recon_core.models.dir.crop_result_to_camera` (reused, the two
    refiners share the crop conventions) with the crop's own intrinsics and the crop centre ``(S/2, S/2)``:
    ``Tz = (fx + fy) / (s S)``, ``Tx = tx + (S/2 - cx) Tz / fx``, likewise y (each hand from its own camera). A
    crop warp may rotate the camera about its optical axis (``X_crop = Q X``,
    :func:`hand_recon_core.data.augment.affine_intrinsics`); ``crop_rot = Q`` undoes it.

    Args:
        points_rel: ``(..., 2, P, 3)`` root-relative points of the right and left hand, metres, crop-camera
            orientation.
        cam: ``(..., 2, 3)`` weak-perspective cameras ``(s, tx, ty)`` (``s`` in 1/metres, ``t`` in metres).
        crop_K: ``(..., 3, 3)`` intrinsics of the crop image, crop pixels.
        crop_size: crop side ``S``, pixels.
        crop_rot: optional ``(..., 3, 3)`` rotation ``Q`` of the crop camera relative to the original camera.

    Returns:
        ``(..., 2, P, 3)`` points in the original camera frame (x right, y down, z forward), metres.
    """
    from hand_recon_core.models.dir import crop_result_to_camera

    centre = torch.full((*cam.shape[:-2], 2), 0.5 * float(crop_size), dtype=cam.dtype, device=cam.device)
    points = crop_result_to_camera(cam, points_rel, centre, float(crop_size), crop_K.to(cam.dtype))
    if crop_rot is not None:
        points = torch.matmul(points, crop_rot.to(points.dtype)[..., None, :, :])  # rows: X^T Q = (Q^T X)^T
    return points


def crop_pixels_to_image(uv: np.ndarray, crop_matrix: np.ndarray) -> np.ndarray:
    """Map crop pixels back to the original image through the inverse of the crop's affine map.

    Args:
        uv: ``(..., 2)`` crop pixel coordinates.
        crop_matrix: ``(2, 3)`` map ``u_crop = A u + b`` from original to crop pixels.

    Returns:
        ``(..., 2)`` float64 original-image pixels.
    """
    m = np.asarray(crop_matrix, dtype=np.float64)
    a_inv = np.linalg.inv(m[:, :2])
    return (np.asarray(uv, dtype=np.float64) - m[:, 2]) @ a_inv.T


def info_nce(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor | None,
             temperature: float) -> torch.Tensor:
    """Self-contrast loss (Eq. 3 and 13): ``-log softmax`` of each query's similarity to its own positive.

    ``S = q . p^T`` over the batch (every other row's positive is a negative, Eq. 3), extended by the queue's
    keys as extra negatives (the MoCo dictionary of Sec. 3.4).

    Args:
        query: ``(M, D)`` L2-normalised embeddings ``G_k``.
        positive: ``(M, D)`` L2-normalised embeddings ``G^_k`` (row ``i`` is the positive of query ``i``).
        negatives: optional ``(Q, D)`` L2-normalised queue keys.
        temperature: ``tau``.

    Returns:
        Scalar mean loss (0 for ``M = 0``).
    """
    if query.shape[0] == 0:
        return query.sum() * 0.0
    logits = query @ positive.T
    if negatives is not None and negatives.shape[0] > 0:
        logits = torch.cat([logits, query @ negatives.T], dim=1)
    target = torch.arange(query.shape[0], device=query.device)
    return F.cross_entropy(logits / temperature, target)


def similarity_distinguish_loss(query: torch.Tensor, query_pose: torch.Tensor, pool: torch.Tensor,
                                pool_pose: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cross-pose contrast with similarity distinguish (Sec. 3.3, Eq. 5, 6, 12).

    ``S_p = G_m . G_n^T`` (features, Eq. 5) is pulled to ``S_g = J_m . J_n^T`` (poses, Eq. 6), a continuous
    target in ``[0, 1]`` (negative pose cosines are clipped to 0) instead of discrete positive / negative labels.
    ``L = ||S_p - S_g||_2``, taken as the root-mean-square over the pairs so the loss does not grow with the
    pool size.

    Args:
        query: ``(M, D)`` L2-normalised feature embeddings.
        query_pose: ``(M, P)`` L2-normalised pose vectors.
        pool: ``(K, D)`` L2-normalised feature embeddings of the pool.
        pool_pose: ``(K, P)`` L2-normalised pose vectors of the pool.
        eps: inside the square root (finite gradient at 0).

    Returns:
        Scalar loss (0 when either side is empty).
    """
    if query.shape[0] == 0 or pool.shape[0] == 0:
        return query.sum() * 0.0
    s_p = query @ pool.T
    s_g = (query_pose @ pool_pose.T).clamp(0.0, 1.0)
    return torch.sqrt(((s_p - s_g) ** 2).mean() + eps)


def _masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the entries where ``mask`` (broadcast over the trailing coordinate axis) is 1."""
    m = mask[..., None].to(pred.dtype).expand_as(pred)
    return ((pred - target).abs() * m).sum() / m.sum().clamp(min=1.0)


# ================================================================================================ network
class HandSplit(nn.Module):
    """Split the image feature into a right-hand and a left-hand feature "via positional embedding" (Fig. 2).

    ``t = conv1x1(c5) + P`` (``P`` a learned positional embedding over the feature map), then one learned query
    per hand attends over the ``H' W'`` positions (scaled dot product, softmax over positions); each hand's
    feature is its attention-pooled vector concatenated with the global mean of ``t``.

    Args:
        in_channels: channels of the backbone feature.
        dim: token width ``d``.
        feature_size: ``(H', W')`` of the feature map at the configured input size (the embedding is
            bilinearly resized for other sizes).

    Shapes: ``(B, C5, H', W') -> (B, 2, 2 d)``, slot 0 right, slot 1 left.
    """

    def __init__(self, in_channels: int, dim: int, feature_size: tuple[int, int]) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, 1)
        self.pos = nn.Parameter(torch.randn(1, dim, *feature_size) * 0.02)
        self.query = nn.Parameter(torch.randn(len(HAND_SLOTS), dim) / math.sqrt(dim))
        self.dim = int(dim)

    def forward(self, feat: torch.Tensor, return_attention: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Args: ``feat (B, C5, H', W')``. Returns ``(B, 2, 2 d)`` (and, with ``return_attention``, each hand's
        attention over the positions ``(B, 2, H', W')``, summing to 1)."""
        pos = self.pos
        if tuple(pos.shape[-2:]) != tuple(feat.shape[-2:]):
            pos = F.interpolate(pos, size=tuple(feat.shape[-2:]), mode="bilinear", align_corners=False)
        tokens = (self.proj(feat) + pos).flatten(2).transpose(1, 2)  # (B, H'W', d)
        attn = torch.softmax(torch.matmul(tokens, self.query.T) / math.sqrt(self.dim), dim=1)  # (B, H'W', 2)
        pooled = torch.matmul(attn.transpose(1, 2), tokens)  # (B, 2, d)
        mean = tokens.mean(dim=1, keepdim=True).expand(-1, pooled.shape[1], -1)
        out = torch.cat([pooled, mean], dim=-1)
        if return_attention:
            return out, attn.transpose(1, 2).reshape(feat.shape[0], -1, *feat.shape[-2:])
        return out


class ChebDecoder(nn.Module):
    """The shared GCN of Eq. 2: Chebyshev residual blocks from the coarsest mesh level up to ``out_level``.

    Level ``coarsest`` holds the graph features ``G``; between blocks the features are copied to the next finer
    level (``up`` matrices of the :class:`~hand_recon_core.models.blocks.mesh_graph.MeshHierarchy`).

    Args:
        hierarchy: mesh hierarchy of the hand model.
        coarsest: level of the input graph features.
        in_channels: ``F_0``.
        channels: output width of each block; block ``i`` runs on level ``coarsest - i``.
        order: Chebyshev order ``K``.

    Shapes: ``(M, N_coarsest, F_0) -> (M, N_out, channels[-1])``.
    """

    def __init__(self, hierarchy: MeshHierarchy, coarsest: int, in_channels: int, channels: Sequence[int],
                 order: int) -> None:
        super().__init__()
        self.levels = [coarsest - i for i in range(len(channels))]
        if self.levels[-1] < 0 or coarsest >= hierarchy.num_levels:
            raise ValueError(f"{len(channels)} decoder blocks from level {coarsest} do not fit a hierarchy of "
                             f"{hierarchy.num_levels} levels")
        for i, level in enumerate(self.levels):
            self.register_buffer(f"lap{i}", to_dense_tensor(hierarchy.scaled_laplacian(level)), persistent=False)
            if i > 0:
                up = hierarchy.up_matrix(self.levels[i - 1], level)
                self.register_buffer(f"up{i}", to_dense_tensor(up), persistent=False)
        widths = [int(in_channels), *[int(c) for c in channels]]
        self.blocks = nn.ModuleList([ChebResBlock(widths[i], widths[i + 1], order) for i in range(len(channels))])

    @property
    def out_level(self) -> int:
        """Mesh level of the output features."""
        return self.levels[-1]

    def forward(self, x: torch.Tensor, first_laplacian: torch.Tensor | None = None) -> torch.Tensor:
        """Decode graph features.

        Args:
            x: ``(M, N_coarsest, F_0)`` graph features.
            first_laplacian: optional ``(N_coarsest, N_coarsest)`` scaled Laplacian replacing the coarsest
                level's in the first block (the explicit edge disturbances of Sec. 3.2 (c), (d)).

        Returns:
            ``(M, N_out, F_k)`` features ``G_k``.
        """
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = torch.matmul(getattr(self, f"up{i}"), x)
            lap = first_laplacian if (i == 0 and first_laplacian is not None) else getattr(self, f"lap{i}")
            x = block(x, lap)
        return x


class UpsampleHead(nn.Module):
    """The up-sample layer of Fig. 2: per-node xyz, then a ``(V, N_out)`` matrix to the full vertex set.

    The matrix starts as inverse-distance interpolation from the ``N_out`` coarse nodes (rows sum to 1) and is
    learnable unless ``learnable=False``.

    Args:
        in_channels: ``F_k``.
        interpolation: ``(V, N_out)`` initial up-sampling matrix.
        learnable: train the matrix.

    Shapes: ``(M, N_out, F_k) -> (M, V, 3)`` (normalised units).
    """

    def __init__(self, in_channels: int, interpolation: torch.Tensor, learnable: bool = True) -> None:
        super().__init__()
        self.to_xyz = nn.Linear(in_channels, 3)
        if learnable:
            self.upsample = nn.Parameter(interpolation.clone())
        else:
            self.register_buffer("upsample", interpolation.clone())

    def forward(self, g_k: torch.Tensor) -> torch.Tensor:
        """Args: ``g_k (M, N_out, F_k)``. Returns ``(M, V, 3)``."""
        return torch.matmul(self.upsample, self.to_xyz(g_k))


class DGCLInferenceNet(nn.Module):
    """Encoder + GCN decoder: everything HandDGCL runs at inference (no DGCLNet parameter).

    Args:
        backbone: a ResNet from :func:`hand_recon_core.models.backbones.build_backbone`.
        hierarchy: mesh hierarchy of the hand model (:func:`build_mesh_hierarchy`).
        regressors: ``(2, 16, V)`` joint regressors (slot order right, left).
        tip_ids: ``(2, 5)`` fingertip vertex ids (thumb, index, middle, ring, pinky).
        input_size: crop side ``S``, pixels.
        feature_dim: token width ``d`` of :class:`HandSplit`.
        mlp_hidden: hidden width of the per-hand MLPs.
        graph_channels: ``F_0``, channels of ``G``.
        coarsest_level: mesh level of ``G``.
        gcn_channels: widths of the decoder blocks (one level each, coarse to fine).
        cheb_order: Chebyshev ``K``.
        upsample_k: neighbours of the initial up-sampling interpolation.
        learn_upsample: learnable up-sampling matrix.
        keypoint_lifter, keypoint_channels, keypoint_hidden: the keypoint heatmaps + lifter (module docstring)
            and their widths.

    ``forward(pixels)`` returns the tuple exported to ONNX (see :meth:`forward`).
    """

    def __init__(self, backbone: nn.Module, hierarchy: MeshHierarchy, regressors: torch.Tensor,
                 tip_ids: torch.Tensor, *, input_size: int, feature_dim: int, mlp_hidden: int, graph_channels: int,
                 coarsest_level: int, gcn_channels: Sequence[int], cheb_order: int, upsample_k: int,
                 learn_upsample: bool, keypoint_lifter: bool = False, keypoint_channels: int = 64,
                 keypoint_hidden: int = 32) -> None:
        super().__init__()
        self.input_size = int(input_size)
        self.backbone = backbone
        c5 = int(backbone.out_channels["c5"])
        fs = math.ceil(self.input_size / int(backbone.strides["c5"]))
        self.split = HandSplit(c5, feature_dim, (fs, fs))
        self.num_coarse = hierarchy.levels[coarsest_level].num_nodes
        self.graph_channels = int(graph_channels)
        hand_dim = 2 * int(feature_dim)
        self.graph_mlps = nn.ModuleList([
            nn.Sequential(nn.Linear(hand_dim, mlp_hidden), nn.ReLU(inplace=True),
                          nn.Linear(mlp_hidden, self.num_coarse * self.graph_channels))
            for _ in HAND_SLOTS])
        self.cam_heads = nn.ModuleList([nn.Linear(hand_dim, 4) for _ in HAND_SLOTS])
        for head in self.cam_heads:  # start at s = _INIT_CAM_SCALE, t = 0, l = HAND_BONE_LENGTH_M
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.keypoint_fusion, self.keypoint_head, self.lifter = (
            slot_keypoint_modules(backbone.out_channels, hand_dim, keypoint_channels, keypoint_hidden,
                                  len(HAND_SLOTS)) if keypoint_lifter else (None, None, None))
        self.gcn = ChebDecoder(hierarchy, coarsest_level, graph_channels, gcn_channels, cheb_order)
        out_level = self.gcn.out_level
        interp = interpolation_matrix(hierarchy.levels[0].positions, hierarchy.levels[out_level].positions,
                                      k=upsample_k)
        self.head = UpsampleHead(int(gcn_channels[-1]), torch.as_tensor(interp, dtype=torch.float32),
                                 learnable=learn_upsample)
        self.num_vertices = hierarchy.levels[0].num_nodes
        self.register_buffer("regressors", regressors.to(torch.float32).clone(), persistent=False)
        self.register_buffer("tip_ids", tip_ids.to(torch.int64).clone(), persistent=False)
        # x sign per slot: the left hand is decoded mirrored (module docstring).
        self.register_buffer("slot_signs", torch.tensor([[1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]]), persistent=False)
        self.register_buffer("pixel_mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------------------------------ pieces
    def encode(self, pixels: torch.Tensor, extras: dict[str, torch.Tensor] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Image to graph features and per-hand camera / length.

        Args:
            pixels: ``(B, 3, S, S)`` RGB in ``[0, 1]``.
            extras: with the keypoint lifter, receives ``keypoint_logits (B, 42, S/4, S/4)``, ``keypoints
                (B, 2, 21, 2)`` (crop pixels) and the hand split's ``attention (B, 2, H', W')``.

        Returns:
            ``G (B, 2, N_c, F_0)`` (decoder space: the left hand mirrored), ``cam (B, 2, 3)`` weak-perspective
            ``(s [1/m], tx [m], ty [m])`` and ``bone_length (B, 2)`` metres.
        """
        x = (pixels - self.pixel_mean) / self.pixel_std
        levels = self.backbone.forward_features(x)
        if self.keypoint_head is not None:
            feats, attention = self.split(levels["c5"], return_attention=True)  # (B, 2, 2d), (B, 2, H', W')
            logits = self.keypoint_head(self.keypoint_fusion(levels["c3"], levels["c4"], levels["c5"]), levels["c2"])
            correction, keypoints = lift_slot_keypoints(self.lifter, logits, self.input_size,
                                                        attention_centres(attention, self.input_size))
            feats = feats + correction.to(feats.dtype)
            if extras is not None:
                extras.update(keypoint_logits=logits, keypoints=keypoints, attention=attention)
        else:
            feats = self.split(levels["c5"])  # (B, 2, 2d)
        graphs = torch.stack([mlp(feats[:, h]) for h, mlp in enumerate(self.graph_mlps)], dim=1)
        graphs = graphs.reshape(feats.shape[0], len(HAND_SLOTS), self.num_coarse, self.graph_channels)
        raw = torch.stack([head(feats[:, h]) for h, head in enumerate(self.cam_heads)], dim=1)  # (B, 2, 4)
        scale = _INIT_CAM_SCALE * torch.exp(raw[..., 0].clamp(-6.0, 6.0))
        cam = torch.stack([scale, 0.1 * raw[..., 1], 0.1 * raw[..., 2]], dim=-1)
        bone_length = HAND_BONE_LENGTH_M * torch.exp(raw[..., 3].clamp(-3.0, 3.0))
        return graphs, cam, bone_length

    def finish(self, verts_decoder: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder-space vertices to root-centred vertices and joints in the true (camera) orientation.

        Args:
            verts_decoder: ``(B, 2, V, 3)`` normalised vertices, decoder space.

        Returns:
            ``(vertices (B, 2, V, 3), joints (B, 2, 21, 3))``, normalised units, wrist at the origin.
        """
        verts = verts_decoder * self.slot_signs[None, :, None, :]
        kin = torch.matmul(self.regressors[None], verts)  # (B, 2, 16, 3)
        tips = torch.stack([verts[:, h].index_select(1, self.tip_ids[h]) for h in range(len(HAND_SLOTS))], dim=1)
        joints = torch.cat([kin, tips], dim=2)
        root = joints[:, :, WRIST_INDEX:WRIST_INDEX + 1]
        return verts - root, joints - root

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruct both hands of a crop.

        Args:
            pixels: ``(B, 3, S, S)`` float RGB in ``[0, 1]`` (ImageNet normalisation happens inside).

        Returns:
            ``vertices (B, 2, V, 3)`` and ``joints (B, 2, 21, 3)``: root-relative (wrist at 0), metres, crop-camera
            orientation, slot 0 right / 1 left, joints in ``mano21`` order; ``cam (B, 2, 3)`` weak-perspective
            camera of the crop; ``bone_length (B, 2)`` metres, the length parameter that scales the normalised
            outputs (the predicted wrist-to-middle-MCP length). Place them in the camera frame with
            :func:`crop_to_camera`.
        """
        graphs, cam, bone = self.encode(pixels)
        bsz = graphs.shape[0]
        g_k = self.gcn(graphs.reshape(bsz * len(HAND_SLOTS), self.num_coarse, self.graph_channels))
        verts_dec = self.head(g_k).reshape(bsz, len(HAND_SLOTS), self.num_vertices, 3)
        verts, joints = self.finish(verts_dec)
        scale = bone[..., None, None]
        return verts * scale, joints * scale, cam, bone


class FeaturePoseQueue(nn.Module):
    """The MoCo-like feature-pose dictionary (Sec. 3.3-3.4): a ring buffer of keys and their poses.

    Args:
        size: capacity ``Q`` (2048 in Sec. 4.1).
        key_dim: ``D``, length of a key.
        pose_dim: ``P``, length of a pose vector.

    Buffers (in the checkpoint, so a resumed run continues with the same dictionary): ``keys (Q, D)``,
    ``poses (Q, P)``, ``ptr`` (next write position) and ``count`` (filled entries, at most ``Q``).
    """

    def __init__(self, size: int, key_dim: int, pose_dim: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"queue size must be >= 1, got {size}")
        self.size = int(size)
        self.register_buffer("keys", torch.zeros(self.size, key_dim))
        self.register_buffer("poses", torch.zeros(self.size, pose_dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.int64))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def valid(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of the filled entries ``(keys (n, D), poses (n, P))`` (all of them once the queue has wrapped).

        Copies, so a later :meth:`enqueue` cannot modify tensors an autograd graph still holds."""
        n = int(self.count)
        return self.keys[:n].clone(), self.poses[:n].clone()

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, poses: torch.Tensor) -> None:
        """Write ``n`` entries at the pointer, wrapping around; the oldest entries are overwritten first.

        Args:
            keys: ``(n, D)``.
            poses: ``(n, P)``.
        """
        n = keys.shape[0]
        if n == 0:
            return
        if n > self.size:  # only the newest Q fit
            keys, poses, n = keys[-self.size:], poses[-self.size:], self.size
        idx = (int(self.ptr) + torch.arange(n, device=self.keys.device)) % self.size
        self.keys[idx] = keys.detach().to(self.keys.dtype)
        self.poses[idx] = poses.detach().to(self.poses.dtype)
        self.ptr.fill_((int(self.ptr) + n) % self.size)
        self.count.fill_(min(self.size, int(self.count) + n))


class DGCLNet(nn.Module):
    """The training-only disturbing graph contrastive network (Sec. 3.2-3.3).

    Args:
        gcn: the online shared GCN (:class:`ChebDecoder`); copied into the momentum key encoder.
        hierarchy: mesh hierarchy (coarsest-level adjacency for the U-Net / edge disturbances, pooling of
            ``G_k`` for the embeddings).
        coarsest_level: level of ``G``.
        graph_channels: ``F_0``.
        disturbance: one of :data:`DISTURBANCES`.
        unet_hidden: width of the graph U-Net.
        unet_pool_ratios: kept fraction per gPool level.
        queue_size: MoCo dictionary size.
        momentum: key-encoder momentum ``m`` (``theta_k <- m theta_k + (1 - m) theta_q``).
        temperature: ``tau`` of Eq. 13.
        similarity_distinguish: add the cross contrast of Sec. 3.3.
        mask_ratio, noise_std, edge_ratio: strengths of the explicit disturbances (a)-(d).

    Under ``DistributedDataParallel`` every process keeps its own queue (MoCo gathers the keys of all GPUs; not
    done here) while the key GCN stays identical across processes (it follows the synchronised online GCN).

    Attributes:
        generator: the graph U-Net ``F_gen`` (``disturbance="unet"`` only).
        pose_mlp: the linear MLP of Eq. 4 (``"unet"`` only).
        key_gcn: momentum copy of the GCN (no gradients).
        queue: :class:`FeaturePoseQueue`.
    """

    def __init__(self, gcn: ChebDecoder, hierarchy: MeshHierarchy, *, coarsest_level: int, graph_channels: int,
                 disturbance: str, unet_hidden: int, unet_pool_ratios: Sequence[float], queue_size: int,
                 momentum: float, temperature: float, similarity_distinguish: bool, mask_ratio: float,
                 noise_std: float, edge_ratio: float) -> None:
        super().__init__()
        if disturbance not in DISTURBANCES:
            raise ValueError(f"disturbance must be one of {DISTURBANCES}, got {disturbance!r}")
        self.disturbance = disturbance
        self.momentum = float(momentum)
        self.temperature = float(temperature)
        self.similarity_distinguish = bool(similarity_distinguish)
        self.mask_ratio, self.noise_std, self.edge_ratio = float(mask_ratio), float(noise_std), float(edge_ratio)
        num_coarse = hierarchy.levels[coarsest_level].num_nodes
        self.register_buffer("adjacency", to_dense_tensor(hierarchy.levels[coarsest_level].adjacency),
                             persistent=False)
        pool = hierarchy.down_matrix(gcn.out_level, coarsest_level)
        self.register_buffer("embed_pool", to_dense_tensor(pool), persistent=False)
        out_channels = gcn.blocks[-1].conv2.out_channels
        self.generator = None
        self.pose_mlp = None
        if disturbance == "unet":
            self.generator = GraphUNet(graph_channels, unet_hidden, graph_channels, pool_ratios=unet_pool_ratios)
            self.pose_mlp = nn.Linear(num_coarse * graph_channels, NUM_JOINTS * 3)
        self.key_gcn = copy.deepcopy(gcn)
        for p in self.key_gcn.parameters():
            p.requires_grad_(False)
        self.queue = FeaturePoseQueue(queue_size, num_coarse * out_channels, NUM_JOINTS * 3)

    # ------------------------------------------------------------------------------------------ pieces
    def embed(self, g_k: torch.Tensor) -> torch.Tensor:
        """``G_k (M, N_out, F_k)`` to L2-normalised embeddings ``(M, N_c F_k)``: mean-pooled to the coarsest level
        (keeps the 2048-entry queue small), flattened, normalised ("all G are normalized", Sec. 3.2)."""
        pooled = torch.matmul(self.embed_pool.to(g_k.dtype), g_k)
        return F.normalize(pooled.flatten(1), dim=1)

    @torch.no_grad()
    def momentum_update(self, online: nn.Module) -> None:
        """``theta_k <- m theta_k + (1 - m) theta_q`` for every parameter of the key GCN (MoCo [34])."""
        for pk, pq in zip(self.key_gcn.parameters(), online.parameters()):
            pk.mul_(self.momentum).add_(pq.detach(), alpha=1.0 - self.momentum)

    def disturb(self, graphs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Make the disturbed copy ``G^`` (Eq. 1) or an explicit disturbance (Sec. 3.2 (a)-(d)).

        Args:
            graphs: ``(M, N_c, F_0)`` graph features ``G``.

        Returns:
            ``(G^ (M, N_c, F_0), laplacian)``; ``laplacian`` is a perturbed ``(N_c, N_c)`` scaled Laplacian for the
            edge disturbances (the features are then unchanged), else None.
        """
        if self.disturbance == "unet":
            return self.generator(graphs, self.adjacency), None
        if self.disturbance == "mask":  # (a) random mask on the feature dimension
            keep = (torch.rand(graphs.shape[0], 1, graphs.shape[2], device=graphs.device) >= self.mask_ratio)
            return graphs * keep.to(graphs.dtype), None
        if self.disturbance == "noise":  # (b) random noise on the feature space
            scale = graphs.detach().std().clamp(min=1e-6)
            return graphs + self.noise_std * scale * torch.randn_like(graphs), None
        adj = self.adjacency
        n = adj.shape[0]
        num_edges = int(adj.sum().item()) // 2
        count = max(1, round(self.edge_ratio * num_edges))
        iu = torch.triu_indices(n, n, offset=1, device=adj.device)
        if self.disturbance == "edge":  # (c) add random edges
            candidates = (adj[iu[0], iu[1]] == 0).nonzero().flatten()
        else:  # (d) flip random node pairs: an edge is removed, a non-edge added
            candidates = torch.arange(iu.shape[1], device=adj.device)
        chosen = candidates[torch.randperm(len(candidates), device=adj.device)[:count]]
        new = adj.clone()
        r, c = iu[0, chosen], iu[1, chosen]
        new[r, c] = 1.0 - new[r, c]
        new[c, r] = new[r, c]
        return graphs, scaled_laplacian_torch(new)

    def forward(self, online_gcn: ChebDecoder, g_k: torch.Tensor, disturbed: torch.Tensor,
                disturbed_laplacian: torch.Tensor | None, g_hat_k: torch.Tensor, pose: torch.Tensor,
                pose_valid: torch.Tensor) -> dict[str, torch.Tensor]:
        """The DGCLNet loss terms of one training step; updates the key GCN and the queue.

        Args:
            online_gcn: the shared GCN (source of the momentum update).
            g_k: ``(M, N_out, F_k)`` ``GCN(G)`` of the hands taking part.
            disturbed: ``(M, N_c, F_0)`` ``G^``.
            disturbed_laplacian: the perturbed Laplacian of an edge disturbance, else None.
            g_hat_k: ``(M, N_out, F_k)`` ``GCN(G^)``.
            pose: ``(M, 21, 3)`` root-relative normalised ground-truth joints in decoder space (``J-bar_k``).
            pose_valid: ``(M, 21)`` 0/1 joint validity.

        Returns:
            ``{"self_contrast", "cross_contrast", "consistency"}`` scalar tensors (0 where not applicable), plus
            ``"pose_pred" (M, 21, 3)`` when the pose subtask exists.
        """
        zero = g_k.float().sum() * 0.0
        with torch.no_grad():
            self.momentum_update(online_gcn)
            keys = self.embed(self.key_gcn(disturbed.detach(), disturbed_laplacian))
        # similarities and soft-max in float32 even under autocast (tau = 0.07 amplifies rounding)
        with torch.autocast(device_type=g_k.device.type, enabled=False):
            q = self.embed(g_k.float())
            q_hat = self.embed(g_hat_k.float())
            keys = keys.float()
            queue_keys, queue_poses = self.queue.valid()
            out: dict[str, torch.Tensor] = {"self_contrast": info_nce(q, q_hat, queue_keys, self.temperature)}
            full = pose_valid.min(dim=1).values > 0  # poses with all 21 joints can enter the feature-pose pool
            pose_vec = F.normalize(pose.float().flatten(1), dim=1)
            if self.similarity_distinguish:
                pool = torch.cat([keys[full], queue_keys], dim=0)
                pool_pose = torch.cat([pose_vec[full], queue_poses], dim=0)
                out["cross_contrast"] = similarity_distinguish_loss(q[full], pose_vec[full], pool, pool_pose)
            else:
                out["cross_contrast"] = zero
        if self.pose_mlp is not None:
            pred = self.pose_mlp(disturbed.flatten(1)).reshape(-1, NUM_JOINTS, 3)
            out["consistency"] = _masked_l1(pred.float(), pose.float(), pose_valid)
            out["pose_pred"] = pred
        else:
            out["consistency"] = zero
        self.queue.enqueue(keys[full], pose_vec[full])
        return out


class DGCLModel(nn.Module):
    """The trainable HandDGCL model: :class:`DGCLInferenceNet` plus (when enabled) :class:`DGCLNet`.

    ``forward(batch)`` (batch of :meth:`DGCLMethod.collate`) returns a dict:
    ``vertices``/``joints`` ``(B, 2, V|21, 3)`` metres root-relative, ``vertices_norm``/``joints_norm`` the same in
    normalised units, ``cam (B, 2, 3)``, ``bone_length (B, 2)``, ``keypoints_crop (B, 2, 21, 2)`` weak-perspective
    crop pixels, and in training mode with DGCLNet ``dgcl`` (its loss terms). In eval mode only the
    inference path runs, so outputs equal :meth:`inference_module`'s.

    Args:
        net: the inference network.
        dgcl: the DGCLNet, or None for the GCN baseline.
    """

    def __init__(self, net: DGCLInferenceNet, dgcl: DGCLNet | None) -> None:
        super().__init__()
        self.net = net
        self.dgcl = dgcl

    def inference_module(self) -> DGCLInferenceNet:
        """The deployable encoder + decoder (shares parameters with this model; ``copy.deepcopy`` to detach)."""
        return self.net

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """See the class docstring."""
        net = self.net
        pixels = batch["pixels"]
        extras: dict[str, torch.Tensor] = {}
        graphs, cam, bone = net.encode(pixels, extras)
        bsz, slots = graphs.shape[:2]
        flat = graphs.reshape(bsz * slots, net.num_coarse, net.graph_channels)
        use_dgcl = self.training and self.dgcl is not None
        sel = None
        if use_dgcl:
            present = batch.get("dgcl_present")
            sel = (present.reshape(-1) > 0) if present is not None else torch.ones(bsz * slots, dtype=torch.bool,
                                                                                    device=flat.device)
            if not bool(sel.any()):
                use_dgcl = False
        dgcl_out = None
        if use_dgcl:
            chosen = flat[sel]
            disturbed, lap = self.dgcl.disturb(chosen)
            if lap is None:  # one pass of the shared GCN over G and G^ (Eq. 2)
                both = net.gcn(torch.cat([flat, disturbed], dim=0))
                g_k, g_hat_k = both[: flat.shape[0]], both[flat.shape[0]:]
            else:
                g_k = net.gcn(flat)
                g_hat_k = net.gcn(disturbed, lap)
            pose, pose_valid = _decoder_space_pose(batch, sel, net.slot_signs)
            dgcl_out = self.dgcl(net.gcn, g_k[sel], disturbed, lap, g_hat_k, pose, pose_valid)
        else:
            g_k = net.gcn(flat)
        verts_dec = net.head(g_k).reshape(bsz, slots, net.num_vertices, 3)
        verts_n, joints_n = net.finish(verts_dec)
        scale = bone[..., None, None]
        joints_m = joints_n * scale
        kp_crop = normalized_to_pixels(weak_perspective_project(joints_m, cam), float(net.input_size))
        out = {"vertices": verts_n * scale, "joints": joints_m, "vertices_norm": verts_n, "joints_norm": joints_n,
               "cam": cam, "bone_length": bone, "keypoints_crop": kp_crop}
        if dgcl_out is not None:
            out["dgcl"] = dgcl_out
        out.update(extras)
        return out


def _attention_loss(attention: torch.Tensor, keypoints: torch.Tensor, valid: torch.Tensor, size: float
                    ) -> torch.Tensor:
    """Cross-entropy of each hand's split attention against where its valid keypoints are.

    Args:
        attention: ``(B, 2, h, w)`` attention over the cells (sums to 1 per hand).
        keypoints: ``(B, 2, 21, 2)`` crop pixels; valid: ``(B, 2, 21)`` weights (0 for missing hands / joints).
        size: crop side, pixels (the cells tile it).

    Returns:
        Mean over the hands with a valid keypoint of ``-sum_cells p_kp log attention``, ``p_kp`` the fraction of
        the hand's valid keypoints in each cell.
    """
    h, w = attention.shape[-2:]
    cx = (keypoints[..., 0] * (w / size)).floor().clamp(0, w - 1).long()
    cy = (keypoints[..., 1] * (h / size)).floor().clamp(0, h - 1).long()
    target = torch.zeros(*attention.shape[:2], h * w, device=attention.device)
    target.scatter_add_(2, cy * w + cx, valid)
    count = target.sum(-1)
    target = target / count.clamp_min(1.0)[..., None]
    ce = -(target * torch.log(attention.float().flatten(2).clamp_min(1e-8))).sum(-1)  # (B, 2)
    has = (count > 0).float()
    return (ce * has).sum() / has.sum().clamp_min(1.0)


def _decoder_space_pose(batch: Mapping[str, Any], sel: torch.Tensor, signs: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth normalised root-relative joints of the selected hands, left hands mirrored (decoder space)."""
    joints = batch.get("dgcl_joints_rel")
    valid = batch.get("dgcl_j3d_valid")
    if joints is None or valid is None:
        n = int(sel.sum())
        return torch.zeros(n, NUM_JOINTS, 3, device=sel.device), torch.zeros(n, NUM_JOINTS, device=sel.device)
    joints = (joints * signs[None, :, None, :]).reshape(-1, NUM_JOINTS, 3)
    return joints[sel], valid.reshape(-1, NUM_JOINTS)[sel]


# ================================================================================================ method
def _similarity_matrix(scale: float, angle: float, centre_in: Sequence[float], centre_out: Sequence[float]
                       ) -> np.ndarray:
    """(2, 3) map ``u' = scale R(angle) (u - centre_in) + centre_out``."""
    cos, sin = math.cos(angle), math.sin(angle)
    a = scale * np.array([[cos, -sin], [sin, cos]])
    b = np.asarray(centre_out, np.float64) - a @ np.asarray(centre_in, np.float64)
    return np.hstack([a, b[:, None]])


_VERTEX_COUNTS: dict[str, int] = {}


def _vertex_count(hand_model_id: str) -> int:
    if hand_model_id not in _VERTEX_COUNTS:
        from hand_recon_core.hand_model.loader import load_hand_model_data

        _VERTEX_COUNTS[hand_model_id] = int(np.asarray(load_hand_model_data(hand_model_id, "right").v_template)
                                            .shape[0])
    return _VERTEX_COUNTS[hand_model_id]


_PER_SLOT_KEYS = ("dgcl_present", "dgcl_joints_rel", "dgcl_j3d_valid", "dgcl_verts_rel", "dgcl_verts_valid",
                  "dgcl_kp2d", "dgcl_j2d_valid", "dgcl_bone", "dgcl_root")
_CROP_KEYS = ("dgcl_crop_matrix", "dgcl_crop_rot")


@register_method("dgcl")
class DGCLMethod:
    """HandDGCL as a registered method (``method.name: dgcl``); see the module docstring.

    Args:
        use_dgcl: train with DGCLNet (False: the GCN baseline of Table 2).
        similarity_distinguish: add the cross contrast of Sec. 3.3 (Table 2, "*").
        disturbance: ``"unet"`` (DGCLNet, Eq. 1) or an explicit disturbance ``"mask"``, ``"noise"``, ``"edge"``,
            ``"flip"`` (Sec. 3.2 (a)-(d), Table 2 rows 2-5).
        input_size: crop side ``S``, pixels (256, Sec. 4.1).
        crop_margin: crop side / longer side of the box around both hands' keypoints.
        crop_jitter: training jitter of the crop: relative scale and shift up to this fraction (0: none).
        crop_rotation_deg: training in-plane rotation of the crop up to this many degrees (0: none).
        backbone: backbone name when the config's ``backbone.name`` is null (ResNet-50, Sec. 4.1).
        feature_dim: token width of the hand split.
        mlp_hidden: hidden width of the per-hand MLPs.
        graph_channels: ``F_0`` of the graph features.
        coarsest_level: mesh level of the graph features (each level about halves the vertex count).
        gcn_channels: decoder block widths, coarse to fine (one mesh level each).
        cheb_order: Chebyshev order ``K``.
        upsample_k: neighbours of the initial up-sampling interpolation.
        learn_upsample: learnable up-sampling matrix.
        unet_hidden: width of the graph U-Net.
        unet_pool_ratios: kept fraction per gPool level.
        queue_size: feature-pose dictionary size (2048, Sec. 4.1).
        momentum: key-encoder momentum (the paper gives none; MoCo's 0.999).
        temperature: ``tau`` of Eq. 13 (the paper gives none; MoCo's 0.07).
        mask_ratio: feature-mask probability of disturbance (a).
        noise_std: noise level of disturbance (b), relative to the features' standard deviation.
        edge_ratio: edges added / flipped by disturbances (c) / (d), relative to the coarse graph's edge count.
        w_joints_3d, w_verts_3d, w_joints_2d, w_length, w_consistency, w_transition, w_contrast: loss weights
            lambda_1 .. lambda_7 (defaults: Sec. 4.1).
        keypoint_lifter: keypoint heatmaps + lifter into the hand features (ours, module docstring);
            ``w_keypoints`` weights the heatmaps' focal loss; ``keypoint_channels`` / ``keypoint_hidden`` their
            widths; ``keypoint_init`` a single-stage checkpoint whose keypoint branch initialises them (training
            only); ``w_attention`` supervises the hand-split attention the keypoints are read around.
    """

    def __init__(self, use_dgcl: bool = True, similarity_distinguish: bool = True, disturbance: str = "unet",
                 input_size: int = PAPER_INPUT_SIZE, crop_margin: float = 1.3, crop_jitter: float = 0.0,
                 crop_rotation_deg: float = 0.0, backbone: str = "resnet50", feature_dim: int = 512,
                 mlp_hidden: int = 512, graph_channels: int = 256, coarsest_level: int = 4,
                 gcn_channels: Sequence[int] = (128, 64, 32), cheb_order: int = 3, upsample_k: int = 3,
                 learn_upsample: bool = True, unet_hidden: int = 128, unet_pool_ratios: Sequence[float] = (0.8, 0.6),
                 queue_size: int = PAPER_QUEUE_SIZE, momentum: float = 0.999, temperature: float = 0.07,
                 mask_ratio: float = 0.2, noise_std: float = 0.1, edge_ratio: float = 0.1,
                 w_joints_3d: float = PAPER_LOSS_WEIGHTS["joints_3d"],
                 w_verts_3d: float = PAPER_LOSS_WEIGHTS["verts_3d"],
                 w_joints_2d: float = PAPER_LOSS_WEIGHTS["joints_2d"], w_length: float = PAPER_LOSS_WEIGHTS["length"],
                 w_consistency: float = PAPER_LOSS_WEIGHTS["consistency"],
                 w_transition: float = PAPER_LOSS_WEIGHTS["transition"],
                 w_contrast: float = PAPER_LOSS_WEIGHTS["contrast"], keypoint_lifter: bool = False,
                 w_keypoints: float = 1.0, keypoint_channels: int = 64, keypoint_hidden: int = 32,
                 keypoint_init: str | None = None, w_attention: float = 1.0) -> None:
        if disturbance not in DISTURBANCES:
            raise ValueError(f"disturbance must be one of {DISTURBANCES}, got {disturbance!r}")
        if input_size < 32 or int(input_size) % 32:
            raise ValueError(f"input_size must be a positive multiple of 32, got {input_size}")
        if not gcn_channels:
            raise ValueError("gcn_channels needs at least one block")
        if not 0.0 < float(momentum) < 1.0 or float(temperature) <= 0.0:
            raise ValueError("momentum must be in (0, 1) and temperature > 0")
        if crop_margin < 1.0 or crop_jitter < 0.0 or crop_rotation_deg < 0.0:
            raise ValueError("crop_margin must be >= 1 and crop_jitter / crop_rotation_deg >= 0")
        self.use_dgcl = bool(use_dgcl)
        self.similarity_distinguish = bool(similarity_distinguish)
        self.disturbance = disturbance
        self.input_size = int(input_size)
        self.crop_margin, self.crop_jitter = float(crop_margin), float(crop_jitter)
        self.crop_rotation_deg = float(crop_rotation_deg)
        self.backbone = str(backbone)
        self.arch = {"feature_dim": int(feature_dim), "mlp_hidden": int(mlp_hidden),
                     "graph_channels": int(graph_channels), "coarsest_level": int(coarsest_level),
                     "gcn_channels": [int(c) for c in gcn_channels], "cheb_order": int(cheb_order),
                     "upsample_k": int(upsample_k), "learn_upsample": bool(learn_upsample),
                     "keypoint_lifter": bool(keypoint_lifter), "keypoint_channels": int(keypoint_channels),
                     "keypoint_hidden": int(keypoint_hidden)}
        if keypoint_init and not keypoint_lifter:
            raise ValueError("keypoint_init needs keypoint_lifter: true")
        self.keypoint_init = keypoint_init
        self.dgcl_args = {"disturbance": disturbance, "unet_hidden": int(unet_hidden),
                          "unet_pool_ratios": [float(r) for r in unet_pool_ratios], "queue_size": int(queue_size),
                          "momentum": float(momentum), "temperature": float(temperature),
                          "similarity_distinguish": self.similarity_distinguish, "mask_ratio": float(mask_ratio),
                          "noise_std": float(noise_std), "edge_ratio": float(edge_ratio)}
        self.weights = {"joints_3d": float(w_joints_3d), "verts_3d": float(w_verts_3d),
                        "joints_2d": float(w_joints_2d), "length": float(w_length),
                        "consistency": float(w_consistency), "transition": float(w_transition),
                        "contrast": float(w_contrast)}
        self.w_keypoints = float(w_keypoints)
        self.w_attention = float(w_attention)
        self.num_vertices: int | None = None

    # ------------------------------------------------------------------------------------------ build
    def build(self, cfg: Any, hand_model_id: str) -> DGCLModel:
        """The network for ``hand_model_id`` (graph matrices from its right-hand mesh; see the module docstring).

        Args:
            cfg: the experiment config (``cfg.backbone.name`` overrides ``backbone``; ``cfg.backbone.pretrained``
                names ImageNet weights, Sec. 4.1).
            hand_model_id: ``"open"``, ``"mano"`` or a path (as accepted by
                :func:`~hand_recon_core.hand_model.loader.load_hand_model`).

        Returns:
            :class:`DGCLModel`.
        """
        from hand_recon_core.hand_model.loader import load_hand_model
        from hand_recon_core.models.backbones import build_backbone

        layers = {side: load_hand_model(hand_model_id, side=side, flat_hand_mean=True) for side in ("right", "left")}
        right, left = layers["right"], layers["left"]
        bb_cfg = getattr(cfg, "backbone", None)
        name = getattr(bb_cfg, "name", None) or self.backbone
        pretrained = getattr(bb_cfg, "pretrained", None)
        backbone = build_backbone(name, pretrained=pretrained)
        hierarchy = build_mesh_hierarchy(right.faces, right.v_template, self.arch["coarsest_level"])
        regressors = torch.stack([right.J_regressor.float(), left.J_regressor.float()])
        tips = torch.stack([right.tip_vertex_ids, left.tip_vertex_ids])
        net = DGCLInferenceNet(backbone, hierarchy, regressors, tips, input_size=self.input_size, **self.arch)
        if self.keypoint_init:
            load_detector_keypoints(net.keypoint_fusion, net.keypoint_head, self.keypoint_init)
        dgcl = None
        if self.use_dgcl:
            dgcl = DGCLNet(net.gcn, hierarchy, coarsest_level=self.arch["coarsest_level"],
                           graph_channels=self.arch["graph_channels"], **self.dgcl_args)
        self.num_vertices = net.num_vertices
        return DGCLModel(net, dgcl)

    # ------------------------------------------------------------------------------------------ data
    def encode_targets(self, sample: dict[str, Any], train: bool = False) -> dict[str, Any]:
        """Crop both hands to ``S x S`` and encode the per-slot targets (slot 0 right, 1 left).

        The crop is a square of side ``crop_margin`` times the longer side of the box around every hand's valid
        keypoints (the whole image, letterboxed, without hands), warped with
        :func:`hand_recon_core.data.augment.warp_sample` (labels stay exact; a rotation turns the camera frame).
        The first right and the first left hand of the sample fill the two slots; a missing side has
        ``dgcl_present = 0``. Training randomness (``crop_jitter``, ``crop_rotation_deg``; only with
        ``train=True``) uses ``numpy.random``, which the engine seeds per sample.

        Args:
            sample: a sample (:mod:`hand_recon_core.data.sample` format).

        Returns:
            The cropped sample (dense maps dropped) plus ``dgcl_*`` arrays: ``present (2,)``, ``joints_rel
            (2, 21, 3)`` (``(J - J_wrist) / l``, normalised), ``j3d_valid (2, 21)``, ``verts_rel (2, V, 3)``,
            ``verts_valid (2,)``, ``kp2d (2, 21, 2)`` crop pixels, ``j2d_valid (2, 21)``, ``bone (2,)`` ``l`` in
            metres, ``root (2, 3)`` wrist in the crop camera frame (metres), ``crop_matrix (2, 3)`` (original ->
            crop pixels), ``crop_rot (3, 3)`` (``X_crop = Q X``). All float32.
        """
        size = self.input_size
        height, width = sample["image"].shape[:2]
        box = hands_box(sample)
        if box is None:
            side = float(max(height, width))
            centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
        else:
            side = max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0) * self.crop_margin
            centre = np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0])
        angle = 0.0
        if train and self.crop_jitter > 0:
            j = self.crop_jitter
            side *= float(np.exp(np.random.uniform(-j, j)))  # noqa: NPY002 - seeded per sample by the engine
            centre = centre + np.random.uniform(-j, j, size=2) * side  # noqa: NPY002
        if train and self.crop_rotation_deg > 0:
            angle = math.radians(np.random.uniform(-self.crop_rotation_deg, self.crop_rotation_deg))  # noqa: NPY002
        matrix = _similarity_matrix(size / side, angle, centre, ((size - 1) / 2.0, (size - 1) / 2.0))
        _, rot = affine_intrinsics(sample["K"], matrix)
        crop = warp_sample(sample, matrix, (size, size), drop_outside=False)
        for key in ("mask", "part_seg", "depth"):
            crop.pop(key, None)

        n_verts = self.num_vertices or _vertex_count(str(sample["hand_model_id"]))
        out = _empty_slots(n_verts)
        handedness = np.asarray(crop["handedness"])
        verts = crop.get("vertices_3d")
        for slot, code in enumerate(HAND_SLOTS):
            idx = np.flatnonzero(handedness == code)
            if len(idx) == 0:
                continue
            i = int(idx[0])
            out["dgcl_present"][slot] = 1.0
            valid = np.asarray(crop["joint_valid"][i], np.float32)
            out["dgcl_kp2d"][slot] = crop["keypoints_2d"][i]
            out["dgcl_j2d_valid"][slot] = valid
            if not bool(crop["has_3d"][i]) or valid[WRIST_INDEX] <= 0 or valid[MIDDLE_MCP_INDEX] <= 0:
                continue
            joints = np.asarray(crop["joints_3d"][i], np.float64)
            root = joints[WRIST_INDEX]
            bone = float(np.linalg.norm(joints[MIDDLE_MCP_INDEX] - root))
            if bone < 1e-4:
                continue
            out["dgcl_bone"][slot] = bone
            out["dgcl_root"][slot] = root
            out["dgcl_joints_rel"][slot] = (joints - root) / bone * valid[:, None]
            out["dgcl_j3d_valid"][slot] = valid
            if verts is not None and verts.shape[1] == n_verts:
                out["dgcl_verts_rel"][slot] = (np.asarray(verts[i], np.float64) - root) / bone
                out["dgcl_verts_valid"][slot] = 1.0
        out = {k: v.astype(np.float32) for k, v in out.items()}
        if self.arch["keypoint_lifter"]:  # every valid joint inside the crop, occluded ones included
            out["dgcl_kp_hm"] = slot_keypoint_heatmaps(out["dgcl_kp2d"], out["dgcl_j2d_valid"] > 0, size)
        crop.update(out)
        crop["dgcl_crop_matrix"] = matrix.astype(np.float32)
        crop["dgcl_crop_rot"] = rot.astype(np.float32)
        return crop

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Stack encoded samples.

        Returns:
            ``image (B, S, S, 3)`` uint8 crops, ``pixels (B, 3, S, S)`` float in ``[0, 1]``, ``K (B, 3, 3)`` crop
            intrinsics, every ``dgcl_*`` array stacked ``(B, ...)``, ``num_hands (B,)`` and the meta lists
            (``dataset``, ``sample_id``, ``hand_model_id``).
        """
        if not samples:
            raise ValueError("collate needs at least one sample")
        image = torch.from_numpy(np.stack([s["image"] for s in samples]))
        batch: dict[str, Any] = {
            "image": image,
            "pixels": image.permute(0, 3, 1, 2).float().div(255.0),
            "K": torch.from_numpy(np.stack([np.asarray(s["K"], np.float32) for s in samples])),
            "num_hands": torch.tensor([len(s["handedness"]) for s in samples], dtype=torch.int64),
        }
        for key in (*_PER_SLOT_KEYS, *_CROP_KEYS):
            batch[key] = torch.from_numpy(np.stack([s[key] for s in samples]))
        if all("dgcl_kp_hm" in s for s in samples):
            batch["dgcl_kp_hm"] = torch.from_numpy(np.stack([s["dgcl_kp_hm"] for s in samples]))
        for key in META_KEYS:
            batch[key] = [s[key] for s in samples]
        return batch

    # ------------------------------------------------------------------------------------------ loss
    def loss(self, model_out: Mapping[str, Any], batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """Eq. 7-13 with the weights of Sec. 4.1 (units: module docstring).

        Returns:
            ``(total, parts)``; parts hold the unweighted terms ``joints_3d``, ``verts_3d``, ``joints_2d``,
            ``length`` (mm), ``transition`` and, with DGCLNet, ``consistency``, ``self_contrast``,
            ``cross_contrast``.
        """
        w = self.weights
        present = batch["dgcl_present"].float()
        j3d_valid = batch["dgcl_j3d_valid"].float()
        joints_n = model_out["joints_norm"].float()
        verts_n = model_out["vertices_norm"].float()
        parts: dict[str, torch.Tensor] = {}
        parts["joints_3d"] = _masked_l1(joints_n, batch["dgcl_joints_rel"].float(), j3d_valid)
        verts_mask = batch["dgcl_verts_valid"].float()[..., None].expand(verts_n.shape[:3])
        parts["verts_3d"] = _masked_l1(verts_n, batch["dgcl_verts_rel"].float(), verts_mask)
        j2d_valid = batch["dgcl_j2d_valid"].float() * present[..., None]
        px = PAPER_INPUT_SIZE / float(self.input_size)  # pixels of a 256-pixel crop (module docstring)
        parts["joints_2d"] = px * _masked_l1(model_out["keypoints_crop"].float(), batch["dgcl_kp2d"].float(),
                                             j2d_valid)
        parts["length"] = self._length_loss(model_out, batch)
        parts["transition"] = self._transition_loss(model_out, batch)
        total = (w["joints_3d"] * parts["joints_3d"] + w["verts_3d"] * parts["verts_3d"]
                 + w["joints_2d"] * parts["joints_2d"] + w["length"] * parts["length"]
                 + w["transition"] * parts["transition"])
        if "keypoint_logits" in model_out:
            parts["keypoints"] = center_focal_loss(model_out["keypoint_logits"], batch["dgcl_kp_hm"])
            total = total + self.w_keypoints * parts["keypoints"]
        if "attention" in model_out and self.w_attention > 0:
            parts["attention"] = _attention_loss(model_out["attention"], batch["dgcl_kp2d"].float(),
                                                 batch["dgcl_j2d_valid"].float() * present[..., None],
                                                 float(self.input_size))
            total = total + self.w_attention * parts["attention"]
        dgcl = model_out.get("dgcl")
        if dgcl is not None:
            for key in ("consistency", "self_contrast", "cross_contrast"):
                parts[key] = dgcl[key].float()
            total = total + w["consistency"] * parts["consistency"] + w["contrast"] * (
                parts["self_contrast"] + parts["cross_contrast"])
        return total, {k: v.detach() for k, v in parts.items()}

    @staticmethod
    def _length_loss(model_out: Mapping[str, Any], batch: Mapping[str, Any]) -> torch.Tensor:
        """L1 between predicted and true bone lengths (20 bones of ``mano21``), millimetres (Sec. 3.4)."""
        pairs = torch.as_tensor(bone_pairs("mano21"), device=model_out["joints"].device)
        pred = model_out["joints"].float()
        gt = batch["dgcl_joints_rel"].float() * batch["dgcl_bone"].float()[..., None, None]
        valid = batch["dgcl_j3d_valid"].float()
        mask = valid[..., pairs[:, 0]] * valid[..., pairs[:, 1]]
        length_pred = (pred[..., pairs[:, 1], :] - pred[..., pairs[:, 0], :]).norm(dim=-1)
        length_gt = (gt[..., pairs[:, 1], :] - gt[..., pairs[:, 0], :]).norm(dim=-1)
        return ((length_pred - length_gt).abs() * mask).sum() * 1000.0 / mask.sum().clamp(min=1.0)

    def _transition_loss(self, model_out: Mapping[str, Any], batch: Mapping[str, Any]) -> torch.Tensor:
        """Relative left-minus-right position of every vertex pair ``i`` (joints without vertices), L1, in units
        of :data:`HAND_BONE_LENGTH_M` (Sec. 3.4, "the relative translation of each pair of vertices from left and
        right hand"). Positions are in the crop camera frame: root-relative prediction plus the root translation
        of its weak-perspective camera (:func:`crop_to_camera` without the rotation)."""
        size = float(self.input_size)
        crop_k = batch["K"].float()
        cam = model_out["cam"].float()
        bone = batch["dgcl_bone"].float()[..., None, None]
        root = batch["dgcl_root"].float()[:, :, None, :]
        has3d = batch["dgcl_j3d_valid"].float()[..., WRIST_INDEX]
        vert_ok = batch["dgcl_verts_valid"].float()
        pair_v = vert_ok[:, 0] * vert_ok[:, 1]
        pair_j = has3d[:, 0] * has3d[:, 1] * (1.0 - pair_v)
        loss = cam.sum() * 0.0
        total_w = 0.0
        for key, gt_key, pair, joint_mask in (("vertices", "dgcl_verts_rel", pair_v, None),
                                              ("joints", "dgcl_joints_rel", pair_j, batch["dgcl_j3d_valid"])):
            if float(pair.sum()) <= 0:
                continue
            pred = crop_to_camera(model_out[key].float(), cam, crop_k, size)
            gt = batch[gt_key].float() * bone + root
            diff = (pred[:, 1] - pred[:, 0]) - (gt[:, 1] - gt[:, 0])  # (B, P, 3)
            mask = pair[:, None].expand(diff.shape[:2])
            if joint_mask is not None:
                mask = mask * joint_mask[:, 0].float() * joint_mask[:, 1].float()
            count = float(mask.sum())
            loss = loss + _masked_l1(diff, torch.zeros_like(diff), mask) * count
            total_w += count
        if total_w <= 0:
            return loss
        return loss / total_w / HAND_BONE_LENGTH_M

    # ------------------------------------------------------------------------------------------ predict
    def predict(self, model_out: Mapping[str, Any], batch: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Both hands of every image in the original camera frame and pixels.

        Returns:
            Per image: ``handedness (2,) = [RIGHT, LEFT]``, ``score (2,) = 1``, ``vertices_3d (2, V, 3)`` and
            ``joints_3d (2, 21, 3)`` metres in the original camera frame (:func:`crop_to_camera`),
            ``keypoints_2d (2, 21, 2)`` original-image pixels (the weak-perspective crop projection mapped back
            through the crop's affine map), ``bbox (2, 4)`` xyxy pixels of the projected vertices.
        """
        size = float(self.input_size)
        cam = model_out["cam"].detach().float()
        crop_k = batch["K"].float()
        rot = batch["dgcl_crop_rot"].float()
        verts = crop_to_camera(model_out["vertices"].detach().float(), cam, crop_k, size, rot)
        joints = crop_to_camera(model_out["joints"].detach().float(), cam, crop_k, size, rot)
        uv_v = normalized_to_pixels(weak_perspective_project(model_out["vertices"].detach().float(), cam), size)
        uv_j = model_out["keypoints_crop"].detach().float()
        verts, joints = verts.cpu().numpy(), joints.cpu().numpy()
        uv_v, uv_j = uv_v.cpu().numpy(), uv_j.cpu().numpy()
        matrices = batch["dgcl_crop_matrix"].detach().cpu().numpy()
        preds = []
        for b in range(verts.shape[0]):
            kp = crop_pixels_to_image(uv_j[b], matrices[b])
            vp = crop_pixels_to_image(uv_v[b], matrices[b])
            bbox = np.concatenate([vp.min(axis=1), vp.max(axis=1)], axis=1)
            preds.append({
                "handedness": np.asarray(HAND_SLOTS, dtype=np.int64),
                "score": np.ones(len(HAND_SLOTS), dtype=np.float32),
                "bbox": bbox.astype(np.float32),
                "keypoints_2d": kp.astype(np.float32),
                "joints_3d": joints[b].astype(np.float32),
                "vertices_3d": verts[b].astype(np.float32),
            })
        return preds


def _empty_slots(num_vertices: int) -> dict[str, np.ndarray]:
    s = len(HAND_SLOTS)
    return {
        "dgcl_present": np.zeros(s), "dgcl_joints_rel": np.zeros((s, NUM_JOINTS, 3)),
        "dgcl_j3d_valid": np.zeros((s, NUM_JOINTS)), "dgcl_verts_rel": np.zeros((s, num_vertices, 3)),
        "dgcl_verts_valid": np.zeros(s), "dgcl_kp2d": np.zeros((s, NUM_JOINTS, 2)),
        "dgcl_j2d_valid": np.zeros((s, NUM_JOINTS)), "dgcl_bone": np.zeros(s), "dgcl_root": np.zeros((s, 3)),
    }


# ================================================================================================ export
def export_onnx(module: nn.Module, path: str | Path, input_size: int | None = None, opset: int = 17,
                batch_size: int = 1) -> Path:
    """Export the inference network (never the DGCLNet) to ONNX with a dynamic batch axis.

    Args:
        module: a :class:`DGCLInferenceNet`, or a :class:`DGCLModel` (its :meth:`~DGCLModel.inference_module` is
            exported).
        path: output ``.onnx`` file.
        input_size: crop side (default: the module's).
        opset: ONNX opset.
        batch_size: batch of the example input used for tracing.

    Returns:
        The written path. Graph: input ``pixels (B, 3, S, S)`` float RGB in ``[0, 1]``; outputs ``vertices``,
        ``joints``, ``cam``, ``bone_length`` as in :meth:`DGCLInferenceNet.forward`.
    """
    net = module.inference_module() if isinstance(module, DGCLModel) else module
    if not isinstance(net, DGCLInferenceNet):
        raise TypeError(f"export_onnx needs a DGCLInferenceNet or DGCLModel, got {type(module).__name__}")
    size = int(input_size or net.input_size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = net.training
    net.eval()
    example = torch.rand(batch_size, 3, size, size, device=next(net.parameters()).device)
    names = ["vertices", "joints", "cam", "bone_length"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(net, (example,), str(path), dynamo=False, opset_version=opset,
                              input_names=["pixels"], output_names=names,
                              dynamic_axes={"pixels": {0: "batch"}, **{n: {0: "batch"} for n in names}})
    finally:
        net.train(was_training)
    return path
