"""DIR: the Decoupled Iterative Refinement two-hand refiner (Ren et al., CVPR 2023; ``shared/papers/dir_*.txt``).

The refiner takes a square crop around an interacting pair of hands and returns both hands' meshes. Section and
equation numbers below refer to the paper.

Architecture (:class:`DIRNet`)
------------------------------
* **Encoder** (Sec. 3.1): a ResNet (ResNet-50 in the paper; ResNet-18/34 for the lite variant) gives the
  multi-scale maps ``F_0..F_3 = c2..c5`` (strides 4, 8, 16, 32; ``N = 4``).
* **Initial estimate** (Sec. 3.1, Eq. 1-2): per hand ``h`` an attention map ``A_h = Sigmoid(Conv_h(F_3))``
  (1x1 convolution) and the global feature ``G_h = AvgPool(A_h * F_3)``; per-hand FC layers regress the hand
  parameters ``theta_h`` and the weak-perspective camera ``P_h``; the relative offset ``O`` comes from
  ``AvgPool(F_3)`` and an FC layer.
* **Refinement stage t** (Sec. 3.2, ``T`` stages, default 2, 1-3 supported):

  1. *Fusion* (3.2.1): the previous decoder map and the encoder skip ``F_{N-t-2}`` (c4, c3, c2 for t = 0, 1,
     2) are brought to the decoding resolution ``R = min(32, S / 8)`` ("we limit the resolution of feature maps to
     a maximum of 32x32": bilinear upsampling, needed only in the first stage, and average-pool downsampling of
     larger encoder maps; Fig. 2), concatenated and fused by a 1x1 convolution (+BN, ReLU).
  2. *Joint features* (3.2.1): the 2 x 21 joints of the previous estimate are projected with each hand's
     weak-perspective camera and ``J^visual`` is bilinearly sampled there (:func:`sample_joint_features`);
     ``J^coord`` is an FC layer on the joint coordinates (3D with the left hand moved by ``O`` into the right
     hand's root frame, plus the 2D projection); ``J = J^coord + J^visual``.
  3. *Spatial relationships* (3.2.2): a semantic GCN over each hand's skeleton
     (:class:`~hand_recon_core.models.blocks.joint_graph.JointGCN`, ref. [60]; one set of weights for both
     hands) and a transformer over all ``2J = 42`` joint tokens of both hands, with a learned embedding per token
     (:class:`~hand_recon_core.models.blocks.transformer.TransformerEncoder`, ref. [61]), give the enhanced
     joint features ``J~``.
  4. *Multi-plane feature projection* (3.2.3, MFP): each of the 2J joint features is splatted into its own
     plane at its projected location (:func:`splat_weights`), the ``2J x C`` planes form ``M``, which is
     concatenated with the fused map and convolved (3x3 convolutions) into the stage's decoder map.
     :class:`MultiPlaneProjection` computes the 1x1 convolution of ``M`` in factorised form (a per-joint linear
     map, then a weighted sum over the planes), which equals the convolution of the explicit
     ``(2J C, R, R)`` map without materialising it. ``projection="single_plane"`` is the SFP ablation (Table 1,
     ID 6): all joints share one plane.
  5. *Updates*: per-hand MLPs on ``J~`` (and the current parameters) add residuals to ``theta_h`` and ``P_h``,
     an MLP on both hands' ``J~`` to ``O``; an auxiliary 1x1 head on the decoder map predicts the two-hand
     segmentation and the dense correspondence map (Sec. 3.3, "Pixel-wise Loss").

Parameters, frames and units
----------------------------
* Hand parameters ``theta_h`` (per hand, 106 numbers): 16 rotations in the 6D representation (Zhou et al.
  2019; global orientation then the 15 finger joints in MANO native order) and 10 shape coefficients of the
  configured hand model. The paper's ``theta in R^62`` is not broken down in the text; we use 6D rotations (a
  continuous representation suited to additive refinement) instead of axis-angle.
* Weak-perspective camera ``P_h = (s, tx, ty)`` in the convention of :mod:`hand_recon_core.geometry.cameras`:
  ``x_n = s (X + tx)``, ``y_n = s (Y + ty)`` for wrist-relative points ``X`` (metres) in normalised crop
  coordinates ``x_n = 2 u / S - 1`` (``u`` crop pixels). Internally the network regresses
  ``(log(s / init_scale), x_root, y_root)`` (:func:`decode_camera`).
* Meshes and joints are **wrist-relative**, in the orientation of the crop's camera frame (x right, y down,
  z forward), metres, for each hand's own model (right / left layer of ``hand_model_id``); joints in the
  ``mano21`` order.
* Relative offset ``O = wrist_left - wrist_right`` (metres, crop camera frame), Eq. 5.
* Two hand slots: slot ``RIGHT`` (0) and slot ``LEFT`` (1) of :mod:`hand_recon_core.data.sample`.
* :func:`crop_result_to_camera` places the wrist-relative outputs in a full image's camera frame from the crop
  box and ``K`` (depth from the weak-perspective scale, ``tz = (fx + fy) / (s * crop_size)``); with the
  predicted ``O`` the pair keeps its predicted relative placement.

Losses (:meth:`DIRMethod.loss`, per refinement stage, Sec. 3.3)
----------------------------------------------------------------
``L_joint`` (Eq. 3: wrist-relative 3D joints in millimetres + 2D joints in input pixels), ``L_mesh`` (Eq. 4: the
same for the vertices), the normal and edge-length consistency terms (named in Sec. 3.3, as in IntagHand [24]
and [48]), ``L_offset`` (Eq. 5, millimetres) with the smooth L1 loss of [15] (``beta`` = 1 mm / 1 px), and
the pixel-wise MSE on the two-hand segmentation (right / left visible masks) and the dense correspondence map.
The list of per-stage losses has length ``T`` (the sum over ``i = 0..T-1`` of Eq. 3-5); the initial estimate
is supervised with the same terms times ``w_initial`` (an assumption: the paper reports the initial estimate's
accuracy, Sec. 4.4, so it is trained, but gives no weight). **The paper states no loss weights**; the defaults
(:data:`DEFAULT_LOSS_WEIGHTS`) are ours, chosen so that the terms start at comparable magnitudes, and every
one is a method keyword argument.

Export
------
:func:`export_onnx` writes one estimate (:class:`DIRExportWrapper`: vertices, joints, 2D joints, cameras, offset)
for a fixed batch size; ONNX Runtime reproduces PyTorch within 1e-4 (tested).

Keypoint lifter (ours, ``keypoint_lifter: true``, off by default)
-----------------------------------------------------------------
Trained from scratch on a CPU budget, the initial estimate's global orientation stays random and the
refinement has nothing to refine (``training/results/RESULTS.md``). The option adds per-slot 2D keypoint heatmaps
(42 channels at stride 4 from a c3/c4/c5 fusion and ``c2``, focal loss ``w_keypoints`` on Gaussians of every
valid in-crop joint, occluded ones included; ``keypoint_init`` starts this path from a trained single-stage
detector's keypoint branch, :func:`~hand_recon_core.models.heads.keypoint_lifter.load_detector_keypoints`) and the
keypoint lifter of
:mod:`hand_recon_core.models.heads.keypoint_lifter`: each slot's soft-argmax keypoints (detached), normalised by
their centre and size, plus that centre and size, go through an MLP whose output (zero at initialisation) is
added to the initial parameters (camera included). Each slot's keypoints are read in a window around the
centroid of its hand's attention map (Eq. 1), so a slot whose heatmaps still fire on both hands reads one; with
the option the attention maps are also supervised (``w_attention``: binary cross-entropy against each hand's
visible area fraction per ``c5`` cell, from the segmentation target) so that they do point at their hand. The
refinement stages then start from a lifted estimate; the paper's architecture is otherwise unchanged and every
ablation switch below still applies.

Ablation switches (method keyword arguments)
--------------------------------------------
``num_stages`` (1-3; Sec. 4.4 "Iterative Refinement"), ``projection`` (``"multi_plane"`` MFP / ``"single_plane"``
SFP; Table 1 IDs 8 / 6), ``gcn_layers = 0`` / ``transformer_layers = 0`` (Table 1 IDs 3-5), and
``predict_stage`` (0 = the initial estimate, ``-1`` = the last refined one) to evaluate the initial against the
refined estimate with the same checkpoint.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hand_recon_core.data.augment import (
    AugmentConfig,
    ColorJitter,
    MotionBlur,
    affine_intrinsics,
    flip_sample,
    hands_box,
    select_hands,
    warp_sample,
)
from hand_recon_core.data.sample import LEFT, NUM_JOINTS, PART_SEG_PARTS_PER_HAND, RIGHT
from hand_recon_core.geometry.cameras import (
    crop_weak_perspective_to_full_translation,
    normalized_to_pixels,
    project_points,
    weak_perspective_project,
)
from hand_recon_core.geometry.rotations import rot6d_to_matrix
from hand_recon_core.hand_model.constants import MIRROR, NUM_BETAS, NUM_KINEMATIC_JOINTS
from hand_recon_core.hand_model.loader import load_hand_model
from hand_recon_core.metrics.position_errors import WRIST_INDEX
from hand_recon_core.models.backbones import build_backbone
from hand_recon_core.models.backbones.resnet import ResNet
from hand_recon_core.models.blocks.joint_graph import JointGCN, skeleton_adjacency
from hand_recon_core.models.blocks.mesh_graph import edges_from_faces
from hand_recon_core.models.blocks.transformer import TransformerEncoder
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
    "DEFAULT_LOSS_WEIGHTS",
    "HAND_PARAM_DIM",
    "PROJECTIONS",
    "DIRMethod",
    "DIRNet",
    "DIRExportWrapper",
    "attention_centres",
    "HandModelPair",
    "MultiPlaneProjection",
    "RefinementStage",
    "crop_box_from_affine",
    "crop_result_to_camera",
    "decode_camera",
    "export_onnx",
    "feature_grid",
    "sample_joint_features",
    "splat_weights",
]

#: Hands per crop and their slot order (slot index = handedness code of :mod:`hand_recon_core.data.sample`).
NUM_HANDS = 2
SLOTS = (RIGHT, LEFT)
assert SLOTS == (0, 1), "DIR indexes its two hand slots by the handedness codes"
#: Joint tokens of both hands (the paper's ``2J``).
NUM_TOKENS = NUM_HANDS * NUM_JOINTS
#: 6D rotations per hand (global orientation + 15 finger joints).
POSE6D_DIM = NUM_KINEMATIC_JOINTS * 6
#: Per-hand parameter vector: 16 x 6D rotations, betas, raw camera (see :func:`decode_camera`).
HAND_PARAM_DIM = POSE6D_DIM + NUM_BETAS + 3
#: Projection variants: MFP (the paper's) and the single-plane ablation (SFP, Table 1 ID 6).
PROJECTIONS = ("multi_plane", "single_plane")
#: Encoder skip map of refinement stage t (``F_{N-t-2}`` with ``N = 4``).
SKIP_FEATURES = ("c4", "c3", "c2")
#: ImageNet normalisation of the torchvision ResNet weights (RGB in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Scale of the 3D coordinates fed to the coordinate-feature FC layer (1/metres: one unit = 10 cm).
COORD_SCALE = 10.0
#: Clamp of the regressed log scale ratio ``log(s / init_scale)`` (keeps ``exp`` finite early in training).
LOG_SCALE_LIMIT = 4.0
#: Millimetres per metre (3D losses are in millimetres).
MM = 1000.0
#: Channels of the per-joint reduction feeding the parameter-update MLPs.
REDUCED_JOINT_CHANNELS = 16

#: Loss weights (the paper gives none: ours, see the module docstring). Units of the terms: millimetres (3D,
#: edges, offset), input pixels (2D), cosines (normals), squared probabilities / codes (segmentation, dense).
DEFAULT_LOSS_WEIGHTS: dict[str, float] = {
    "joints_3d": 1.0,
    "joints_2d": 1.0,
    "mesh_3d": 1.0,
    "mesh_2d": 1.0,
    "normal": 10.0,
    "edge": 1.0,
    "offset": 1.0,
    "seg": 100.0,
    "dense": 100.0,
}


# ------------------------------------------------------------------------------------------------ pure functions
def decode_camera(cam_raw: torch.Tensor, init_scale: float) -> torch.Tensor:
    """Network camera output to the weak-perspective camera ``(s, tx, ty)``.

    ``s = init_scale * exp(r0)`` (``r0`` clamped to ``+-LOG_SCALE_LIMIT``) and ``(tx, ty) = (r1, r2) / s``, so
    ``(r1, r2)`` is the wrist's position in normalised crop coordinates.

    Args:
        cam_raw: ``(..., 3)`` raw outputs ``(log(s / init_scale), x_root, y_root)``.
        init_scale: ``s`` at ``r0 = 0``, normalised units per metre.

    Returns:
        ``(..., 3)`` ``(s, tx, ty)``: ``s`` in 1/metres, ``tx, ty`` in metres (geometry.cameras convention).
    """
    s = init_scale * torch.exp(cam_raw[..., 0].clamp(-LOG_SCALE_LIMIT, LOG_SCALE_LIMIT))
    return torch.stack([s, cam_raw[..., 1] / s, cam_raw[..., 2] / s], dim=-1)


def feature_grid(xy_n: torch.Tensor, image_size: int) -> torch.Tensor:
    """Normalised crop coordinates to ``grid_sample`` coordinates (``align_corners=False``).

    ``x_n = 2 u / S - 1`` puts ``-1`` on the centre of pixel 0, while ``grid_sample`` puts ``-1`` on the left
    edge of the map; a feature map at stride ``s`` covers the input pixels ``[-0.5, S - 0.5)`` (cell ``x``
    spans ``[s x - 0.5, s (x + 1) - 0.5)``, the convention of :mod:`hand_recon_core.models.heads.center`), so
    ``g = (2 u + 1) / S - 1 = x_n + 1 / S``.

    Args:
        xy_n: ``(..., 2)`` normalised crop coordinates.
        image_size: crop side ``S``, pixels.

    Returns:
        ``(..., 2)`` grid coordinates for any feature map of the crop.
    """
    return xy_n + 1.0 / image_size


def sample_joint_features(fmap: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling of a feature map at points (the paper's ``J^visual``, Sec. 3.2.1).

    Args:
        fmap: ``(B, C, H, W)`` feature map.
        grid: ``(B, N, 2)`` points in ``grid_sample`` coordinates (``align_corners=False``; :func:`feature_grid`);
            outside the map the features are zero-padded.

    Returns:
        ``(B, N, C)`` features.
    """
    out = F.grid_sample(fmap, grid.unsqueeze(1).to(fmap.dtype), mode="bilinear", padding_mode="zeros",
                        align_corners=False)  # (B, C, 1, N)
    return out.squeeze(2).transpose(1, 2)


