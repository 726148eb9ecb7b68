"""ACR: Attention Collaboration-based Regressor for arbitrary two-hand reconstruction (registered as ``"acr"``).

Spec: Yu et al., CVPR 2023, ``shared/papers/acr_attention_collaboration_regressor.txt`` (sections and equations
cited below). One image in, at most one left and one right hand out (Sec. 4, "Testing"), no hand detector.

Network (:class:`ACRNet`)::

    image (B, 3, S, S) --backbone--> c3, c4, c5 --top-down neck--> F (B, C, S/8, S/8) --CoordConv--> (C + 2)
      |-- parameter map     M_p (B, 218, h, w)   2 hands x [16 x 6 pose (6D) + 10 shape + 3 camera]   (Sec. 3.2)
      |-- hand centre map   A_c (B, 2, h, w)     Gaussian centre logits per hand
      |-- part segmentation A_p (B, 33, h, w)    1 background + 16 parts per hand        (variants with P)
      `-- cross-hand prior  M_c (B, 218, h, w)   same layout as M_p                       (variants with C)
    F_g^h  = f_g(sigma(A_c^h) (x) M_p^h)                                  global representation, Eq. 2
    F_p^h  = sigma(A_p^h*)^T M_p^h*             (16 x 109)                part representation, Eq. 3
    F_c^h  = f_c(sigma(A_c^h') (x) M_c^h)       (h' = the other hand)     cross-hand inverse query, Eq. 4
    F_out^h = F_g^h + f_out(concat(F_g^h, F_p^h*, lambda F_c^h))        Eq. 5 (+ a skip, see below)
    F_out^h (109) -> 6D pose (16 x 6), betas (10), weak-perspective camera (s, t_x, t_y) -> hand layer

``h = S / 8`` cells (the paper: 512 x 512 input, 64 x 64 maps, Sec. 4). The paper uses HRNet-W32 (128 x 128
backbone features) or ResNet-50; here any :func:`~hand_recon_core.models.backbones.build_backbone` ResNet with a
small top-down neck (lateral 1x1 convolutions on c3/c4/c5, nearest upsampling, sum, 3x3 conv) that brings the
stride-32 features back to stride 8.

Channel layout: the paper lists the left hand first; here the two per-hand blocks of every map (centre
channels, 109-channel parameter / prior blocks, part-segmentation classes) are indexed by the project's
handedness code, slot 0 = ``RIGHT``, slot 1 = ``LEFT`` (:mod:`hand_recon_core.data.sample`), which is also the
order of the 33-class ``part_seg`` convention (1-16 right, 17-32 left). A 109-vector is
``[6D pose of the 16 joints (global orient first, then MANO native joints 1-15), betas (10), log-scale offset,
t_x, t_y]``.

Camera (Sec. 3.5): the paper's weak perspective ``x_2d = s x_3d + t`` on wrist-relative joints (camera-frame
orientation, metres) in normalised input coordinates ``x_n = 2 u / S - 1``
(:func:`~hand_recon_core.geometry.cameras.pixels_to_normalized`); ``s = init_cam_scale * exp(raw)`` stays
positive. In the project's convention (``x_n = s (X + t')``, :mod:`hand_recon_core.geometry.cameras`) this is
``cam = (s, t_x / s, t_y / s)``, which
:func:`~hand_recon_core.geometry.cameras.crop_weak_perspective_to_full_translation` turns into the wrist
position in the camera frame with the input image's intrinsics ``K`` (the whole letterboxed input is the "crop":
centre ``(S/2, S/2)``, side ``S``): ``T_z = (f_x + f_y) / (s S)``, and for square pixels (``f_x = f_y``) the
wrist projects exactly to ``t``. Since a weak-perspective scale stands for the depth of the whole hand, predictions
put the hand's mean joint depth (not the wrist) at ``T_z``, sliding the wrist along its viewing ray (see
:func:`weak_perspective_to_camera`; on synthetic data this cut the absolute wrist error about 4x).

Implementation choices not fixed by the paper (all documented where they live):

* Pixel-aligned translation: the ``t`` channels of the parameter map get the cell's own normalised coordinates
  added (the CoordConv channels), so each cell predicts the wrist position as an offset from itself; the pooled
  value is then the attention-weighted location plus offset.
* ``f_g`` and ``f_out`` are residual (``F_g = x + MLP(x)``, ``F_out = F_g + MLP(concat(...))``, last layers
  zero-initialised), so training starts from the attention-pooled parameter map; ``f_c`` is a plain MLP.
* The interaction field (Sec. 3.4) is computed from the network's own estimates in training and at test time
  alike (the same ``lambda`` distribution in both): centres = soft-argmax of the centre attention
  ``sigma(A_c^h)``, kernel radii ``k`` = :func:`~hand_recon_core.models.heads.center.gaussian_radius` of a box of
  side ``s * hand_extent_m * S / 2`` (``s`` of the global-stage camera). Only the hand *presence* comes from the
  ground truth while training (at test: centre score >= ``score_threshold``); ``lambda = 0`` unless both hands
  are present. (Ground-truth centres and radii in training made ``lambda`` about half its test-time value on
  synthetic data, because the metric-extent box estimate is biased for closed hands.)
* Variants without P have no part-segmentation map and no ``L_seg``; variants without C no prior map (Table 3).
* ``keypoint_lifter: true`` (ours, off by default; not in the paper): a 2D keypoint heatmap branch (42 channels =
  21 joints per slot, stride 4, from its own c3/c4/c5 fusion and ``c2``, the layout of the single-stage detector's
  branch, so ``keypoint_init`` can start it from a trained detector; focal loss ``w_keypoints`` on Gaussian
  targets) and the keypoint lifter of :mod:`hand_recon_core.models.heads.keypoint_lifter`: per slot, the
  soft-argmax keypoints of its 21 channels (detached; read in a window around the slot's centre, the soft-argmax of
  its centre attention), normalised by their own centre and size, plus that centre and size (what the camera
  entries need), go through an MLP whose output (zero at initialisation) is added to
  ``F_out``. Why: trained from scratch on a CPU budget, the regressed global
  orientation stays random and hands collapse to points (``training/results/RESULTS.md``), while heatmaps learn
  and 2D keypoints determine the 3D hand well; the same fix made the single-stage detector beat its baseline.
  Every variant of Table 3 can carry it, so the ablation still isolates G, P and C.

Losses (Sec. 3.5, Eqs. 6-11; weights from the paper): ``L_total = L_mesh + w_c L_c + w_p L_seg`` with
``w_c = 80`` (CenterNet penalty-reduced focal loss, :func:`~hand_recon_core.models.heads.center.center_focal_loss`),
``w_p = 160`` (cross-entropy over the 33 classes at map resolution, Eq. 7), ``L_mesh = L_mano + L_joint``:
``w_pose = 80`` (squared error of the 16 x 6 6D pose), ``w_shape = 10`` (betas), ``w_j3d = 200`` (MPJPE,
wrist-relative, metres, :func:`~hand_recon_core.losses.keypoints.root_relative_joint_loss`), ``w_pa3d = 360``
(PA-MPJPE, metres; the Procrustes alignment is held at its optimum, no gradient through the SVD), ``w_pj2d = 400``
(squared 2D error of the weak-perspective projection, normalised units), ``w_bl = 200`` (sum over the 20 bones
of squared length errors, metres^2). Each term is active only where its ground truth is (``has_params``,
``has_3d``, ``joint_valid``, ``part_seg``). Sec. 3.5 supervises ``L_seg`` "in the first 2 epochs" following PARE
[11]; ``seg_supervision_steps`` applies it for that many training steps (None: always).

Data flow: :meth:`ACRMethod.encode_targets` letterboxes the sample to ``S x S`` (zero padding, aspect kept, as
Sec. 4) and encodes the targets; :meth:`ACRMethod.predict` maps 2D results back to the original image's pixels
(3D results are in the camera frame, which letterboxing does not change).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hand_recon_core.data.augment import letterbox_matrix, warp_sample
from hand_recon_core.data.sample import (
    HANDEDNESS_NAMES,
    LEFT,
    NUM_BETAS,
    NUM_JOINTS,
    PART_SEG_NUM_CLASSES,
    PART_SEG_PARTS_PER_HAND,
    RIGHT,
    collate_samples,
)
from hand_recon_core.geometry.cameras import (
    crop_weak_perspective_to_full_translation,
    normalized_to_pixels,
    pixels_to_normalized,
)
from hand_recon_core.geometry.procrustes import apply_similarity, procrustes_align
from hand_recon_core.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    rot6d_to_matrix,
)
from hand_recon_core.hand_model.constants import NUM_KINEMATIC_JOINTS
from hand_recon_core.hand_model.joint_orders import JOINT_NAMES, bone_lengths, bone_pairs
from hand_recon_core.losses.keypoints import root_relative_joint_loss
from hand_recon_core.models.backbones import build_backbone
from hand_recon_core.models.heads.acr_attention import (
    CoordConv,
    MapHead,
    PointwiseMLP,
    cell_to_pixel_coords,
    interaction_intensity,
    pixel_to_cell_coords,
    repel_centers,
    spatial_softmax,
)
from hand_recon_core.models.heads.center import (
    center_focal_loss,
    decode_peaks,
    encode_center_heatmap,
    gaussian_radius,
)
from hand_recon_core.models.heads.keypoint_lifter import (
    SLOT_KEYPOINT_STRIDE,
    lift_slot_keypoints,
    load_detector_keypoints,
    slot_keypoint_heatmaps,
    slot_keypoint_modules,
)
from hand_recon_core.models.registry import register_method

__all__ = [
    "ACRMethod",
    "ACRNet",
    "ACROnnxModule",
    "ACR_TARGET_KEYS",
    "CAM_DIM",
    "MAP_STRIDE",
    "MCP_INDICES",
    "NUM_SLOTS",
    "PARAM_DIM",
    "PARAM_MAP_CHANNELS",
    "POSE_6D_DIM",
    "VARIANTS",
    "decode_params",
    "encode_acr_targets",
    "export_onnx",
    "weak_perspective_to_camera",
]

#: Hand slots of every per-hand map block, indexed by handedness code (0 = RIGHT, 1 = LEFT).
NUM_SLOTS = 2
#: 6D pose of the 16 kinematic joints (Sec. 3.1: theta in R^{16 x 6}).
POSE_6D_DIM = NUM_KINEMATIC_JOINTS * 6
#: Camera parameters per hand (s, t_x, t_y).
CAM_DIM = 3
#: Per-hand parameter vector: 16 x 6 + 10 + 3 = 109 (Sec. 3.2).
PARAM_DIM = POSE_6D_DIM + NUM_BETAS + CAM_DIM
#: Parameter map / cross-hand prior map channels: 2 x 109 = 218 (Sec. 3.2).
PARAM_MAP_CHANNELS = NUM_SLOTS * PARAM_DIM
#: Stride of the four output maps w.r.t. the input (512 -> 64 in the paper, Sec. 4).
MAP_STRIDE = 8
#: Identity rotation in the 6D layout of :func:`rot6d_to_matrix` (first two columns of I).
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
#: Offsets of the camera entries inside a 109-vector.
_SCALE_INDEX = POSE_6D_DIM + NUM_BETAS
_TRANS_SLICE = slice(_SCALE_INDEX + 1, PARAM_DIM)
#: Clamp of the log-scale offset (keeps exp finite; s stays within init_cam_scale * e^+-8).
_LOG_SCALE_CLAMP = 8.0
#: Initial bias of the centre logits: CenterNet's prior probability 0.1 (-log(9)).
CENTER_BIAS_INIT = -2.19
#: ImageNet normalisation of RGB in [0, 1] (the torchvision backbones' weights expect it).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Default backbone when the config names none (the paper's ResNet-50 variant, Table 3).
DEFAULT_BACKBONE = "resnet50"
#: mano21 indices of the five MCP joints ("the joints that connect fingers with palm", Sec. 3.2).
MCP_INDICES: tuple[int, ...] = tuple(i for i, n in enumerate(JOINT_NAMES["mano21"]) if n.endswith("_mcp"))
#: Ablation variants of Table 3: G (global), P (part), C (cross-hand prior). "P" alone is not supported.
VARIANTS: dict[str, tuple[bool, bool]] = {  # name -> (use_part, use_cross)
    "G": (False, False),
    "G+C": (False, True),
    "G+P": (True, False),
    "G+C+P": (True, True),
}
#: Keys added by :func:`encode_acr_targets` (and stacked by :meth:`ACRMethod.collate`).
ACR_TARGET_KEYS = (
    "acr_heatmap", "acr_part_seg", "acr_present", "acr_center_cells", "acr_radius", "acr_has_params",
    "acr_pose6d", "acr_betas", "acr_has_3d", "acr_joints_rel", "acr_joint_valid", "acr_kp2d", "acr_affine",
    "acr_raw_size", "acr_kp_hm",
)  # fmt: skip
#: Stride of the optional keypoint heatmaps (``keypoint_lifter``), input pixels.
KEYPOINT_STRIDE = SLOT_KEYPOINT_STRIDE


def _variant_flags(variant: str) -> tuple[bool, bool]:
    key = variant.replace(" ", "").upper()
    if key not in VARIANTS:
        raise ValueError(f"ACR variant must be one of {sorted(VARIANTS)} (Table 3 of the paper), got {variant!r}")
    return VARIANTS[key]


# ------------------------------------------------------------------------------------------------------------
# parameters and camera
# ------------------------------------------------------------------------------------------------------------


def decode_params(vec: torch.Tensor, init_cam_scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split 109-vectors into 6D pose, betas and the weak-perspective camera.

    Args:
        vec: (..., 109) raw parameter vectors (layout in the module docstring).
        init_cam_scale: scale ``s`` for a zero log-scale entry (normalised units per metre).

    Returns:
        ``pose6d (..., 16, 6)`` (raw 6D offsets plus the identity, :func:`rot6d_to_matrix` layout; joint 0 is
        the global orientation in the camera frame), ``betas (..., 10)``, ``cam (..., 3)`` = ``(s, t_x, t_y)``
        of the paper's ``x_n = s X + t`` (``s > 0`` per metre, ``t`` normalised units).
    """
    ident = vec.new_tensor(IDENTITY_6D)
    pose6d = vec[..., :POSE_6D_DIM].unflatten(-1, (NUM_KINEMATIC_JOINTS, 6)) + ident
    betas = vec[..., POSE_6D_DIM:_SCALE_INDEX]
    scale = init_cam_scale * torch.exp(vec[..., _SCALE_INDEX].clamp(-_LOG_SCALE_CLAMP, _LOG_SCALE_CLAMP))
    cam = torch.cat([scale[..., None], vec[..., _TRANS_SLICE]], dim=-1)
    return pose6d, betas, cam


def weak_perspective_to_camera(cam: torch.Tensor, K: torch.Tensor, input_size: int,
                               points_rel: torch.Tensor | None = None) -> torch.Tensor:
    """Wrist position in the camera frame from the paper's weak-perspective camera of the whole input image.

    The network sees the ``S x S`` (letterboxed) input with intrinsics ``K`` and predicts ``(s, t_x, t_y)`` with
    ``x_n = s X + t_x`` for wrist-relative points (``x_n = 2 u / S - 1``). In the geometry module's convention
    this is ``(s, t_x / s, t_y / s)`` on a crop centred at ``(S/2, S/2)`` of side ``S``; then
    :func:`~hand_recon_core.geometry.cameras.crop_weak_perspective_to_full_translation` gives
    ``T_z = (f_x + f_y) / (s S)``, ``T_x = (t_x / s) + (S/2 - c_x) T_z / f_x`` (likewise y). For square pixels
    (``f_x = f_y``, any principal point) the wrist ``T`` projects with ``K`` exactly to the pixel
    ``u = (t_x + 1) S / 2`` where the weak perspective puts it; with ``f_x != f_y`` the geometry module keeps the
    metric offsets ``t / s`` and uses the mean focal length for depth, so the wrist pixel is off by
    ``(u - S/2) (f_x - f_y) / (f_x + f_y)`` in x (likewise y). Other joints agree up to the weak-perspective
    approximation (depth variation within the hand).

    Reference depth: weak perspective images every point as if it lay at one depth ``T_z``; fitted to a
    perspective image, that depth is (to first order) the mean depth of the fitted points, not the wrist's. With
    ``points_rel`` (the wrist-relative joints the 2D loss fits) the result is scaled along the wrist's viewing
    ray so that the points' mean depth is ``T_z``: ``T' = T (T_z - mean z_rel) / T_z``; the wrist pixel is
    unchanged.

    Args:
        cam: (..., 3) ``(s, t_x, t_y)``, ``s > 0``.
        K: (..., 3, 3) intrinsics of the input image, pixels (broadcast against ``cam``'s leading dims).
        input_size: ``S``, pixels.
        points_rel: optional (..., N, 3) wrist-relative points, camera-frame orientation, metres.

    Returns:
        (..., 3) wrist position, camera (optical) frame, metres.
    """
    s = cam[..., 0:1]
    geom = torch.cat([s, cam[..., 1:3] / s], dim=-1)
    centre = torch.full_like(cam[..., 1:3], input_size / 2.0)
    wrist = crop_weak_perspective_to_full_translation(geom, centre, float(input_size), K)
    if points_rel is None:
        return wrist
    tz = wrist[..., 2:3]
    return wrist * (tz - points_rel[..., 2].mean(-1, keepdim=True)) / tz