def splat_weights(grid: torch.Tensor, height: int, width: int, radius: float = 1.0) -> torch.Tensor:
    """One plane per point: a tent kernel of ``radius`` feature cells centred on the point.

    ``w[b, n, y, x] = max(0, 1 - |x - px| / r) * max(0, 1 - |y - py| / r)`` with ``(px, py)`` the point in
    feature-cell coordinates (``px = ((g + 1) W - 1) / 2``). With ``radius = 1`` the weights are the bilinear
    weights, so splatting is the adjoint of :func:`sample_joint_features`
    (``<sample(F, g), f> = <F, w (x) f>``): the projection back to 2D uses the same unambiguous 2D-3D
    relationship as the sampling (Sec. 3.2.3).

    Args:
        grid: ``(B, N, 2)`` points in ``grid_sample`` coordinates.
        height: plane height ``H`` (cells).
        width: plane width ``W`` (cells).
        radius: kernel half-width in cells (> 0).

    Returns:
        ``(B, N, H, W)`` non-negative weights, same dtype as ``grid``.
    """
    px = ((grid[..., 0] + 1.0) * width - 1.0) * 0.5
    py = ((grid[..., 1] + 1.0) * height - 1.0) * 0.5
    xs = torch.arange(width, dtype=grid.dtype, device=grid.device)
    ys = torch.arange(height, dtype=grid.dtype, device=grid.device)
    wx = torch.relu(1.0 - (xs - px[..., None]).abs() / radius)  # (B, N, W)
    wy = torch.relu(1.0 - (ys - py[..., None]).abs() / radius)  # (B, N, H)
    return wy[..., :, None] * wx[..., None, :]


def crop_result_to_camera(cam: torch.Tensor, points: torch.Tensor, crop_center: torch.Tensor,
                          crop_size: torch.Tensor | float, K: torch.Tensor, offset: torch.Tensor | None = None,
                          min_scale: float = 1e-9) -> torch.Tensor:
    """Place the refiner's wrist-relative outputs in a full image's camera frame.

    Each hand's weak-perspective camera gives its wrist translation with
    :func:`hand_recon_core.geometry.cameras.crop_weak_perspective_to_full_translation`
    (``Tz = (fx + fy) / (s crop_size)``, ``Tx = tx + (cx_box - cx) Tz / fx``, likewise y). With ``offset``
    (``O = wrist_left - wrist_right``), the pair is re-placed about the mean of the two camera translations so
    that its relative placement is exactly ``O`` (``T_right = m - O / 2``, ``T_left = m + O / 2``): depth from a
    weak-perspective scale is far less precise than the directly regressed offset (Sec. 3.1, Eq. 5).

    Args:
        cam: ``(..., 2, 3)`` weak-perspective cameras ``(s, tx, ty)`` of the right and left hand (slot order).
        points: ``(..., 2, P, 3)`` wrist-relative points of each hand (vertices or joints), metres, camera
            orientation.
        crop_center: ``(..., 2)`` full-image pixel that the crop maps to its normalised origin, i.e. to crop
            pixel ``(S / 2, S / 2)`` (see :func:`crop_box_from_affine`).
        crop_size: crop side in full-image pixels (``S / zoom``), scalar or ``(...)``.
        K: ``(..., 3, 3)`` (or ``(3, 3)``) full-image intrinsics, pixels.
        offset: optional ``(..., 3)`` relative offset, metres.
        min_scale: floor on ``s``.

    Returns:
        ``(..., 2, P, 3)`` points in the full image's camera frame, metres.
    """
    crop_size = torch.as_tensor(crop_size, dtype=cam.dtype, device=cam.device)
    transl = crop_weak_perspective_to_full_translation(cam, crop_center.to(cam.dtype).unsqueeze(-2),
                                                       crop_size.unsqueeze(-1), K.to(cam.dtype).unsqueeze(-3),
                                                       min_scale=min_scale)  # (..., 2, 3)
    if offset is not None:
        mid = transl.mean(dim=-2)
        half = 0.5 * offset.to(cam.dtype)
        transl = torch.stack([mid - half, mid + half], dim=-2)
    return points + transl.unsqueeze(-2)