# ------------------------------------------------------------------------------------------------------------
# network
# ------------------------------------------------------------------------------------------------------------


class ACRNeck(nn.Module):
    """Top-down fusion of the backbone's c3/c4/c5 into one stride-8 feature map.

    Args:
        in_channels: channels of ``c3``, ``c4``, ``c5`` (``backbone.out_channels``).
        out_channels: channels ``C`` of the fused map.
    """

    def __init__(self, in_channels: Mapping[str, int], out_channels: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleDict({k: nn.Conv2d(in_channels[k], out_channels, 1) for k in ("c3", "c4", "c5")})
        self.smooth = nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                                    nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``{"c3": (B, ., S/8, S/8), "c4": ..., "c5": ...}`` -> (B, C, S/8, S/8)."""
        x = self.lateral["c5"](feats["c5"])
        x = self.lateral["c4"](feats["c4"]) + F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.lateral["c3"](feats["c3"]) + F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.smooth(x)


class ACRNet(nn.Module):
    """The ACR network (module docstring): image -> four maps -> per-hand parameters -> hand meshes.

    Args:
        backbone: a ResNet from :func:`~hand_recon_core.models.backbones.build_backbone`.
        hand_layers: ``[right, left]`` hand layers (``pose_repr="6d"``, ``flat_hand_mean=True``), indexed by
            handedness code.
        input_size: side ``S`` of the square input, pixels (multiple of 32).
        variant: ``"G"``, ``"G+C"``, ``"G+P"`` or ``"G+C+P"`` (Table 3).
        feature_channels: channels ``C`` of the neck output (before CoordConv).
        head_channels: hidden channels of each map head.
        mlp_hidden: hidden size of ``f_g``, ``f_c``, ``f_out``.
        init_cam_scale: weak-perspective scale for a zero log-scale output.
        score_threshold: centre score at which a hand counts as present (interaction field at inference).
        interaction_gamma: field sensitivity scale ``gamma`` (Sec. 3.4).
        hand_extent_m: metric hand size used to estimate the box (and hence the kernel radius) of a predicted
            hand for the interaction field at inference, metres (hand length ~0.17-0.19 m, HAND_FACTS).
        center_min_radius: lower bound of kernel radii, cells (as in the targets).
        center_min_overlap: IoU parameter of :func:`gaussian_radius` (as in the targets).
        keypoint_lifter: add the keypoint heatmap branch and lifter (module docstring; ours).
        keypoint_channels, keypoint_hidden: widths of the keypoint path's fusion and heatmap branch.
    """

    def __init__(self, backbone: nn.Module, hand_layers: Sequence[nn.Module], *, input_size: int = 512,
                 variant: str = "G+C+P", feature_channels: int = 256, head_channels: int = 256,
                 mlp_hidden: int = 512, init_cam_scale: float = 4.0, score_threshold: float = 0.25,
                 interaction_gamma: float = 2.0, hand_extent_m: float = 0.19, center_min_radius: int = 1,
                 center_min_overlap: float = 0.7, keypoint_lifter: bool = False, keypoint_channels: int = 64,
                 keypoint_hidden: int = 32) -> None:
        super().__init__()
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        if len(hand_layers) != NUM_SLOTS:
            raise ValueError("hand_layers must be [right, left]")
        self.use_part, self.use_cross = _variant_flags(variant)
        self.variant = variant
        self.input_size = int(input_size)
        self.init_cam_scale = float(init_cam_scale)
        self.score_threshold = float(score_threshold)
        self.interaction_gamma = float(interaction_gamma)
        self.hand_extent_m = float(hand_extent_m)
        self.center_min_radius = float(center_min_radius)
        self.center_min_overlap = float(center_min_overlap)

        self.backbone = backbone
        self.neck = ACRNeck(backbone.out_channels, feature_channels)
        self.coord = CoordConv(MAP_STRIDE)
        cin = feature_channels + 2
        self.param_head = MapHead(cin, head_channels, PARAM_MAP_CHANNELS, weight_std=1e-3)
        self.center_head = MapHead(cin, head_channels, NUM_SLOTS, bias_init=CENTER_BIAS_INIT)
        self.part_head = MapHead(cin, head_channels, PART_SEG_NUM_CLASSES) if self.use_part else None
        self.prior_head = MapHead(cin, head_channels, PARAM_MAP_CHANNELS) if self.use_cross else None
        self.f_g = PointwiseMLP(PARAM_DIM, mlp_hidden, PARAM_DIM, residual=True)
        self.f_c = PointwiseMLP(PARAM_DIM, mlp_hidden, PARAM_DIM) if self.use_cross else None
        f_in = PARAM_DIM * (1 + (PART_SEG_PARTS_PER_HAND if self.use_part else 0) + (1 if self.use_cross else 0))
        self.f_out = PointwiseMLP(f_in, mlp_hidden, PARAM_DIM)
        nn.init.zeros_(self.f_out.fc2.weight)
        nn.init.zeros_(self.f_out.fc2.bias)
        self.keypoint_fusion, self.keypoint_head, self.lifter = (
            slot_keypoint_modules(backbone.out_channels, PARAM_DIM, keypoint_channels, keypoint_hidden, NUM_SLOTS)
            if keypoint_lifter else (None, None, None))

        self.hand_layers = nn.ModuleList(hand_layers)
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)
        #: Training forward passes so far (drives ``seg_supervision_steps``; saved with the weights).
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.long))

    @property
    def map_size(self) -> int:
        """Side ``h = S / 8`` of the four output maps, cells."""
        return self.input_size // MAP_STRIDE

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """RGB images -> backbone input.

        Args:
            image: (B, H, W, 3) uint8 (the batch layout) or (B, 3, H, W) float, RGB in [0, 255].

        Returns:
            (B, 3, H, W) float32, ImageNet-normalised.
        """
        x = image.permute(0, 3, 1, 2) if image.shape[-1] == 3 and image.shape[1] != 3 else image
        return (x.float() - self.pixel_mean) / self.pixel_std

    def forward_image(self, pixels: torch.Tensor,
                      interaction: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
                      ) -> dict[str, torch.Tensor]:
        """The network proper (everything ONNX exports): maps, attention aggregation, per-hand parameters.

        Args:
            pixels: (B, 3, S, S) ImageNet-normalised RGB.
            interaction: optional ``(centres (B, 2, 2) cells (x, y), radii (B, 2) cells, present (B, 2))`` per
                slot for the interaction field; any entry (or the whole tuple) None is estimated from the
                predictions (module docstring). Training passes the ground-truth presence only.

        Returns:
            dict with ``center_logits (B, 2, h, w)``, ``part_logits (B, 33, h, w)`` (variants with P),
            ``pose6d (B, 2, 16, 6)``, ``betas (B, 2, 10)``, ``cam (B, 2, 3)`` (``s, t_x, t_y``),
            ``scores (B, 2)`` (max centre probability per slot), ``lam (B,)`` (interaction intensity, 0 without
            C), ``centers (B, 2, 2)`` (soft-argmax of the centre attention, cells ``(x, y)``); with the keypoint
            lifter also ``keypoint_logits (B, 42, S/4, S/4)`` (slot-major: channel ``21 k + j``) and
            ``keypoints (B, 2, 21, 2)`` (their soft-argmax, input pixels).
        """
        b = pixels.shape[0]
        size_hw = (int(pixels.shape[-2]), int(pixels.shape[-1]))
        levels = self.backbone.forward_features(pixels)
        neck = self.neck(levels)
        feats = self.coord(neck, size_hw)
        h, w = feats.shape[-2:]
        grid = feats[:, -2:]  # (B, 2, h, w) normalised cell coordinates (x_n, y_n)

        # Parameter map M_p (Sec. 3.2), per slot 109 channels; pixel-aligned translation (module docstring).
        pm = self.param_head(feats).float().view(b, NUM_SLOTS, PARAM_DIM, h, w)
        pm = torch.cat([pm[:, :, :_TRANS_SLICE.start], pm[:, :, _TRANS_SLICE] + grid[:, None].float()], dim=2)
        pm_flat = pm.reshape(b, NUM_SLOTS, PARAM_DIM, h * w)

        center_logits = self.center_head(feats)
        attn_c = spatial_softmax(center_logits).reshape(b, NUM_SLOTS, h * w)  # sigma(A_c^h)
        pooled_g = (pm_flat @ attn_c[..., None]).squeeze(-1)  # Eq. 2 pooling: (B, 2, 109)
        f_global = self.f_g(pooled_g)  # F_g^h
        pieces = [f_global]
        out: dict[str, torch.Tensor] = {"center_logits": center_logits}

        if self.use_part:
            part_logits = self.part_head(feats)
            out["part_logits"] = part_logits
            # Eq. 3 without the background channel: slot 0 = classes 1..16 (right), slot 1 = 17..32 (left).
            attn_p = spatial_softmax(part_logits[:, 1:]).reshape(b, NUM_SLOTS, PART_SEG_PARTS_PER_HAND, h * w)
            f_part = attn_p @ pm_flat.transpose(-1, -2)  # (B, 2, 16, 109) = sigma(A_p*)^T M_p*
            pieces.append(f_part.flatten(2))

        cells = torch.stack(torch.meshgrid(torch.arange(h, device=pixels.device, dtype=torch.float32),
                                           torch.arange(w, device=pixels.device, dtype=torch.float32),
                                           indexing="ij")[::-1]).reshape(2, h * w)  # (2, hw) (x, y)
        centers = attn_c @ cells.T  # (B, 2, 2) soft-argmax, cells
        scores = torch.sigmoid(center_logits.float()).amax(dim=(-2, -1))  # (B, 2)
        lam = scores[:, 0] * 0.0  # (B,) zeros (traced with the dynamic batch size)
        if self.use_cross:
            prior = self.prior_head(feats).float().view(b, NUM_SLOTS, PARAM_DIM, h * w)  # M_c
            attn_other = attn_c.flip(1)  # slot k queries with the other hand's attention (inverse query)
            f_cross = self.f_c((prior @ attn_other[..., None]).squeeze(-1))  # Eq. 4: F_c^{k' -> k}
            lam = self._interaction(centers, f_global, scores, interaction, size_hw)
            pieces.append(lam[:, None, None] * f_cross)

        f_out = f_global + self.f_out(torch.cat(pieces, dim=-1))  # Eq. 5 (+ skip from F_g)
        out["centers"] = centers
        if self.keypoint_head is not None:
            fused = self.keypoint_fusion(levels["c3"], levels["c4"], levels["c5"])
            f_out = f_out + self._lift(self.keypoint_head(fused, levels["c2"]), out)
        pose6d, betas, cam = decode_params(f_out, self.init_cam_scale)
        out.update(pose6d=pose6d, betas=betas, cam=cam, scores=scores, lam=lam, centers=centers)
        return out

    def _lift(self, keypoint_logits: torch.Tensor, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """The keypoint lifter's correction (B, 2, 109) of ``F_out``; stores the logits and keypoints in ``out``."""
        centres = cell_to_pixel_coords(out["centers"].float(), MAP_STRIDE)  # each slot's own hand, input pixels
        correction, out["keypoints"] = lift_slot_keypoints(self.lifter, keypoint_logits, self.input_size, centres)
        out["keypoint_logits"] = keypoint_logits
        return correction

    def _interaction(self, centers: torch.Tensor, f_global: torch.Tensor, scores: torch.Tensor,
                     interaction: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
                     size_hw: tuple[int, int]) -> torch.Tensor:
        """Interaction intensity ``lambda`` (B,) of Sec. 3.4 (detached; see the module docstring)."""
        c, radii, present = interaction if interaction is not None else (None, None, None)
        with torch.no_grad():
            if c is None:
                c = centers.detach()
            if radii is None:
                _, _, cam_g = decode_params(f_global.detach(), self.init_cam_scale)
                side = cam_g[..., 0] * self.hand_extent_m * (size_hw[1] / 2.0) / MAP_STRIDE  # box side, cells
                radii = gaussian_radius(side, side, self.center_min_overlap).clamp_min(self.center_min_radius)
            if present is None:
                present = scores.detach() >= self.score_threshold
            lam = interaction_intensity(c[:, LEFT].float(), c[:, RIGHT].float(), radii[:, LEFT].float(),
                                        radii[:, RIGHT].float(), self.interaction_gamma, present)
        return lam.detach()

    def pose_hands(self, pose6d: torch.Tensor, betas: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the hand layers (float32, autocast off) on the per-slot parameters.

        The layer is evaluated with identity global orientation (so its wrist stays at the rest root joint
        ``J0(betas)``) and the global rotation ``R`` of ``pose6d[:, :, 0]`` is applied about the wrist, which
        equals the layer's own global rotation (it rotates about ``J0``) without an axis-angle round trip.

        Args:
            pose6d: (B, 2, 16, 6) 6D rotations (global orient in the camera frame, then MANO joints 1-15).
            betas: (B, 2, 10).

        Returns:
            ``joints_rel (B, 2, 21, 3)`` and ``vertices_rel (B, 2, V, 3)``: wrist-relative, camera-frame
            orientation, metres (``mano21`` joints); ``rest_root (B, 2, 3)``: ``J0(betas)`` in the model frame.
        """
        dev_type = pose6d.device.type
        joints, verts, roots = [], [], []
        with torch.autocast(device_type=dev_type, enabled=False):
            for k, layer in enumerate(self.hand_layers):
                p = pose6d[:, k].float()
                out = layer(hand_pose=p[:, 1:], betas=betas[:, k].float())
                rot = rot6d_to_matrix(p[:, 0])  # (B, 3, 3)
                root = out.joints[:, :1]
                joints.append((out.joints - root) @ rot.transpose(-1, -2))
                verts.append((out.vertices - root) @ rot.transpose(-1, -2))
                roots.append(root[:, 0])
        return {"joints_rel": torch.stack(joints, 1), "vertices_rel": torch.stack(verts, 1),
                "rest_root": torch.stack(roots, 1)}

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Full forward on a batch of :meth:`ACRMethod.collate`.

        Args:
            batch: needs ``image (B, S, S, 3) uint8``; while training, ``acr_present`` (when there) gives the
                hand presence of the interaction field.

        Returns:
            :meth:`forward_image`'s dict plus :meth:`pose_hands`' and ``train_steps`` (scalar int64).
        """
        pixels = self.normalize(batch["image"])
        interaction = None
        if self.training and "acr_present" in batch:
            interaction = (None, None, batch["acr_present"] > 0)
        out = self.forward_image(pixels, interaction)
        out.update(self.pose_hands(out["pose6d"], out["betas"]))
        if self.training and torch.is_grad_enabled():
            self.train_steps += 1
        out["train_steps"] = self.train_steps.detach().clone()
        return out


class ACROnnxModule(nn.Module):
    """Export wrapper: RGB image -> the network's tensors (no hand layer, no decoding).

    Input ``image``: (B, 3, S, S) float32 RGB in [0, 255] (normalisation is inside). Outputs, in
    :attr:`output_names` order: ``center_logits (B, 2, h, w)``, ``part_logits (B, 33, h, w)`` (variants with
    P), ``pose6d (B, 2, 16, 6)``, ``betas (B, 2, 10)``, ``cam (B, 2, 3)``, ``scores (B, 2)``, ``lam (B,)``.
    """

    def __init__(self, net: ACRNet) -> None:
        super().__init__()
        self.net = net
        names = ["center_logits"] + (["part_logits"] if net.use_part else [])
        self.output_names = [*names, "pose6d", "betas", "cam", "scores", "lam"]

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net.forward_image(self.net.normalize(image))
        return tuple(out[k] for k in self.output_names)


def export_onnx(net: ACRNet, path: str | Path, batch_size: int = 1, opset: int = 17) -> list[str]:
    """Export the network (:class:`ACROnnxModule`, not the decoding) to ONNX.

    Uses the TorchScript-based exporter (``dynamo=False``: the torch.export-based one needs ``onnxscript``,
    which the project does not depend on); the batch dimension is dynamic. The model is exported in eval mode
    and put back in its previous mode.

    Args:
        net: the network.
        path: output ``.onnx`` file.
        batch_size: batch size of the example input.
        opset: ONNX opset.

    Returns:
        The output names.
    """
    module = ACROnnxModule(net)
    was_training = net.training
    net.eval()
    example = torch.zeros(batch_size, 3, net.input_size, net.input_size, device=next(net.parameters()).device)
    dynamic = {"image": {0: "batch"}, **{k: {0: "batch"} for k in module.output_names}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module, (example,), str(path), input_names=["image"], output_names=module.output_names,
                              dynamic_axes=dynamic, opset_version=opset, dynamo=False)
    finally:
        net.train(was_training)
    return list(module.output_names)


# ------------------------------------------------------------------------------------------------------------
# targets
# ------------------------------------------------------------------------------------------------------------


def _hand_center(kp: np.ndarray, visible: np.ndarray, valid: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Centre of the visible MCP joints (Sec. 3.2), else of the visible / valid keypoints, else the box centre."""
    for sel in (np.asarray(MCP_INDICES)[visible[list(MCP_INDICES)]], np.flatnonzero(visible), np.flatnonzero(valid)):
        if sel.size:
            return kp[sel].mean(axis=0)
    return np.array([0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])])


def _part_seg_at_map(part_seg: np.ndarray, stride: int) -> np.ndarray:
    """Majority class of every ``stride x stride`` block (S, S) -> (S/stride, S/stride) int64."""
    rows, cols = part_seg.shape[0] // stride, part_seg.shape[1] // stride
    block = (np.arange(rows)[:, None, None, None] * cols + np.arange(cols)[None, None, :, None])  # (h, 1, w, 1)
    labels = part_seg[: rows * stride, : cols * stride].reshape(rows, stride, cols, stride).astype(np.int64)
    codes = (np.broadcast_to(block, labels.shape) * PART_SEG_NUM_CLASSES + labels).ravel()
    counts = np.bincount(codes, minlength=rows * cols * PART_SEG_NUM_CLASSES)
    return counts.reshape(rows, cols, PART_SEG_NUM_CLASSES).argmax(axis=-1).astype(np.int64)  # ties: lowest class


def encode_acr_targets(sample: Mapping[str, Any], input_size: int, *, alpha: float = 0.5, min_radius: int = 1,
                       min_overlap: float = 0.7, keypoint_heatmaps: bool = False) -> dict[str, np.ndarray]:
    """ACR targets of one sample already at the network's input size.

    Per side (slot = handedness code) the hand with the largest box is the target (ACR handles one left and one
    right hand, Sec. 4). Its centre is the mean of its visible MCP joints (Sec. 3.2); the Gaussian radius ``k``
    follows the hand's box (:func:`~hand_recon_core.models.heads.center.gaussian_radius` on the box in cells,
    floored, at least ``min_radius``); two centres closer than ``k_L + k_R + 1`` are pushed apart by Eq. 1
    (:func:`~hand_recon_core.models.heads.acr_attention.repel_centers`) before the heatmap is drawn
    (:func:`~hand_recon_core.models.heads.center.encode_center_heatmap`).

    Args:
        sample: a sample (:mod:`hand_recon_core.data.sample`) whose image is ``input_size`` square.
        input_size: ``S``, pixels.
        alpha: repulsion intensity (Eq. 1).
        min_radius: smallest kernel radius, cells.
        min_overlap: IoU parameter of the radius rule.
        keypoint_heatmaps: draw ``acr_kp_hm`` (else it is an empty ``(0, 1, 1)`` array).

    Returns:
        dict (numpy, slot axis of size 2 first where per hand):
        ``acr_heatmap (2, h, w) float32``; ``acr_part_seg (h, w) int64`` (33-class majority per cell, -1 =
        ignore when the sample has no ``part_seg``); ``acr_present (2,)`` float32 (a target hand whose centre
        lies in the map); ``acr_center_cells (2, 2)`` float32 original (unrepelled) centres, cells ``(x, y)``, and
        ``acr_radius (2,)`` float32 kernel radii ``k``, cells (the ground-truth quantities of Eq. 1 and Sec. 3.4,
        kept for diagnostics: the network estimates its own); ``acr_has_params (2,)``, ``acr_pose6d (2, 16, 6)``
        (global orient in the camera frame + 15 local rotations, :func:`matrix_to_rot6d` layout),
        ``acr_betas (2, 10)``; ``acr_has_3d (2,)``, ``acr_joints_rel (2, 21, 3)`` (wrist-relative camera-frame
        joints, metres), ``acr_joint_valid (2, 21)``; ``acr_kp2d (2, 21, 2)`` keypoints in normalised input
        coordinates ``2 u / S - 1``; ``acr_kp_hm (42, S/4, S/4) float32`` keypoint heatmaps of the target hands'
        valid, visible, in-image joints (channel ``21 slot + joint``; CenterNet Gaussians of a box
        :data:`~hand_recon_core.models.heads.keypoint_lifter.KEYPOINT_BOX_FRACTION` of the hand's; empty
        ``(0, 1, 1)`` unless ``keypoint_heatmaps``). Flags are float32 0/1.
    """
    s = int(input_size)
    if sample["image"].shape[:2] != (s, s):
        raise ValueError(f"encode_acr_targets needs a {s}x{s} image, got {sample['image'].shape[:2]}")
    h = s // MAP_STRIDE
    handed = np.asarray(sample["handedness"])
    boxes = np.asarray(sample["bbox"], dtype=np.float64)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    picked = [-1] * NUM_SLOTS
    for slot in range(NUM_SLOTS):
        idx = np.flatnonzero(handed == slot)
        if idx.size:
            picked[slot] = int(idx[np.argmax(areas[idx])])

    centers_px = np.zeros((NUM_SLOTS, 2))
    sizes = np.ones((NUM_SLOTS, 2))
    present = np.zeros(NUM_SLOTS, dtype=bool)
    pose6d = np.tile(np.asarray(IDENTITY_6D, np.float32), (NUM_SLOTS, NUM_KINEMATIC_JOINTS, 1))
    betas = np.zeros((NUM_SLOTS, NUM_BETAS), np.float32)
    has_params = np.zeros(NUM_SLOTS, np.float32)
    has_3d = np.zeros(NUM_SLOTS, np.float32)
    joints_rel = np.zeros((NUM_SLOTS, 21, 3), np.float32)
    joint_valid = np.zeros((NUM_SLOTS, 21), np.float32)
    kp2d = np.zeros((NUM_SLOTS, 21, 2), np.float32)
    kp_drawn = np.zeros((NUM_SLOTS, NUM_JOINTS), bool)
    kp_px = np.zeros((NUM_SLOTS, NUM_JOINTS, 2))
    for slot, i in enumerate(picked):
        if i < 0:
            continue
        kp = np.asarray(sample["keypoints_2d"][i], np.float64)
        valid = np.asarray(sample["joint_valid"][i]) > 0
        visible = np.asarray(sample["joint_visible"][i]) > 0
        centers_px[slot] = _hand_center(kp, visible, valid, boxes[i])
        sizes[slot] = np.maximum(boxes[i, 2:] - boxes[i, :2], 1.0)
        present[slot] = True
        joint_valid[slot] = valid
        kp2d[slot] = pixels_to_normalized(torch.from_numpy(kp), s).numpy() * valid[:, None]
        kp_px[slot] = kp
        kp_drawn[slot] = valid & visible
        if bool(sample["has_params"][i]):
            aa = torch.from_numpy(np.asarray(sample["hand_pose"][i], np.float32)).reshape(NUM_KINEMATIC_JOINTS, 3)
            pose6d[slot] = matrix_to_rot6d(axis_angle_to_matrix(aa)).numpy()
            betas[slot] = sample["betas"][i]
            has_params[slot] = 1.0
        if bool(sample["has_3d"][i]) and valid[0] and valid.sum() >= 3:
            j = np.asarray(sample["joints_3d"][i], np.float32)
            joints_rel[slot] = (j - j[0]) * valid[:, None]
            has_3d[slot] = 1.0

    cells = pixel_to_cell_coords(torch.from_numpy(centers_px), MAP_STRIDE)
    radii = gaussian_radius(torch.from_numpy(sizes[:, 1] / MAP_STRIDE), torch.from_numpy(sizes[:, 0] / MAP_STRIDE),
                            min_overlap).floor().clamp_min(min_radius).double()
    both = torch.tensor(bool(present[LEFT] and present[RIGHT]))
    new_left, new_right = repel_centers(cells[LEFT], cells[RIGHT], radii[LEFT], radii[RIGHT], alpha, valid=both)
    repelled = cells.clone()
    repelled[LEFT], repelled[RIGHT] = new_left, new_right
    inside = ((cells >= -0.5) & (cells < h - 0.5)).all(dim=1)
    repelled = torch.where(inside[:, None], repelled.clamp(0.0, h - 1.0), repelled)  # keep repelled peaks on the map
    heatmap, _, in_map = encode_center_heatmap(
        cell_to_pixel_coords(repelled, MAP_STRIDE), torch.from_numpy(sizes), torch.arange(NUM_SLOTS), NUM_SLOTS,
        (h, h), MAP_STRIDE, min_overlap=min_overlap, min_radius=min_radius, valid=torch.from_numpy(present))
    present_f = in_map.numpy().astype(np.float32)

    kp_hm = np.zeros((0, 1, 1), np.float32)
    if keypoint_heatmaps:
        kp_hm = slot_keypoint_heatmaps(kp_px, kp_drawn, s, sizes)

    if "part_seg" in sample:
        part = _part_seg_at_map(np.asarray(sample["part_seg"]), MAP_STRIDE)
    else:
        part = np.full((h, h), -1, dtype=np.int64)
    return {
        "acr_heatmap": heatmap.numpy(),
        "acr_part_seg": part,
        "acr_present": present_f,
        "acr_center_cells": cells.numpy().astype(np.float32),
        "acr_radius": radii.numpy().astype(np.float32),
        "acr_has_params": has_params * present_f,
        "acr_pose6d": pose6d,
        "acr_betas": betas,
        "acr_has_3d": has_3d * present_f,
        "acr_joints_rel": joints_rel,
        "acr_joint_valid": joint_valid,
        "acr_kp2d": kp2d,
        "acr_kp_hm": kp_hm,
    }


# ------------------------------------------------------------------------------------------------------------
# the method
# ------------------------------------------------------------------------------------------------------------


def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum(w v) / max(sum(w), 1)`` with masked-out entries (possibly non-finite) replaced by 0."""
    w = weights.to(values.dtype)
    v = torch.where(w > 0, values, torch.zeros_like(values))
    return (v * w).sum() / w.sum().clamp_min(1.0)


@register_method("acr")
class ACRMethod:
    """ACR as a registered method (:class:`~hand_recon_core.models.registry.MethodProtocol`).

    Keyword arguments (``method.kwargs`` of a config):

    Args:
        variant: ablation variant of Table 3: ``"G"`` (global representation only, the baseline), ``"G+C"``,
            ``"G+P"`` (global + part attention), ``"G+C+P"`` (full ACR, default).
        input_size: side ``S`` of the letterboxed square input, pixels (paper: 512).
        feature_channels: neck output channels (before CoordConv).
        head_channels: hidden channels of the four map heads.
        mlp_hidden: hidden size of the point-wise MLPs.
        init_cam_scale: weak-perspective scale for a zero output (normalised units per metre).
        score_threshold: test-time confidence threshold (paper: 0.25, Sec. 4).
        repulsion_alpha: intensity ``alpha`` of the centre repulsion (Eq. 1; not reported, 0.5 = just touching).
        interaction_gamma: field sensitivity ``gamma`` of the interaction field (Sec. 3.4; not reported).
        hand_extent_m: metric hand size for the inference-time kernel radius estimate, metres.
        center_min_radius: smallest Gaussian radius of the centre targets, cells.
        center_min_overlap: IoU parameter of the Gaussian radius rule.
        w_center, w_seg: ``w_c = 80``, ``w_p = 160`` (Eq. 11).
        w_pose, w_shape: ``w_pose = 80``, ``w_shape = 10`` (Eq. 9).
        w_j3d, w_pa3d, w_pj2d, w_bone: ``200, 360, 400, 200`` (Eq. 10).
        seg_supervision_steps: apply ``L_seg`` only during this many training steps (paper: the first 2 epochs,
            following PARE); None = always.
        keypoint_lifter: the keypoint heatmap branch + lifter (ours, module docstring); ``w_keypoints`` weights
            its focal loss (as ``w_c`` the centre map's); ``keypoint_channels`` / ``keypoint_hidden`` its widths;
            ``keypoint_init`` a single-stage checkpoint whose keypoint branch initialises it (training only: a
            trained checkpoint holds the weights).
    """

    def __init__(self, variant: str = "G+C+P", input_size: int = 512, feature_channels: int = 256,
                 head_channels: int = 256, mlp_hidden: int = 512, init_cam_scale: float = 4.0,
                 score_threshold: float = 0.25, repulsion_alpha: float = 0.5, interaction_gamma: float = 2.0,
                 hand_extent_m: float = 0.19, center_min_radius: int = 1, center_min_overlap: float = 0.7,
                 w_center: float = 80.0, w_seg: float = 160.0, w_pose: float = 80.0, w_shape: float = 10.0,
                 w_j3d: float = 200.0, w_pa3d: float = 360.0, w_pj2d: float = 400.0, w_bone: float = 200.0,
                 seg_supervision_steps: int | None = None, keypoint_lifter: bool = False,
                 w_keypoints: float = 80.0, keypoint_channels: int = 64, keypoint_hidden: int = 32,
                 keypoint_init: str | None = None) -> None:
        self.use_part, self.use_cross = _variant_flags(variant)
        self.variant = variant
        if int(input_size) % 32 or int(input_size) <= 0:
            raise ValueError(f"input_size must be a positive multiple of 32, got {input_size}")
        if not 0.0 < score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {score_threshold}")
        if not 0.0 < center_min_overlap < 1.0:
            raise ValueError(f"center_min_overlap must be in (0, 1), got {center_min_overlap}")
        for name, value in (("init_cam_scale", init_cam_scale), ("hand_extent_m", hand_extent_m),
                            ("interaction_gamma", interaction_gamma)):
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if repulsion_alpha < 0 or center_min_radius < 0:
            raise ValueError("repulsion_alpha and center_min_radius must be >= 0")
        self.input_size = int(input_size)
        self.net_kwargs = dict(input_size=self.input_size, variant=variant, feature_channels=int(feature_channels),
                               head_channels=int(head_channels), mlp_hidden=int(mlp_hidden),
                               init_cam_scale=float(init_cam_scale), score_threshold=float(score_threshold),
                               interaction_gamma=float(interaction_gamma), hand_extent_m=float(hand_extent_m),
                               center_min_radius=int(center_min_radius),
                               center_min_overlap=float(center_min_overlap), keypoint_lifter=bool(keypoint_lifter),
                               keypoint_channels=int(keypoint_channels), keypoint_hidden=int(keypoint_hidden))
        if keypoint_init and not keypoint_lifter:
            raise ValueError("keypoint_init needs keypoint_lifter: true")
        self.keypoint_init = keypoint_init
        self.score_threshold = float(score_threshold)
        self.repulsion_alpha = float(repulsion_alpha)
        self.center_min_radius = int(center_min_radius)
        self.center_min_overlap = float(center_min_overlap)
        self.weights = {"center": float(w_center), "seg": float(w_seg), "pose": float(w_pose),
                        "shape": float(w_shape), "j3d": float(w_j3d), "pa3d": float(w_pa3d), "pj2d": float(w_pj2d),
                        "bone": float(w_bone), "keypoints": float(w_keypoints)}
        self.seg_supervision_steps = None if seg_supervision_steps is None else int(seg_supervision_steps)

    # -------------------------------------------------------------------------------------------- build
    def build_network(self, backbone: str = DEFAULT_BACKBONE, pretrained: str | None = None,
                      hand_model_id: str = "open") -> ACRNet:
        """The network with a named backbone (``pretrained``: torchvision-format weights path) and hand model."""
        from hand_recon_core.hand_model.loader import load_hand_model

        layers = [load_hand_model(hand_model_id, side=side, pose_repr="6d", flat_hand_mean=True)
                  for side in HANDEDNESS_NAMES]  # indexed by handedness code
        net = ACRNet(build_backbone(backbone, pretrained=pretrained), layers, **self.net_kwargs)
        if self.keypoint_init:
            load_detector_keypoints(net.keypoint_fusion, net.keypoint_head, self.keypoint_init)
        return net

    def build(self, cfg: Any, hand_model_id: str) -> ACRNet:
        """The network for an experiment config (``cfg.backbone.name`` or ResNet-50, ``cfg.backbone.pretrained``)."""
        name = getattr(cfg.backbone, "name", None) or DEFAULT_BACKBONE
        return self.build_network(name, getattr(cfg.backbone, "pretrained", None), hand_model_id)

    # -------------------------------------------------------------------------------------------- data
    def encode_targets(self, sample: dict[str, Any], train: bool = False) -> dict[str, Any]:
        """Letterbox to ``S x S`` (aspect kept, zero padding; Sec. 4) and add the ``acr_*`` targets.

        Returns:
            The letterboxed sample plus :func:`encode_acr_targets`' keys, ``acr_affine (2, 3)`` float32 (raw
            pixel -> input pixel, ``u' = A u + b``) and ``acr_raw_size (2,)`` float32 (raw ``W, H``).
        """
        s = self.input_size
        raw_h, raw_w = sample["image"].shape[:2]
        affine = letterbox_matrix((raw_w, raw_h), (s, s))
        out = dict(sample) if (raw_w, raw_h) == (s, s) else warp_sample(sample, affine, (s, s))
        out.update(encode_acr_targets(out, s, alpha=self.repulsion_alpha, min_radius=self.center_min_radius,
                                      min_overlap=self.center_min_overlap,
                                      keypoint_heatmaps=self.net_kwargs["keypoint_lifter"]))
        out["acr_affine"] = affine.astype(np.float32)
        out["acr_raw_size"] = np.array([raw_w, raw_h], np.float32)
        return out

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """:func:`~hand_recon_core.data.sample.collate_samples` plus the stacked ``acr_*`` targets (B, ...)."""
        batch = collate_samples(samples)
        for key in ACR_TARGET_KEYS:
            batch[key] = torch.from_numpy(np.stack([np.asarray(s[key]) for s in samples]))
        return batch

    # -------------------------------------------------------------------------------------------- loss
    def loss(self, model_out: Mapping[str, torch.Tensor], batch: Mapping[str, Any]
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_total = L_mesh + w_c L_c + w_p L_seg`` (Eq. 11); see the module docstring for every term.

        Returns:
            ``(total, parts)``; ``parts`` holds the weighted terms (``center``, ``seg``, ``pose``, ``shape``,
            ``j3d``, ``pa3d``, ``pj2d``, ``bone``) and ``lambda`` (mean interaction intensity, not a loss).
        """
        w = self.weights
        present = batch["acr_present"].float()
        terms: dict[str, torch.Tensor] = {}
        terms["center"] = w["center"] * center_focal_loss(model_out["center_logits"], batch["acr_heatmap"])

        if self.use_part and "part_logits" in model_out:
            target = batch["acr_part_seg"].long()
            logits = model_out["part_logits"].float()
            if bool((target >= 0).any()):
                seg = F.cross_entropy(logits, target, ignore_index=-1)
            else:
                seg = logits.sum() * 0.0
            steps = int(model_out.get("train_steps", torch.zeros(())))
            if self.seg_supervision_steps is not None and steps > self.seg_supervision_steps:
                seg = seg * 0.0
            terms["seg"] = w["seg"] * seg
        if "keypoint_logits" in model_out:
            terms["keypoints"] = w["keypoints"] * center_focal_loss(model_out["keypoint_logits"], batch["acr_kp_hm"])

        # L_mano (Eq. 9): squared errors of the 16 x 6 pose and the betas.
        m_par = present * batch["acr_has_params"].float()
        pose_err = (model_out["pose6d"].float() - batch["acr_pose6d"].float()).pow(2).mean(dim=(-2, -1))
        terms["pose"] = w["pose"] * _masked_mean(pose_err, m_par)
        shape_err = (model_out["betas"].float() - batch["acr_betas"].float()).pow(2).mean(-1)
        terms["shape"] = w["shape"] * _masked_mean(shape_err, m_par)

        # L_joint (Eq. 10): MPJPE, PA-MPJPE, bone lengths (3D, wrist-relative) and the 2D reprojection.
        pred = model_out["joints_rel"].float()
        gt = batch["acr_joints_rel"].float()
        jv = batch["acr_joint_valid"].float()
        w3 = (present * batch["acr_has_3d"].float())[..., None] * jv  # (B, 2, 21)
        terms["j3d"] = w["j3d"] * root_relative_joint_loss(pred.flatten(0, 1), gt.flatten(0, 1), w3.flatten(0, 1))
        with torch.no_grad():  # alignment fixed at its optimum (envelope theorem): no gradient through the SVD
            _, transform = procrustes_align(pred.detach(), gt, mask=w3 > 0)
        aligned = apply_similarity(pred, transform)
        terms["pa3d"] = w["pa3d"] * _masked_mean(torch.linalg.vector_norm(aligned - gt, dim=-1), w3)
        pairs = torch.as_tensor(bone_pairs("mano21"), device=pred.device)
        bone_w = w3[..., pairs[:, 0]] * w3[..., pairs[:, 1]]  # (B, 2, 20)
        bone_err = ((bone_lengths(pred) - bone_lengths(gt)).pow(2) * bone_w).sum(-1)  # sum over bones
        hand_w = (present * batch["acr_has_3d"].float() * (bone_w.sum(-1) > 0))
        terms["bone"] = w["bone"] * _masked_mean(bone_err, hand_w)
        cam = model_out["cam"].float()
        proj = cam[..., None, 0:1] * pred[..., :2] + cam[..., None, 1:3]  # x = s X + t (Sec. 3.5)
        w2 = present[..., None] * jv
        terms["pj2d"] = w["pj2d"] * _masked_mean((proj - batch["acr_kp2d"].float()).pow(2).sum(-1), w2)

        total = torch.stack(list(terms.values())).sum()
        parts = {k: v.detach() for k, v in terms.items()}
        parts["lambda"] = model_out["lam"].detach().float().mean()
        return total, parts

    # -------------------------------------------------------------------------------------------- predict
    @torch.no_grad()
    def predict(self, model_out: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> list[dict[str, Any]]:
        """See :meth:`_predict` (evaluated in float32 with autocast disabled)."""
        with torch.autocast(device_type=model_out["cam"].device.type, enabled=False):
            return self._predict(model_out, batch)

    def _predict(self, model_out: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Per-image hands: centre score >= ``score_threshold``, at most one right and one left hand (Sec. 4).

        Scores are the peaks of the sigmoid centre maps (:func:`~hand_recon_core.models.heads.center.decode_peaks`,
        3x3 max-pool NMS; the best peak per channel). Every hand's parameters come from its attention-aggregated
        vector (Eqs. 2-5).

        Returns:
            One dict per image (numpy), hands sorted by descending score: ``handedness (N,) int64``,
            ``score (N,) float32``, ``bbox (N, 4)`` (box of the projected mesh, original-image pixels, clipped to
            the image), ``keypoints_2d (N, 21, 2)`` (weak-perspective projection, original-image pixels),
            ``joints_3d (N, 21, 3)`` and ``vertices_3d (N, V, 3)`` (camera frame, metres), ``hand_pose (N, 48)``
            (absolute axis-angle, global orient in the camera frame, flat hand = 0), ``betas (N, 10)``,
            ``transl (N, 3)`` (sample convention: the wrist lands at ``J0(betas) + transl``), ``cam (N, 3)``
            (the paper's ``s, t_x, t_y``), ``interaction (N,)`` (the image's ``lambda``).
        """
        s = self.input_size
        heat = torch.sigmoid(model_out["center_logits"].detach().float())
        b, _, h, w = heat.shape
        peaks = decode_peaks(heat, threshold=self.score_threshold, top_k=NUM_SLOTS * h * w)
        keep = torch.zeros(b, NUM_SLOTS, dtype=torch.bool)
        score = torch.zeros(b, NUM_SLOTS)
        for bi, ci, sc in zip(peaks.batch.tolist(), peaks.channel.tolist(), peaks.score.tolist()):
            if not keep[bi, ci]:  # peaks are sorted by descending score per image: the first is the best
                keep[bi, ci] = True
                score[bi, ci] = sc

        cam = model_out["cam"].detach().float()
        K = batch["K"].to(cam.device).float()[:, None]  # (B, 1, 3, 3)
        joints_rel = model_out["joints_rel"].detach().float()
        wrist = weak_perspective_to_camera(cam, K, s, joints_rel)  # (B, 2, 3), mean joint depth at T_z
        verts_rel = model_out["vertices_rel"].detach().float()
        joints = joints_rel + wrist[..., None, :]
        verts = verts_rel + wrist[..., None, :]
        kp_in = normalized_to_pixels(cam[..., None, 0:1] * joints_rel[..., :2] + cam[..., None, 1:3], s)
        vt_in = normalized_to_pixels(cam[..., None, 0:1] * verts_rel[..., :2] + cam[..., None, 1:3], s)
        affine = batch["acr_affine"].to(cam.device).float()  # (B, 2, 3)
        a_inv = torch.linalg.inv(affine[:, :2, :2])[:, None]  # (B, 1, 2, 2)
        shift = affine[:, None, None, :, 2]
        kp_raw = (kp_in - shift) @ a_inv.transpose(-1, -2)
        vt_raw = (vt_in - shift) @ a_inv.transpose(-1, -2)
        raw_size = batch["acr_raw_size"].to(cam.device).float()  # (B, 2) W, H
        hi = (raw_size - 1.0)[:, None, :]  # (B, 1, 2)
        zero = torch.zeros_like(hi)
        bbox = torch.cat([torch.clamp(vt_raw.amin(dim=2), zero, hi), torch.clamp(vt_raw.amax(dim=2), zero, hi)], -1)

        pose6d = model_out["pose6d"].detach().float()
        hand_pose = matrix_to_axis_angle(rot6d_to_matrix(pose6d)).flatten(-2)  # (B, 2, 48)
        transl = wrist - model_out["rest_root"].detach().float()
        lam = model_out["lam"].detach().float()

        fields = {"bbox": bbox, "keypoints_2d": kp_raw, "joints_3d": joints, "vertices_3d": verts,
                  "hand_pose": hand_pose, "betas": model_out["betas"].detach().float(), "transl": transl,
                  "cam": cam}
        fields_np = {k: v.cpu().numpy().astype(np.float32) for k, v in fields.items()}
        results = []
        for bi in range(b):
            slots = [k for k in range(NUM_SLOTS) if keep[bi, k]]
            slots.sort(key=lambda k: -float(score[bi, k]))
            pred = {"handedness": np.asarray(slots, dtype=np.int64),
                    "score": np.asarray([float(score[bi, k]) for k in slots], dtype=np.float32)}
            for key, arr in fields_np.items():
                pred[key] = arr[bi, slots] if slots else np.zeros((0, *arr.shape[2:]), np.float32)
            pred["interaction"] = np.full(len(slots), float(lam[bi]), np.float32)
            results.append(pred)
        return results