def crop_box_from_affine(matrix: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Crop centre and side (full-image pixels) of an axis-aligned similarity crop, for :func:`crop_result_to_camera`.

    Args:
        matrix: ``(2, 3)`` map from full-image pixels to crop pixels ``u_c = a u + b`` (``a > 0``, no
            rotation; e.g. the matrix of :func:`hand_recon_core.data.augment.warp_sample`).
        size: crop side ``S``, crop pixels.

    Returns:
        ``(center (2,), crop_size)``: the full-image pixel mapped to crop pixel ``(S / 2, S / 2)`` (the
        normalised origin of :mod:`hand_recon_core.geometry.cameras`) and ``S / a``.
    """
    m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    a = float(m[0, 0])
    if a <= 0 or abs(m[0, 1]) > 1e-9 * a or abs(m[1, 0]) > 1e-9 * a or abs(m[1, 1] - a) > 1e-9 * a:
        raise ValueError(f"expected an axis-aligned zoom + shift, got {m.tolist()}")
    center = (np.array([size / 2.0, size / 2.0]) - m[:, 2]) / a
    return center, size / a


# ------------------------------------------------------------------------------------------------ modules
class MultiPlaneProjection(nn.Module):
    """Multi-plane feature projection (MFP, Sec. 3.2.3) followed by a 1x1 convolution, in factorised form.

    MFP puts the feature ``f_n`` of node ``n`` into its own plane ``M_n = w_n (x) f_n`` (``w_n`` from
    :func:`splat_weights`) and concatenates the ``N`` planes into ``M`` of ``N C`` channels; a 1x1 convolution
    ``W`` (``N C -> C_out``) of ``M`` equals ``sum_n w_n (W_n f_n)``, computed here without building ``M``.
    ``multi_plane=False`` is the single-plane ablation (SFP): ``M = sum_n w_n (x) f_n`` (``C`` channels, joints
    mixed in one plane) and one shared ``W``.

    Args:
        num_nodes: ``N`` (2J = 42 joints for DIR).
        in_channels: ``C``.
        out_channels: ``C_out``.
        multi_plane: MFP (True) or SFP (False).

    Shapes:
        ``forward(features (B, N, C), weights (B, N, H, W)) -> (B, C_out, H, W)``.
    """

    def __init__(self, num_nodes: int, in_channels: int, out_channels: int, multi_plane: bool = True) -> None:
        super().__init__()
        self.num_nodes, self.multi_plane = num_nodes, multi_plane
        planes = num_nodes if multi_plane else 1
        bound = 1.0 / math.sqrt(in_channels * planes)  # fan-in of the equivalent 1x1 convolution
        self.weight = nn.Parameter(torch.empty(planes, in_channels, out_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def planes(self, features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The explicit projected map ``M`` (for tests and inspection; ``forward`` never builds it).

        Returns:
            ``(B, N C, H, W)`` (plane ``n`` holds channels ``n C .. (n + 1) C - 1``) for MFP, ``(B, C, H, W)``
            for SFP.
        """
        m = weights[:, :, None] * features[..., None, None]  # (B, N, C, H, W)
        return m.flatten(1, 2) if self.multi_plane else m.sum(1)

    def conv_weight(self) -> torch.Tensor:
        """The equivalent 1x1 convolution weight ``(C_out, channels of M, 1, 1)``."""
        return self.weight.flatten(0, 1).T[..., None, None]

    def forward(self, features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        b, n, _ = features.shape
        h, w = weights.shape[-2:]
        proj = torch.matmul(features.transpose(0, 1), self.weight).transpose(0, 1)  # (B, N, C_out)
        out = torch.matmul(proj.transpose(1, 2), weights.reshape(b, n, h * w))  # (B, C_out, H W)
        return out.reshape(b, -1, h, w) + self.bias[:, None, None]


class HandModelPair(nn.Module):
    """The right and left hand layers of one hand model, producing wrist-relative meshes from 6D parameters.

    The layers' buffers are registered as non-persistent: the hand model is not learnt, the checkpoint names
    it (``hand_model``), and keeping ~1.5 MB of blend shapes out of the weights keeps the lite checkpoint small.

    Args:
        hand_model_id: ``"open"``, ``"mano"`` or a path (:func:`hand_recon_core.hand_model.load_hand_model`).

    Attributes:
        faces: ``(2, F, 3)`` int64 faces of the right and left layer (outward counter-clockwise).
        edges: ``(E, 2)`` int64 unique mesh edges (the same for both sides).
    """

    def __init__(self, hand_model_id: str) -> None:
        super().__init__()
        layers = [load_hand_model(hand_model_id, side=side, pose_repr="6d", flat_hand_mean=True)
                  for side in ("right", "left")]
        for layer in layers:
            for name, buf in list(layer.named_buffers(recurse=False)):
                layer.register_buffer(name, buf, persistent=False)
        self.layers = nn.ModuleList(layers)  # indexed by the slot (handedness code)
        if layers[0].num_vertices != layers[1].num_vertices:
            raise ValueError("the right and left hand models differ in vertex count")
        self.register_buffer("faces", torch.stack([layer.faces for layer in layers]), persistent=False)
        edges = edges_from_faces(layers[0].faces.cpu().numpy())
        self.register_buffer("edges", torch.as_tensor(edges, dtype=torch.int64), persistent=False)

    @property
    def num_vertices(self) -> int:
        """Vertices per hand ``V``."""
        return self.layers[0].num_vertices

    def forward(self, pose6d: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Wrist-relative joints and vertices.

        The finger rotations and shape go through each side's layer (rest wrist at its own place); the global
        rotation ``R = rot6d(pose6d[:, :, 0])`` is then applied about the wrist: ``X = R (X_model - wrist)``.

        Args:
            pose6d: ``(B, 2, 16, 6)`` 6D rotations (global orientation, 15 finger joints in MANO native order).
            betas: ``(B, 2, 10)`` shape coefficients.

        Returns:
            ``(joints (B, 2, 21, 3), vertices (B, 2, V, 3))``: metres, wrist at the origin, camera orientation.
        """
        joints, verts = [], []
        for slot, layer in enumerate(self.layers):
            out = layer(hand_pose=pose6d[:, slot, 1:], betas=betas[:, slot])
            root = out.joints[:, WRIST_INDEX : WRIST_INDEX + 1]
            joints.append(out.joints - root)
            verts.append(out.vertices - root)
        rot_t = rot6d_to_matrix(pose6d[:, :, 0]).transpose(-1, -2)  # (B, 2, 3, 3)
        return torch.stack(joints, 1) @ rot_t, torch.stack(verts, 1) @ rot_t


def _mlp(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_features))


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))


def _resize(x: torch.Tensor, plan: tuple[str, int]) -> torch.Tensor:
    kind, value = plan
    if kind == "down":
        return F.avg_pool2d(x, value)
    if kind == "up":
        return F.interpolate(x, size=(value, value), mode="bilinear", align_corners=False)
    return x


def _resize_plan(source: int, target: int) -> tuple[str, int]:
    """How to bring a square map of side ``source`` to ``target`` (static, so traced graphs hold constants)."""
    if source > target:
        if source % target:
            raise ValueError(f"cannot average-pool a {source}-cell map to {target} cells")
        return ("down", source // target)
    return ("up", target) if source < target else ("same", target)


class RefinementStage(nn.Module):
    """One decoupled refinement stage (Sec. 3.2; see the module docstring, steps 1-5).

    Args:
        prev_channels: channels of the previous decoder map (``c5`` for the first stage).
        skip_channels: channels of the encoder skip map.
        prev_plan, skip_plan: resize plans of the two maps to the decoding resolution (:func:`_resize_plan`).
        resolution: decoding resolution ``R`` (cells).
        image_size: crop side ``S`` (pixels).
        decoder_channels: channels of the fused and refined decoder maps.
        joint_channels: joint feature channels ``C``.
        mfp_channels: output channels of the projected map (the 1x1 convolution of ``M``).
        gcn_layers: semantic GCN layers per hand (0 disables the GCN).
        transformer_layers: transformer layers over the 2J tokens (0 disables the transformer).
        transformer_heads: attention heads.
        head_hidden: hidden width of the parameter-update MLPs.
        multi_plane: MFP (True) or the single-plane ablation.
        splat_radius: tent radius of the projection, cells.

    The sampling / projection locations (the previous estimate's 2D joints) are detached: gradients reach the
    previous estimate through the parameter residuals and the coordinate features, not through where features
    are read or written.
    """

    def __init__(self, prev_channels: int, skip_channels: int, prev_plan: tuple[str, int],
                 skip_plan: tuple[str, int], resolution: int, image_size: int, decoder_channels: int,
                 joint_channels: int, mfp_channels: int, gcn_layers: int, transformer_layers: int,
                 transformer_heads: int, head_hidden: int, multi_plane: bool, splat_radius: float) -> None:
        super().__init__()
        self.prev_plan, self.skip_plan = prev_plan, skip_plan
        self.resolution, self.image_size, self.splat_radius = resolution, image_size, splat_radius
        self.fuse = _conv_bn_relu(prev_channels + skip_channels, decoder_channels, 1)
        self.visual = nn.Linear(decoder_channels, joint_channels)
        self.coord = nn.Linear(5, joint_channels)
        self.gcn = (JointGCN(joint_channels, gcn_layers, skeleton_adjacency()) if gcn_layers > 0 else None)
        self.token_embed = nn.Parameter(torch.zeros(NUM_TOKENS, joint_channels))
        nn.init.trunc_normal_(self.token_embed, std=0.02)
        self.transformer = (TransformerEncoder(joint_channels, transformer_layers, transformer_heads)
                            if transformer_layers > 0 else None)
        self.project = MultiPlaneProjection(NUM_TOKENS, joint_channels, mfp_channels, multi_plane)
        self.enhance = nn.Sequential(_conv_bn_relu(decoder_channels + mfp_channels, decoder_channels, 3),
                                     _conv_bn_relu(decoder_channels, decoder_channels, 3))
        self.aux = nn.Conv2d(decoder_channels, NUM_HANDS + 3, 1)  # segmentation (right, left) + dense (3)
        self.reduce = nn.Linear(joint_channels, REDUCED_JOINT_CHANNELS)
        per_hand = NUM_JOINTS * REDUCED_JOINT_CHANNELS
        self.param_heads = nn.ModuleList(_mlp(per_hand + HAND_PARAM_DIM, head_hidden, HAND_PARAM_DIM)
                                         for _ in range(NUM_HANDS))
        self.offset_head = _mlp(NUM_HANDS * per_hand + 3, head_hidden // 4, 3)
        for head in (*self.param_heads, self.offset_head):  # start as the identity update
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)

    def forward(self, prev: torch.Tensor, skip: torch.Tensor, params: torch.Tensor, offset: torch.Tensor,
                joints: torch.Tensor, joints_2d: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One stage.

        Args:
            prev: ``(B, C_prev, h, w)`` previous decoder map.
            skip: ``(B, C_skip, h', w')`` encoder skip map.
            params: ``(B, 2, HAND_PARAM_DIM)`` current hand parameters (slot order).
            offset: ``(B, 3)`` current relative offset, metres.
            joints: ``(B, 2, 21, 3)`` current wrist-relative joints, metres.
            joints_2d: ``(B, 2, 21, 2)`` their weak-perspective projections, normalised crop coordinates.

        Returns:
            ``(decoder (B, C_dec, R, R), params (B, 2, P), offset (B, 3), seg (B, 2, R, R) in [0, 1],
            dense (B, 3, R, R) in [0, 1])``.
        """
        b = prev.shape[0]
        fused = self.fuse(torch.cat([_resize(prev, self.prev_plan), _resize(skip, self.skip_plan)], dim=1))
        grid = feature_grid(joints_2d.detach(), self.image_size).reshape(b, NUM_TOKENS, 2)
        xyz = joints + torch.stack([torch.zeros_like(offset), offset], dim=1)[:, :, None]  # right-wrist frame
        coords = torch.cat([xyz * COORD_SCALE, joints_2d], dim=-1).reshape(b, NUM_TOKENS, 5)
        feats = self.visual(sample_joint_features(fused, grid)) + self.coord(coords)
        if self.gcn is not None:
            feats = self.gcn(feats.reshape(b * NUM_HANDS, NUM_JOINTS, -1)).reshape(b, NUM_TOKENS, -1)
        if self.transformer is not None:
            feats = self.transformer(feats + self.token_embed)
        weights = splat_weights(grid, self.resolution, self.resolution, self.splat_radius)
        decoder = self.enhance(torch.cat([fused, self.project(feats, weights)], dim=1))
        aux = torch.sigmoid(self.aux(decoder))
        red = self.reduce(feats).reshape(b, NUM_HANDS, -1)
        delta = torch.stack([head(torch.cat([red[:, h], params[:, h]], dim=-1))
                             for h, head in enumerate(self.param_heads)], dim=1)
        offset = offset + self.offset_head(torch.cat([red.flatten(1), offset], dim=-1))
        return decoder, params + delta, offset, aux[:, :NUM_HANDS], aux[:, NUM_HANDS:]


class DIRNet(nn.Module):
    """The DIR network (module docstring): crop image -> initial + ``T`` refined two-hand estimates.

    Args:
        backbone: a :class:`~hand_recon_core.models.backbones.resnet.ResNet` (``forward_features`` -> c2..c5).
        hand_model_id: hand model of the output meshes.
        num_stages: refinement stages ``T`` (1-3).
        image_size: crop side ``S``, pixels (a multiple of 32).
        projection: ``"multi_plane"`` or ``"single_plane"``.
        decoder_channels, joint_channels, mfp_channels: widths (see :class:`RefinementStage`).
        max_decoder_res: cap on the decoding resolution (32 in the paper).
        gcn_layers, transformer_layers, transformer_heads: joint-space interaction depth.
        head_hidden: hidden width of the initial and update MLPs.
        splat_radius: projection kernel radius, cells.
        init_scale: weak-perspective scale at a zero camera output (normalised units per metre).
        keypoint_lifter: add the keypoint heatmaps and lifter to the initial estimate (module docstring; ours).
        keypoint_channels, keypoint_hidden: widths of the keypoint path's fusion and heatmap branch.
    """

    def __init__(self, backbone: ResNet, hand_model_id: str, num_stages: int = 2, image_size: int = 256,
                 projection: str = "multi_plane", decoder_channels: int = 256, joint_channels: int = 128,
                 mfp_channels: int = 64, max_decoder_res: int = 32, gcn_layers: int = 2, transformer_layers: int = 4,
                 transformer_heads: int = 4, head_hidden: int = 512, splat_radius: float = 1.0,
                 init_scale: float = 8.0, keypoint_lifter: bool = False, keypoint_channels: int = 64,
                 keypoint_hidden: int = 32) -> None:
        super().__init__()
        if not 1 <= num_stages <= len(SKIP_FEATURES):
            raise ValueError(f"num_stages must be in 1..{len(SKIP_FEATURES)}, got {num_stages}")
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
        if image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
        self.backbone = backbone
        self.hands = HandModelPair(hand_model_id)
        self.num_stages, self.image_size, self.init_scale = num_stages, image_size, float(init_scale)
        self.resolution = min(int(max_decoder_res), image_size // 8)
        ch = backbone.out_channels
        size = {name: image_size // stride for name, stride in backbone.strides.items()}
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        # Initial estimate (Sec. 3.1): attention maps (Eq. 1), per-hand FC heads, offset FC.
        self.attention = nn.Conv2d(ch["c5"], NUM_HANDS, 1)
        self.init_heads = nn.ModuleList(_mlp(ch["c5"], head_hidden, HAND_PARAM_DIM) for _ in range(NUM_HANDS))
        self.init_offset = nn.Linear(ch["c5"], 3)
        identity = torch.cat([torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).repeat(NUM_KINEMATIC_JOINTS),
                              torch.zeros(NUM_BETAS + 3)])
        for head in self.init_heads:
            nn.init.xavier_uniform_(head[-1].weight, gain=0.01)
            with torch.no_grad():
                head[-1].bias.copy_(identity)
        nn.init.xavier_uniform_(self.init_offset.weight, gain=0.01)
        nn.init.zeros_(self.init_offset.bias)
        self.keypoint_fusion, self.keypoint_head, self.lifter = (
            slot_keypoint_modules(ch, HAND_PARAM_DIM, keypoint_channels, keypoint_hidden, NUM_HANDS)
            if keypoint_lifter else (None, None, None))

        stages = []
        prev_ch, prev_size = ch["c5"], size["c5"]
        for t in range(num_stages):
            skip = SKIP_FEATURES[t]
            stages.append(RefinementStage(
                prev_ch, ch[skip], _resize_plan(prev_size, self.resolution), _resize_plan(size[skip], self.resolution),
                self.resolution, image_size, decoder_channels, joint_channels, mfp_channels, gcn_layers,
                transformer_layers, transformer_heads, head_hidden, projection == "multi_plane", splat_radius))
            prev_ch, prev_size = decoder_channels, self.resolution
        self.stages = nn.ModuleList(stages)

    def _geometry(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Parameters -> (cam, joints, vertices, joints_2d, vertices_2d) of both hands (see ``forward_image``)."""
        b = params.shape[0]
        pose6d = params[..., :POSE6D_DIM].reshape(b, NUM_HANDS, NUM_KINEMATIC_JOINTS, 6)
        betas = params[..., POSE6D_DIM : POSE6D_DIM + NUM_BETAS]
        cam = decode_camera(params[..., POSE6D_DIM + NUM_BETAS :], self.init_scale)
        joints, verts = self.hands(pose6d, betas)
        return cam, joints, verts, weak_perspective_project(joints, cam), weak_perspective_project(verts, cam)

    def forward_image(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network on a batch of crops.

        Args:
            pixels: ``(B, 3, S, S)`` RGB in [0, 1] (normalised with the ImageNet statistics inside).

        Returns:
            dict over the ``K = T + 1`` estimates (index 0 the initial one, ``k`` the output of stage ``k``):

            * ``params`` ``(K, B, 2, 109)``: 16 x 6D rotations, 10 betas, raw camera (per slot: right, left);
            * ``cam`` ``(K, B, 2, 3)``: weak-perspective ``(s, tx, ty)``;
            * ``offset`` ``(K, B, 3)``: ``wrist_left - wrist_right``, metres, crop camera orientation;
            * ``joints`` ``(K, B, 2, 21, 3)`` / ``vertices`` ``(K, B, 2, V, 3)``: wrist-relative, metres;
            * ``joints_2d`` ``(K, B, 2, 21, 2)`` / ``vertices_2d`` ``(K, B, 2, V, 2)``: normalised crop coords;

            and over the ``T`` refinement stages, at the decoding resolution ``R``: ``seg`` ``(T, B, 2, R, R)``
            (visible right / left hand, probabilities) and ``dense`` ``(T, B, 3, R, R)`` (correspondence code);
            with the keypoint lifter also ``keypoint_logits`` ``(B, 42, S/4, S/4)`` (channel ``21 slot + joint``)
            and ``keypoints`` ``(B, 2, 21, 2)`` (their soft-argmax, crop pixels).
        """
        x = (pixels - self.pixel_mean) / self.pixel_std
        feats = self.backbone.forward_features(x)
        c5 = feats["c5"]
        attn = torch.sigmoid(self.attention(c5))  # (B, 2, h, w), Eq. 1
        glob = (attn[:, :, None] * c5[:, None]).mean(dim=(-2, -1))  # (B, 2, C5), Eq. 2
        params = torch.stack([head(glob[:, h]) for h, head in enumerate(self.init_heads)], dim=1)
        offset = self.init_offset(c5.mean(dim=(-2, -1)))
        lifted: dict[str, torch.Tensor] = {}
        if self.keypoint_head is not None:
            logits = self.keypoint_head(self.keypoint_fusion(feats["c3"], feats["c4"], c5), feats["c2"])
            centres = attention_centres(attn, self.image_size)  # where each hand's attention (Eq. 1) looks
            lifted["attention"] = attn
            correction, lifted["keypoints"] = lift_slot_keypoints(self.lifter, logits, self.image_size, centres)
            lifted["keypoint_logits"] = logits
            params = params + correction.to(params.dtype)
        estimates = [(params, offset, *self._geometry(params))]
        seg, dense = [], []
        decoder = c5
        for t, stage in enumerate(self.stages):
            _, _, _, joints, _, joints_2d, _ = estimates[-1]
            decoder, params, offset, s, d = stage(decoder, feats[SKIP_FEATURES[t]], params, offset, joints, joints_2d)
            estimates.append((params, offset, *self._geometry(params)))
            seg.append(s)
            dense.append(d)
        names = ("params", "offset", "cam", "joints", "vertices", "joints_2d", "vertices_2d")
        out = {name: torch.stack([e[i] for e in estimates]) for i, name in enumerate(names)}
        out["seg"] = torch.stack(seg)
        out["dense"] = torch.stack(dense)
        out.update(lifted)
        return out

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``forward_image`` on ``batch["image"]`` (``(B, S, S, 3)`` uint8, the crops of :meth:`DIRMethod.collate`)."""
        pixels = batch["image"].permute(0, 3, 1, 2).float() * (1.0 / 255.0)
        return self.forward_image(pixels)


class DIRExportWrapper(nn.Module):
    """Inference view of :class:`DIRNet` for ONNX export: one estimate, tensors only.

    Args:
        net: the network (put it in eval mode).
        stage: which estimate (0 = initial, -1 = last refined).

    Shapes:
        ``forward(pixels (B, 3, S, S) in [0, 1]) -> (vertices (B, 2, V, 3), joints (B, 2, 21, 3),
        joints_2d (B, 2, 21, 2), cam (B, 2, 3), offset (B, 3))`` with the units of ``DIRNet.forward_image``.
    """

    OUTPUT_NAMES = ("vertices", "joints", "joints_2d", "cam", "offset")

    def __init__(self, net: DIRNet, stage: int = -1) -> None:
        super().__init__()
        self.net, self.stage = net, stage

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net.forward_image(pixels)
        return tuple(out[name][self.stage] for name in self.OUTPUT_NAMES)


def export_onnx(net: DIRNet, path: str | Path, stage: int = -1, opset: int = 17, batch_size: int = 1) -> Path:
    """Export the network (one estimate, :class:`DIRExportWrapper`) to ONNX.

    Uses the TorchScript-based exporter (``dynamo=False``: no ``onnxscript`` dependency; its deprecation warning
    is silenced). ``grid_sample`` needs opset >= 16. The batch size is fixed in the graph: the hand layer
    (:class:`~hand_recon_core.hand_model.layer.HandLayer`) turns its batch size into a Python int, which the
    tracer records as a constant; export one graph per batch size you serve (usually 1 pair per call).

    Args:
        net: the network; exported in eval mode (its mode is restored afterwards).
        path: output ``.onnx`` file.
        stage: estimate to export (0 initial, -1 last).
        opset: ONNX opset (>= 16).
        batch_size: crops per call ``B``.

    Returns:
        The path. Input ``pixels`` ``(B, 3, S, S)`` float32 RGB in [0, 1]; outputs named as
        :attr:`DIRExportWrapper.OUTPUT_NAMES`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = net.training
    wrapper = DIRExportWrapper(net.eval(), stage)
    dummy = torch.zeros(batch_size, 3, net.image_size, net.image_size, device=next(net.parameters()).device)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, (dummy,), str(path), input_names=["pixels"],
                              output_names=list(DIRExportWrapper.OUTPUT_NAMES), opset_version=opset, dynamo=False)
    finally:
        net.train(was_training)
    return path


# ------------------------------------------------------------------------------------------------ the method
def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum(values * weights) / max(sum(weights), 1)`` with ``weights`` broadcast to ``values``."""
    w = weights.expand_as(values)
    return (values * w).sum() / w.sum().clamp(min=1.0)


def _smooth_l1(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Smooth L1 (beta 1 in the tensors' units) averaged over coordinates and the weighted points."""
    return _masked_mean(F.smooth_l1_loss(pred, target, reduction="none", beta=1.0).mean(-1), weights)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=1e-9)


@register_method("dir")
class DIRMethod:
    """DIR as a registered method (protocol of :mod:`hand_recon_core.models.registry`).

    Args:
        num_stages: refinement stages ``T`` (1-3; paper default 2).
        projection: ``"multi_plane"`` (MFP) or ``"single_plane"`` (SFP ablation).
        image_size: crop side ``S``, pixels (paper 256).
        decoder_channels, joint_channels, mfp_channels, max_decoder_res, gcn_layers, transformer_layers,
            transformer_heads, head_hidden, splat_radius, init_scale: network options (:class:`DIRNet`).
        backbone: backbone used when the config's ``backbone.name`` is empty (paper: ``resnet50``).
        crop_margin: crop side / side of the box around both hands' projected vertices (keypoints when the
            sample has no vertices).
        augment: random scale / rotation / translation / flip / colour jitter / motion blur of the training
            split in :meth:`encode_targets` (DIR Sec. 4.1; ranges of
            :class:`~hand_recon_core.data.augment.AugmentConfig`).
        augment_config: overrides of :class:`hand_recon_core.data.augment.AugmentConfig` (ranges).
        loss_weights: overrides of :data:`DEFAULT_LOSS_WEIGHTS`.
        w_initial: weight of the initial estimate's losses.
        predict_stage: estimate returned by :meth:`predict` (0 initial, ``k`` stage k, -1 last).
        placement: ``"offset"`` (the pair placed with the predicted ``O``) or ``"cameras"`` (each hand by its own
            camera) in :meth:`predict` (see :func:`crop_result_to_camera`).
        keypoint_lifter: keypoint heatmaps + lifter in the initial estimate (ours, module docstring);
            ``w_keypoints`` weights the heatmaps' focal loss; ``keypoint_channels`` / ``keypoint_hidden`` their
            widths; ``keypoint_init`` a single-stage checkpoint whose keypoint branch initialises them (training
            only: a trained checkpoint holds the weights); ``w_attention`` supervises the hand attention maps
            the keypoints are read around (ours).
    """

    def __init__(self, num_stages: int = 2, projection: str = "multi_plane", image_size: int = 256,
                 decoder_channels: int = 256, joint_channels: int = 128, mfp_channels: int = 64,
                 max_decoder_res: int = 32, gcn_layers: int = 2, transformer_layers: int = 4,
                 transformer_heads: int = 4, head_hidden: int = 512, splat_radius: float = 1.0,
                 init_scale: float = 8.0, backbone: str = "resnet50", crop_margin: float = 1.25,
                 augment: bool = False, augment_config: Mapping[str, Any] | None = None,
                 loss_weights: Mapping[str, float] | None = None, w_initial: float = 1.0,
                 predict_stage: int = -1, placement: str = "offset", keypoint_lifter: bool = False,
                 w_keypoints: float = 50.0, keypoint_channels: int = 64, keypoint_hidden: int = 32,
                 keypoint_init: str | None = None, w_attention: float = 50.0) -> None:
        if not 1 <= int(num_stages) <= len(SKIP_FEATURES):
            raise ValueError(f"num_stages must be in 1..{len(SKIP_FEATURES)}, got {num_stages}")
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
        if placement not in ("offset", "cameras"):
            raise ValueError(f"placement must be 'offset' or 'cameras', got {placement!r}")
        if not -1 <= int(predict_stage) <= int(num_stages):
            raise ValueError(f"predict_stage must be -1 or in 0..{num_stages}, got {predict_stage}")
        unknown = set(loss_weights or {}) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown loss_weights {sorted(unknown)}; known: {sorted(DEFAULT_LOSS_WEIGHTS)}")
        if crop_margin <= 0:
            raise ValueError(f"crop_margin must be > 0, got {crop_margin}")
        self.net_kwargs = {
            "num_stages": int(num_stages), "image_size": int(image_size), "projection": projection,
            "decoder_channels": int(decoder_channels), "joint_channels": int(joint_channels),
            "mfp_channels": int(mfp_channels), "max_decoder_res": int(max_decoder_res), "gcn_layers": int(gcn_layers),
            "transformer_layers": int(transformer_layers), "transformer_heads": int(transformer_heads),
            "head_hidden": int(head_hidden), "splat_radius": float(splat_radius), "init_scale": float(init_scale),
            "keypoint_lifter": bool(keypoint_lifter), "keypoint_channels": int(keypoint_channels),
            "keypoint_hidden": int(keypoint_hidden),
        }
        if keypoint_init and not keypoint_lifter:
            raise ValueError("keypoint_init needs keypoint_lifter: true")
        self.w_keypoints = float(w_keypoints)
        self.w_attention = float(w_attention)
        self.keypoint_init = keypoint_init
        self.num_stages, self.image_size = int(num_stages), int(image_size)
        self.resolution = min(int(max_decoder_res), self.image_size // 8)
        self.backbone = backbone
        self.crop_margin = float(crop_margin)
        self.augment = bool(augment)
        self.augment_config = AugmentConfig(**dict(augment_config or {}))
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **{k: float(v) for k, v in (loss_weights or {}).items()}}
        self.w_initial = float(w_initial)
        self.predict_stage = int(predict_stage)
        self.placement = placement

    # -------------------------------------------------------------------------------------------- build
    def build(self, cfg: Any, hand_model_id: str) -> DIRNet:
        """The network: ``cfg.backbone.name`` (else the ``backbone`` keyword) with ``cfg.backbone.pretrained``."""
        backbone_cfg = getattr(cfg, "backbone", None)
        name = getattr(backbone_cfg, "name", None) or self.backbone
        pretrained = getattr(backbone_cfg, "pretrained", None)
        net = DIRNet(build_backbone(name, pretrained=pretrained), hand_model_id, **self.net_kwargs)
        if self.keypoint_init:
            load_detector_keypoints(net.keypoint_fusion, net.keypoint_head, self.keypoint_init)
        self._topology = {torch.device("cpu"): (net.hands.faces.cpu(), net.hands.edges.cpu())}
        return net

    def _mesh_topology(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(faces (2, F, 3), edges (E, 2))`` of the built network's hand model, on ``device``."""
        topology = getattr(self, "_topology", None)
        if topology is None:
            raise RuntimeError("DIRMethod.build must be called before the losses (they need the hand model's faces)")
        if device not in topology:
            faces, edges = topology[torch.device("cpu")]
            topology[device] = (faces.to(device), edges.to(device))
        return topology[device]

    # -------------------------------------------------------------------------------------------- data
    def _crop_matrix(self, sample: Mapping[str, Any], rng: np.random.Generator | None) -> np.ndarray:
        """(2, 3) map from the sample's pixels to the crop: the pair's box, ``crop_margin``, optional jitter."""
        height, width = sample["image"].shape[:2]
        box = None
        verts = sample.get("vertices_3d")
        has_3d = np.asarray(sample["has_3d"], dtype=bool)
        if verts is not None and len(verts) and has_3d.all():
            pts = np.asarray(verts, np.float64).reshape(-1, 3)
            if np.all(pts[:, 2] > 1e-6):
                uvw = pts @ np.asarray(sample["K"], np.float64).T
                uv = uvw[:, :2] / uvw[:, 2:]
                box = np.concatenate([uv.min(0), uv.max(0)])
        if box is None:
            box = hands_box(sample)
        if box is None:  # no hand: the whole image
            box = np.array([0.0, 0.0, width - 1.0, height - 1.0])
        centre = 0.5 * (box[:2] + box[2:])
        side = max(box[2] - box[0], box[3] - box[1], 1.0) * self.crop_margin
        zoom, angle, shift = 1.0, 0.0, np.zeros(2)
        if rng is not None:
            c = self.augment_config
            zoom = rng.uniform(*c.scale_range)
            angle = math.radians(rng.uniform(*c.rotation_range))
            shift = rng.uniform(*c.translation_range, size=2)
        a = self.image_size / side * zoom * np.array([[math.cos(angle), -math.sin(angle)],
                                                       [math.sin(angle), math.cos(angle)]])
        b = np.full(2, (self.image_size - 1) / 2.0) + shift - a @ centre
        return np.hstack([a, b[:, None]])

    def encode_targets(self, sample: dict[str, Any], train: bool = False) -> dict[str, Any]:
        """Crop the pair (first right and first left hand) and encode the DIR targets.

        The crop is the square of side ``crop_margin`` times the longer side of the box around both hands'
        projected vertices (keypoints without vertices), centred on it (Sec. 4.1: "we crop out the hand region
        based on the 2D coordinates of the hand vertices and resize it to 256 x 256"); with ``train`` and
        ``augment`` it is jittered (scale, rotation, translation), flipped and colour-jittered / blurred. Labels
        follow through :func:`~hand_recon_core.data.augment.warp_sample` / ``flip_sample`` (3D labels stay exact:
        the crop camera rotates, see that module), the ``dense`` correspondence map included.

        Args:
            sample: a sample (:mod:`hand_recon_core.data.sample`); ``part_seg`` (else ``mask``) and ``dense`` feed
                the pixel-wise losses when present.
            train: the training split (augment when the method's ``augment`` is on); False for validation,
                evaluation and inference.

        Returns:
            dict with ``image`` ``(S, S, 3)`` uint8 and ``K`` ``(3, 3)`` of the crop, the meta keys, and per slot
            (right, left): ``dir_present (2,)``, ``dir_has_3d (2,)``, ``dir_joints_3d (2, 21, 3)`` metres crop
            camera frame, ``dir_keypoints_2d (2, 21, 2)`` crop pixels, ``dir_joint_valid (2, 21)``,
            ``dir_vertices_3d (2, V, 3)`` + ``dir_has_vertices (2,)`` (when the sample has vertices),
            ``dir_seg (2, R, R)`` (area fraction of each hand's visible pixels per decoder cell) +
            ``dir_has_seg ()``, ``dir_dense (3, R, R)`` + ``dir_has_dense ()``; and the crop transform for
            :meth:`predict`: ``dir_affine (2, 3)`` (sample pixels -> crop pixels, flip included),
            ``dir_rotation (3, 3)`` (sample camera frame -> crop camera frame, ``det = -1`` when flipped),
            ``dir_flipped ()``. All float32 except ``image``.
        """
        hand = np.asarray(sample["handedness"])
        pick = [int(np.flatnonzero(hand == code)[0]) for code in SLOTS if np.any(hand == code)]
        s = select_hands(sample, np.array(pick, dtype=np.int64))
        rng = None
        if train and self.augment:
            rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))  # noqa: NPY002 (seeded per sample)
        size = self.image_size
        matrix = self._crop_matrix(s, rng)
        _, rotation = affine_intrinsics(s["K"], matrix)
        out = warp_sample(s, matrix, (size, size), drop_outside=False)
        affine = matrix
        flipped = rng is not None and rng.random() < self.augment_config.flip_prob
        if flipped:
            out = flip_sample(out)
            flip = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
            affine = (flip @ np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
            rotation = MIRROR @ rotation
        if rng is not None:
            c = self.augment_config
            out = ColorJitter(c.brightness, c.contrast, c.saturation, c.hue, c.color_prob)(out, rng)
            out = MotionBlur(c.blur_kernel_range, c.blur_prob)(out, rng)
        return self._slots(out, affine, rotation, flipped)

    def _slots(self, s: Mapping[str, Any], affine: np.ndarray, rotation: np.ndarray, flipped: bool) -> dict[str, Any]:
        """Per-slot fixed-size targets of a cropped sample (see :meth:`encode_targets`)."""
        res = self.resolution
        enc: dict[str, Any] = {k: s[k] for k in ("image", "K", "dataset", "sample_id", "hand_model_id")}
        present = np.zeros(NUM_HANDS, np.float32)
        has_3d = np.zeros(NUM_HANDS, np.float32)
        joints = np.zeros((NUM_HANDS, NUM_JOINTS, 3), np.float32)
        kp = np.zeros((NUM_HANDS, NUM_JOINTS, 2), np.float32)
        valid = np.zeros((NUM_HANDS, NUM_JOINTS), np.float32)
        verts = s.get("vertices_3d")
        v_out = None if verts is None else np.zeros((NUM_HANDS, verts.shape[1], 3), np.float32)
        has_v = np.zeros(NUM_HANDS, np.float32)
        hand_index = {}
        for i, code in enumerate(np.asarray(s["handedness"])):
            slot = int(code)
            hand_index[slot] = i
            present[slot] = 1.0
            has_3d[slot] = float(s["has_3d"][i])
            joints[slot], kp[slot], valid[slot] = s["joints_3d"][i], s["keypoints_2d"][i], s["joint_valid"][i]
            if v_out is not None:
                v_out[slot], has_v[slot] = verts[i], float(s["has_3d"][i])
        enc.update(dir_present=present, dir_has_3d=has_3d, dir_joints_3d=joints, dir_keypoints_2d=kp,
                   dir_joint_valid=valid)
        if self.net_kwargs["keypoint_lifter"]:  # every valid joint inside the crop, occluded ones included
            enc["dir_kp_hm"] = slot_keypoint_heatmaps(kp, valid > 0, self.image_size)
        if v_out is not None:
            enc.update(dir_vertices_3d=v_out, dir_has_vertices=has_v)
        seg = None
        if "part_seg" in s:
            p = s["part_seg"]
            seg = np.stack([(p >= 1) & (p <= PART_SEG_PARTS_PER_HAND), p > PART_SEG_PARTS_PER_HAND], axis=-1)
        elif "mask" in s:
            seg = np.stack([s["mask"] == hand_index.get(slot, -2) for slot in SLOTS], axis=-1)
        enc["dir_has_seg"] = np.float32(seg is not None)
        enc["dir_seg"] = (np.zeros((NUM_HANDS, res, res), np.float32) if seg is None else cv2.resize(
            seg.astype(np.float32), (res, res), interpolation=cv2.INTER_AREA).transpose(2, 0, 1))
        dense = s.get("dense")
        enc["dir_has_dense"] = np.float32(dense is not None)
        enc["dir_dense"] = (np.zeros((3, res, res), np.float32) if dense is None else
                            cv2.resize(dense, (res, res), interpolation=cv2.INTER_AREA).transpose(2, 0, 1))
        enc.update(dir_affine=np.asarray(affine, np.float32), dir_rotation=np.asarray(rotation, np.float32),
                   dir_flipped=np.float32(flipped))
        return enc

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Stack encoded samples: tensors with a leading ``B`` (``image`` uint8 ``(B, S, S, 3)``), meta as lists.

        ``dir_vertices_3d`` is zero-filled (``dir_has_vertices = 0``) for samples without vertices and omitted
        when no sample has them.
        """
        if not samples:
            raise ValueError("collate needs at least one sample")
        batch: dict[str, Any] = {}
        keys = [k for k in samples[0] if k in ("image", "K") or (k.startswith("dir_") and "vertices" not in k)]
        for key in keys:
            batch[key] = torch.from_numpy(np.stack([np.asarray(s[key]) for s in samples]))
        with_v = [s for s in samples if "dir_vertices_3d" in s]
        if with_v:
            shape = with_v[0]["dir_vertices_3d"].shape
            batch["dir_vertices_3d"] = torch.from_numpy(np.stack([
                s["dir_vertices_3d"] if "dir_vertices_3d" in s else np.zeros(shape, np.float32) for s in samples]))
            batch["dir_has_vertices"] = torch.from_numpy(np.stack([
                s.get("dir_has_vertices", np.zeros(NUM_HANDS, np.float32)) for s in samples]))
        for key in ("dataset", "sample_id", "hand_model_id"):
            batch[key] = [s[key] for s in samples]
        return batch

    # -------------------------------------------------------------------------------------------- losses
    def _targets(self, batch: Mapping[str, Any], num_vertices: int) -> dict[str, torch.Tensor]:
        """Ground truth in the loss units (wrist-relative mm, input pixels) and its weights."""
        present = batch["dir_present"].float()
        joints = batch["dir_joints_3d"].float()
        valid = batch["dir_joint_valid"].float() * present[..., None]
        wrist_ok = valid[..., WRIST_INDEX] * batch["dir_has_3d"].float()  # (B, 2)
        gt = {
            "joints_3d": (joints - joints[:, :, WRIST_INDEX : WRIST_INDEX + 1]) * MM,
            "w_joints_3d": valid * wrist_ok[..., None],
            "joints_2d": batch["dir_keypoints_2d"].float(),
            "w_joints_2d": valid,
            "offset": (joints[:, LEFT, WRIST_INDEX] - joints[:, RIGHT, WRIST_INDEX]) * MM,
            "w_offset": wrist_ok[:, RIGHT] * wrist_ok[:, LEFT],
            "seg": batch["dir_seg"].float(), "w_seg": batch["dir_has_seg"].float()[:, None, None, None],
            "dense": batch["dir_dense"].float(), "w_dense": batch["dir_has_dense"].float()[:, None, None, None],
        }
        verts = batch.get("dir_vertices_3d")
        if verts is not None and verts.shape[2] == num_vertices:
            verts = verts.float()
            w_v = batch["dir_has_vertices"].float() * wrist_ok  # (B, 2)
            gt["vertices_3d"] = (verts - joints[:, :, WRIST_INDEX : WRIST_INDEX + 1]) * MM
            gt["w_vertices"] = w_v
            gt["vertices_2d"] = project_points(verts, batch["K"].float()[:, None], min_depth=1e-3)
        return gt

    def _estimate_terms(self, out: Mapping[str, torch.Tensor], k: int, gt: Mapping[str, torch.Tensor],
                        faces: torch.Tensor, edges: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms (unweighted) of estimate ``k`` (0 initial; refined stages also get seg / dense)."""
        size = self.image_size
        terms = {
            "joints_3d": _smooth_l1(out["joints"][k].float() * MM, gt["joints_3d"], gt["w_joints_3d"]),
            "joints_2d": _smooth_l1(normalized_to_pixels(out["joints_2d"][k].float(), size), gt["joints_2d"],
                                    gt["w_joints_2d"]),
            "offset": _smooth_l1(out["offset"][k].float() * MM, gt["offset"], gt["w_offset"]),
        }
        if "vertices_3d" in gt:
            pred = out["vertices"][k].float() * MM  # (B, 2, V, 3)
            w_v = gt["w_vertices"]
            terms["mesh_3d"] = _smooth_l1(pred, gt["vertices_3d"], w_v[..., None])
            terms["mesh_2d"] = _smooth_l1(normalized_to_pixels(out["vertices_2d"][k].float(), size),
                                          gt["vertices_2d"], w_v[..., None])
            hand = torch.arange(NUM_HANDS, device=pred.device)[:, None, None]
            tri_gt = gt["vertices_3d"][:, hand, faces]  # (B, 2, F, 3, 3)
            tri = pred[:, hand, faces]
            normal = _unit(torch.linalg.cross(tri_gt[..., 1, :] - tri_gt[..., 0, :],
                                              tri_gt[..., 2, :] - tri_gt[..., 0, :], dim=-1))  # (B, 2, F, 3)
            cos = [(_unit(tri[..., (i + 1) % 3, :] - tri[..., i, :]) * normal).sum(-1).abs() for i in range(3)]
            terms["normal"] = _masked_mean(torch.stack(cos, -1).mean(-1), w_v[..., None])
            e_pred = torch.linalg.vector_norm(pred[:, :, edges[:, 0]] - pred[:, :, edges[:, 1]], dim=-1)
            e_gt = torch.linalg.vector_norm(gt["vertices_3d"][:, :, edges[:, 0]] - gt["vertices_3d"][:, :, edges[:, 1]],
                                            dim=-1)
            terms["edge"] = _masked_mean((e_pred - e_gt).abs(), w_v[..., None])
        if k > 0:
            terms["seg"] = _masked_mean((out["seg"][k - 1].float() - gt["seg"]) ** 2, gt["w_seg"])
            terms["dense"] = _masked_mean((out["dense"][k - 1].float() - gt["dense"]) ** 2, gt["w_dense"])
        terms["total"] = sum(self.loss_weights[name] * value for name, value in terms.items())
        return terms

    def stage_losses(self, model_out: Mapping[str, torch.Tensor], batch: Mapping[str, Any],
                     include_initial: bool = False) -> list[dict[str, torch.Tensor]]:
        """Per-estimate loss terms (Eq. 3-5 and the pixel-wise, normal and edge terms), unweighted plus ``total``.

        Args:
            model_out: :meth:`DIRNet.forward_image` output.
            batch: :meth:`collate` output (on the model's device).
            include_initial: prepend the initial estimate's terms.

        Returns:
            ``T`` dicts (one per refinement stage; ``T + 1`` with the initial estimate first) of scalar tensors:
            ``joints_3d`` (mm), ``joints_2d`` (px), ``offset`` (mm), with vertices ``mesh_3d``, ``mesh_2d``,
            ``normal`` (|cos|), ``edge`` (mm); refined stages also ``seg`` and ``dense`` (MSE); and the weighted
            ``total``.
        """
        gt = self._targets(batch, model_out["vertices"].shape[-2])
        return self._stage_losses(model_out, gt, include_initial)

    def _stage_losses(self, model_out: Mapping[str, torch.Tensor], gt: Mapping[str, torch.Tensor],
                      include_initial: bool) -> list[dict[str, torch.Tensor]]:
        faces, edges = self._mesh_topology(model_out["vertices"].device)
        first = 0 if include_initial else 1
        return [self._estimate_terms(model_out, k, gt, faces, edges) for k in range(first, self.num_stages + 1)]

    def loss(self, model_out: Mapping[str, torch.Tensor], batch: Mapping[str, Any]
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss: the ``T`` refined stages' weighted terms plus ``w_initial`` times the initial estimate's.

        Returns:
            ``(total, parts)``; ``parts`` holds every term summed over the refined stages (unweighted, in the
            units of :meth:`stage_losses`), ``stage{k}`` (weighted total of stage ``k``), ``initial``, and the
            monitoring errors ``mpjpe_mm`` / ``mpjpe_mm_initial`` (mean wrist-relative joint error of the last /
            initial estimate, millimetres; not optimised).
        """
        gt = self._targets(batch, model_out["vertices"].shape[-2])
        losses = self._stage_losses(model_out, gt, include_initial=True)
        initial, refined = losses[0], losses[1:]
        total = self.w_initial * initial["total"] + sum(stage["total"] for stage in refined)
        parts: dict[str, torch.Tensor] = {}
        if "keypoint_logits" in model_out:
            heat = center_focal_loss(model_out["keypoint_logits"], batch["dir_kp_hm"])
            total = total + self.w_keypoints * heat
            parts["keypoints"] = heat.detach()
        if "attention" in model_out and self.w_attention > 0:
            attn = model_out["attention"].float().clamp(1e-6, 1.0 - 1e-6)
            size = attn.shape[-1]
            target = F.adaptive_avg_pool2d(batch["dir_seg"].float(), size)  # visible area fraction per c5 cell
            bce = F.binary_cross_entropy(attn, target, reduction="none").mean(dim=(-2, -1))  # (B, 2)
            att = _masked_mean(bce, batch["dir_has_seg"].float()[:, None] * batch["dir_present"].float())
            total = total + self.w_attention * att
            parts["attention"] = att.detach()
        for name in refined[0]:
            if name != "total":
                parts[name] = sum(stage[name] for stage in refined).detach()
        for k, stage in enumerate(refined, start=1):
            parts[f"stage{k}"] = stage["total"].detach()
        parts["initial"] = initial["total"].detach()
        with torch.no_grad():
            for key, k in (("mpjpe_mm", -1), ("mpjpe_mm_initial", 0)):
                err = torch.linalg.vector_norm(model_out["joints"][k].float() * MM - gt["joints_3d"], dim=-1)
                parts[key] = _masked_mean(err, gt["w_joints_3d"])
        return total, parts

    # -------------------------------------------------------------------------------------------- prediction
    def predict(self, model_out: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Both hands of every crop, in the frame of the sample given to :meth:`encode_targets`.

        The estimate ``predict_stage`` is placed in the crop camera frame by :func:`crop_result_to_camera`
        (crop ``K``; pair placed by ``O`` or by each camera, see ``placement``), then mapped back with
        ``dir_rotation`` (3D) and the inverse of ``dir_affine`` (2D: the weak-perspective projections, the
        quantity the 2D loss trains); handedness is swapped back for flipped crops.

        Returns:
            one dict per image with ``handedness (2,) int64``, ``score (2,)`` (1.0: the refiner does not detect),
            ``bbox (2, 4)`` (box of the projected vertices, pixels xyxy), ``keypoints_2d (2, 21, 2)`` pixels,
            ``joints_3d (2, 21, 3)`` and ``vertices_3d (2, V, 3)`` metres in the sample's camera frame.
        """
        k = self.predict_stage
        size = self.image_size
        cam = model_out["cam"][k].detach().float()
        b = cam.shape[0]
        center = torch.full((b, 2), size / 2.0, device=cam.device)
        offset = model_out["offset"][k].detach().float() if self.placement == "offset" else None
        K = batch["K"].float()
        joints = crop_result_to_camera(cam, model_out["joints"][k].detach().float(), center, float(size), K, offset)
        verts = crop_result_to_camera(cam, model_out["vertices"][k].detach().float(), center, float(size), K, offset)
        rotation = batch["dir_rotation"].double().cpu().numpy()
        affine = batch["dir_affine"].double().cpu().numpy()
        flipped = batch["dir_flipped"].cpu().numpy() > 0.5
        kp_crop = normalized_to_pixels(model_out["joints_2d"][k].detach().double(), size).cpu().numpy()
        v2_crop = normalized_to_pixels(model_out["vertices_2d"][k].detach().double(), size).cpu().numpy()
        joints, verts = joints.double().cpu().numpy(), verts.double().cpu().numpy()
        preds = []
        for i in range(b):
            a_inv = np.linalg.inv(affine[i, :, :2])  # crop pixels -> sample pixels: (u_c - t) A^-T
            v2 = (v2_crop[i] - affine[i, :, 2]) @ a_inv.T
            handedness = np.array(SLOTS, dtype=np.int64)
            preds.append({
                "handedness": 1 - handedness if flipped[i] else handedness,
                "score": np.ones(NUM_HANDS, dtype=np.float32),
                "bbox": np.concatenate([v2.min(1), v2.max(1)], axis=-1).astype(np.float32),
                "keypoints_2d": ((kp_crop[i] - affine[i, :, 2]) @ a_inv.T).astype(np.float32),
                "joints_3d": (joints[i] @ rotation[i]).astype(np.float32),
                "vertices_3d": (verts[i] @ rotation[i]).astype(np.float32),
            })
        return preds
