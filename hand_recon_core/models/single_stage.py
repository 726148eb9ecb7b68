"""Single-stage weakly-supervised multi-hand reconstruction (Ren, Zhu, Zhang; the project's "single_stage").

The paper: ``shared/papers/single_stage_weakly_supervised_multi_hand.txt`` (section and equation numbers below
refer to it). One forward pass of a fully convolutional network gives a centre map whose peaks are the hands;
every cell of the stride-8 map carries the full code of the hand centred there, so any number of hands is
recovered without a detector or crops.

Architecture (Sec. III-A/B, Fig. 2; numbers from the paper unless marked "ours")
================================================================================

* **Backbone**: ResNet-50 (paper; ResNet-18/34 for the real-time configs), ImageNet-normalised RGB input
  ``S x S`` with ``S`` a multiple of 32 (paper: 224 single-hand crops, 512 multi-hand images).
* **Multi-scale fusion**: "we concatenate the feature maps of three different layers": ``c3, c4, c5`` resized to
  stride 8, concatenated, fused (1x1 + 3x3 conv, ``fuse_channels``; ours: 256).
* **Keypoint branch** (optional, "An optional branch for 2D joint heat-maps estimation"): ``delta_kp``, 21
  heatmaps at stride 4 from the fused features and ResNet's first stage ``c2``; its (sigmoid, pooled to
  stride 8) heatmaps are concatenated with the fused features before the encoder ("estimate heatmaps of
  keypoints and concatenate it with the feature map").
* **Encoder** (2 x 3x3 conv, ``head_channels``; ours: 256) -> per-cell heads at stride 8 ("the input image is
  divided into 8 x 8 cells"):

  ============== ============= ==============================================================================
  head           per cell      meaning
  ============== ============= ==============================================================================
  ``center``     1             ``delta_cp``: hand-centre heatmap logit (Eq. 3 focal loss)
  ``handedness`` 2             ``delta_lr``: per-handedness centre heatmap logits, channel = the project's
                               handedness code (``RIGHT`` = 0, ``LEFT`` = 1; the paper labels left 0 and right
                               1, the order does not matter), trained with the same focal loss
  ``params``     61            ``delta_mano``: global orientation 3 + finger pose 45 (axis-angle, radians,
                               camera frame, flat hand = 0) + shape 10 + translation code 3 (below); the
                               paper's "theta in R^51" is orientation + fingers + translation
  ``light``      27            ``delta_light``: SH lighting, 9 coefficients per RGB channel (channel-major,
                               basis of :func:`hand_recon_core.render.rasterizer.sh_basis`)
  ``texture``    V x 3         ``delta_text``: per-vertex RGB albedo ("As in [3], we directly regress per-vertex
                               RGB value"), ``V`` read from the hand layer (778 for MANO), sigmoid -> [0, 1]
  ============== ============= ==============================================================================

  The heads are 1x1-convolution MLPs (:class:`~hand_recon_core.models.heads.single_stage.PerCellHead`); the
  texture head runs only on the gathered cells during training/decoding (identical numbers to the dense map).

Camera (Sec. III-C, Eq. 6)
==========================

All hands of an image share one pinhole camera. ``intrinsics="fixed"`` (the paper: "we use the same intrinsic
matrix K ... f_x, f_y ... fixed as 512 in multi-hand setting, c_x = W/2, c_y = H/2"): ``f = focal_ratio * S``
pixels (``focal_ratio`` = 512 / 512 = 1) and the principal point at the image centre, ``(S - 1) / 2`` in the
project's integer-pixel-centre convention (the paper's ``W / 2`` in a half-pixel convention).
``intrinsics="sample"`` uses each image's own ``K`` (after the resize) instead, which makes 3D metric when the
data have real intrinsics.

A cell ``(x, y)`` turns its translation code ``(du, dv, s)`` into the camera-frame wrist (root joint) position

    z    = depth_scale * (f_x / S) * exp(s)                         (metres; s soft-clamped to [-2, 4])
    root = z K^-1 [u_c, v_c, 1]^T + offset_unit * (du, dv, 0)        (metres, camera frame)

with ``(u_c, v_c) = 8 x + 3.5, 8 y + 3.5`` the cell centre in input pixels: the wrist lies on the cell's ray,
moved sideways by ``(du, dv)`` in units of ``offset_unit`` (ours: 0.1 m; metric, so independent of the hand's
size in pixels) — with ``du = dv = 0`` the wrist projects exactly onto the cell's centre. ``depth_scale`` (ours:
0.4 m) sets ``z`` at ``s = 0``: a 0.19 m hand then spans about half the image. The hand-model translation
follows the sample convention (smplx: the wrist lands at ``J0(betas) + transl``), ``transl = root - J0(betas)``.

Decoding (Sec. III-C "We use max pooling operation to find the local maximums")
===============================================================================

``sigmoid(center)`` -> 3x3 max-pool NMS, score >= ``score_threshold``, at most ``max_hands`` per image
(:func:`~hand_recon_core.models.heads.center.decode_peaks`); handedness = arg-max of the handedness map at the
peak; the cell's parameters -> hand layer of that side -> camera-frame joints / vertices (metres), projected
keypoints and the box of the projected vertices (pixels). :meth:`SingleStageMethod.predict` maps them back to
the original image and camera (with ``intrinsics="fixed"`` the wrist keeps its pixel and its depth is scaled by
``f_image / f_fixed``, the 3D shape is unchanged).

Losses (Eq. 1: L = L_loc + L_rec + L_con; weights are constructor arguments)
============================================================================

* L_loc (Eq. 2): focal losses (Eq. 3, gamma = 2, CenterNet beta = 4) on the centre map, the handedness maps and
  the keypoint heatmaps (:func:`~hand_recon_core.models.heads.center.center_focal_loss`).
* L_rec (Eq. 7): re-projection error of the 21 joints normalised by the wrist -> middle-MCP length, plus the
  normalised 2D bone-direction error (Eq. 8); photometric error through the soft rasterizer masked by the
  rendered silhouette and the hand's skin (instance) mask (Eq. 9); joint-angle-interval and shape priors (Eq. 10).
* L_con (Eq. 11): heatmap-branch keypoints (soft-argmax inside the hand's box) vs re-projected joints.
* ``supervision="full"``: root-relative 3D joints and vertices, pose (rotation matrices) and shape where the
  ground truth has them (the paper's "L_3D", Table IV), plus the absolute wrist with ``intrinsics="sample"``.

The paper gives no numeric loss weights (only gamma = 2); the defaults here are ours, chosen so that every term
is of order 1 at initialisation (see :class:`SingleStageMethod`). Training follows the paper's two stages
(Sec. IV-A): hand crops with only the reconstruction losses (the centre is known), then multi-hand images with
every loss (``config/single_stage_*``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hand_recon_core.data.augment import AugmentConfig, CropResize, build_augmentation
from hand_recon_core.data.sample import LEFT, NUM_JOINTS, RIGHT
from hand_recon_core.geometry.cameras import backproject_pixels, project_points
from hand_recon_core.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rot6d_to_matrix
from hand_recon_core.hand_model.constants import NUM_BETAS, NUM_HAND_POSE
from hand_recon_core.hand_model.loader import load_hand_model
from hand_recon_core.hand_model.pose_sampler import PoseSampler
from hand_recon_core.losses.keypoints import (
    bone_direction_loss,
    hand_scale_2d,
    heatmap_soft_argmax,
    keypoint_consistency_loss,
    keypoint_reprojection_loss,
    root_relative_joint_loss,
)
from hand_recon_core.losses.photometric import (
    crop_images,
    crop_intrinsics,
    photometric_loss,
    render_hands,
    square_boxes,
)
from hand_recon_core.losses.priors import joint_angle_limit_loss, shape_prior_loss
from hand_recon_core.models.backbones import build_backbone
from hand_recon_core.models.heads.center import (
    cell_to_pixel,
    center_focal_loss,
    decode_peaks,
    encode_center_heatmap,
    gather_cells,
)
from hand_recon_core.models.heads.keypoint_lifter import KeypointLifter, read_keypoints
from hand_recon_core.models.heads.single_stage import (
    ConvBNReLU,
    KeypointBranch,
    MultiScaleFusion,
    PerCellHead,
    focal_bias,
)
from hand_recon_core.models.registry import register_method
from hand_recon_core.render.rasterizer import default_sh

__all__ = [
    "STRIDE",
    "KEYPOINT_STRIDE",
    "NUM_PARAMS",
    "NUM_SH",
    "PARAM_SLICES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "fixed_intrinsics",
    "cell_translation",
    "SingleStageNet",
    "SingleStageExport",
    "SingleStageMethod",
]

logger = logging.getLogger(__name__)

#: Stride of the centre / parameter maps (input pixels per cell): "divided into 8 x 8 cells" (Sec. III-B).
STRIDE = 8
#: Stride of the keypoint heatmaps (ResNet's first stage, c2).
KEYPOINT_STRIDE = 4
#: Layout of the per-cell hand-model code ``delta_mano``: name -> (start, stop).
PARAM_SLICES: dict[str, tuple[int, int]] = {
    "global_orient": (0, 3),
    "finger_pose": (3, 3 + NUM_HAND_POSE),
    "betas": (3 + NUM_HAND_POSE, 3 + NUM_HAND_POSE + NUM_BETAS),
    "camera": (3 + NUM_HAND_POSE + NUM_BETAS, 6 + NUM_HAND_POSE + NUM_BETAS),
}
#: Size of ``delta_mano``: 3 + 45 + 10 + 3 = 61, the paper's number.
NUM_PARAMS = PARAM_SLICES["camera"][1]
assert NUM_PARAMS == 61
#: Representations of the global orientation in the code: the paper's axis-angle (3 numbers, the layout above)
#: or the continuous 6D representation (Zhou et al. 2019; 6 numbers, the code grows to 64).
ORIENT_REPRS = ("axis_angle", "6d")
#: 6D code of the identity rotation (first two columns of I, as :func:`rot6d_to_matrix` reads them).
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def param_slices(orient_repr: str = "axis_angle") -> dict[str, tuple[int, int]]:
    """Layout of the per-cell code for a global-orientation representation: name -> (start, stop).

    ``"axis_angle"`` is :data:`PARAM_SLICES` (61 numbers); ``"6d"`` puts the 6D orientation first and shifts the
    other fields by 3 (64 numbers).
    """
    if orient_repr not in ORIENT_REPRS:
        raise ValueError(f"orient_repr must be one of {ORIENT_REPRS}, got {orient_repr!r}")
    extra = 3 if orient_repr == "6d" else 0
    return {k: (a + (extra if a > 0 else 0), b + extra) for k, (a, b) in PARAM_SLICES.items()}
#: Spherical-harmonics lighting coefficients per hand (3 bands x 3 channels).
NUM_SH = 27
#: ImageNet normalisation of the input (the torchvision backbone weights expect it).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Range of the log-depth code ``s`` (``z = depth_scale * f / S * exp(s)``).
LOG_DEPTH_RANGE = (-2.0, 4.0)
#: Range of the predicted shape coefficients (soft-clamped; the synthetic engine samples N(0, 1) clipped to 2.5).
BETA_RANGE = (-3.0, 3.0)
#: Smallest depth used when projecting (metres): keeps losses finite for points at or behind the camera.
MIN_PROJECTION_DEPTH = 1e-3

SUPERVISIONS = ("weak", "full")
INTRINSICS = ("fixed", "sample")


# --------------------------------------------------------------------------------------------------- camera
def soft_clamp(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Smooth clamp of ``x`` into ``(lo, hi)``: ``c + h tanh((x - c) / h)`` (centre ``c``, half-width ``h``).

    Close to the identity near the centre, never flat: the gradient stays non-zero everywhere.
    """
    c, h = (lo + hi) / 2.0, (hi - lo) / 2.0
    return c + h * torch.tanh((x - c) / h)


def fixed_intrinsics(size: int, focal_ratio: float = 1.0) -> torch.Tensor:
    """The paper's shared camera for ``size`` x ``size`` network inputs (Eq. 6).

    Args:
        size: input side S, pixels.
        focal_ratio: focal length / S (the paper: 512 / 512 = 1).

    Returns:
        (3, 3) float32 ``K`` with ``fx = fy = focal_ratio * S`` and principal point ``((S - 1) / 2, (S - 1) / 2)``
        (image centre, integer pixel centres).
    """
    f = float(focal_ratio) * size
    c = (size - 1) / 2.0
    return torch.tensor([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]], dtype=torch.float32)


def cell_translation(camera: torch.Tensor, cells: torch.Tensor, K: torch.Tensor, rest_root: torch.Tensor,
                     size: int, stride: int = STRIDE, depth_scale: float = 0.4, offset_unit: float = 0.1
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-frame wrist position and hand-model translation from a cell's translation code.

    ``z = depth_scale * (K[0, 0] / size) * exp(s)``, ``root = z K^-1 [u_c, v_c, 1] + offset_unit (du, dv, 0)``,
    ``transl = root - J0`` (module docstring, "Camera").

    Args:
        camera: (M, 3) codes ``(du, dv, s)``.
        cells: (M, 2) int64 cells ``(x, y)``.
        K: (M, 3, 3) intrinsics of the network input, pixels.
        rest_root: (M, 3) rest wrist ``J0(betas)`` of each hand, metres, model frame.
        size: input side S, pixels.
        stride: input pixels per cell.
        depth_scale: depth at ``s = 0`` for ``f = S``, metres.
        offset_unit: metres per unit of ``du``/``dv``.

    Returns:
        ``(transl, root)``: (M, 3) each, metres, camera frame.
    """
    cam = camera.float()
    uv = cell_to_pixel(cells, stride).to(cam.device)  # (M, 2)
    # soft clamp: a hard one has zero gradient outside the range, and a code that drifts there (a hand pushed to
    # the far limit early in training) could never come back
    s = soft_clamp(cam[:, 2], *LOG_DEPTH_RANGE)
    z = depth_scale * K[:, 0, 0].float() / size * torch.exp(s)
    on_ray = backproject_pixels(uv[:, None], z[:, None], K.float())[:, 0]
    offset = torch.cat([cam[:, :2] * offset_unit, torch.zeros_like(cam[:, :1])], dim=1)
    root = on_ray + offset
    return root - rest_root.float(), root


# --------------------------------------------------------------------------------------------------- hand models
class _HandModels:
    """Right and left hand layers plus their joint frames and limits, kept OUT of the network's state dict (a
    checkpoint must not carry the hand model's data, e.g. licence-restricted MANO arrays)."""

    def __init__(self, hand_model_id: str) -> None:
        self.layers = {side: load_hand_model(hand_model_id, side=name, pose_repr="axis_angle", flat_hand_mean=True)
                       for side, name in ((RIGHT, "right"), (LEFT, "left"))}
        sampler = PoseSampler(self.layers[RIGHT])  # right-hand frames / limits (the layer's when it has them)
        self.frames = torch.as_tensor(sampler.frames, dtype=torch.float32)
        self.limits = torch.as_tensor(sampler.limits, dtype=torch.float32)
        self.num_vertices = self.layers[RIGHT].num_vertices
        self.model_id = self.layers[RIGHT].model_id
        self.device = torch.device("cpu")

    def to(self, device: torch.device) -> _HandModels:
        if device != self.device:
            self.layers = {k: v.to(device) for k, v in self.layers.items()}
            self.frames, self.limits = self.frames.to(device), self.limits.to(device)
            self.device = device
        return self

    def faces(self, side: int) -> torch.Tensor:
        return self.layers[side].faces


# --------------------------------------------------------------------------------------------------- network
class SingleStageNet(nn.Module):
    """The single-stage network (module docstring, "Architecture") plus hand reconstruction and decoding.

    Args:
        backbone: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        pretrained: optional torchvision weights for the backbone.
        hand_model_id: hand model (``"open"``, ``"mano"``, a path).
        input_size: S, pixels (multiple of 32).
        fuse_channels: channels of the fused stride-8 features.
        head_channels: channels of the encoder and the heads' hidden layers.
        keypoint_branch: build the 2D keypoint heatmap branch.
        focal_ratio, intrinsics, depth_scale, offset_unit: camera (module docstring, "Camera").
        score_threshold, max_hands, nms_kernel: decoding.
        orient_repr: code of the global orientation (``"axis_angle"`` or ``"6d"``, :func:`param_slices`).
        keypoint_lifter: add the keypoint lifter (:mod:`hand_recon_core.models.heads.keypoint_lifter`; needs
            the keypoint branch) and its per-cell hand-extent output ``extent`` (log of the 2D hand size in units
            of ``input_size / 4``).
        lifter_window: the lifter's keypoint window, a fraction of the hand extent.

    Attributes:
        hands: the hand layers (not a submodule; moved to the input's device on use).
    """

    def __init__(self, backbone: str = "resnet50", pretrained: str | None = None, hand_model_id: str = "open",
                 input_size: int = 512, fuse_channels: int = 256, head_channels: int = 256,
                 keypoint_branch: bool = True, focal_ratio: float = 1.0, intrinsics: str = "fixed",
                 depth_scale: float = 0.4, offset_unit: float = 0.1, score_threshold: float = 0.3,
                 max_hands: int = 20, nms_kernel: int = 3, orient_repr: str = "axis_angle",
                 keypoint_lifter: bool = False, lifter_window: float = 0.75) -> None:
        super().__init__()
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        if keypoint_lifter and not keypoint_branch:
            raise ValueError("keypoint_lifter needs keypoint_branch=True")
        self.orient_repr = orient_repr
        self.param_slices = param_slices(orient_repr)
        self.num_params = self.param_slices["camera"][1]
        self.input_size = int(input_size)
        self.focal_ratio, self.intrinsics = float(focal_ratio), intrinsics
        self.depth_scale, self.offset_unit = float(depth_scale), float(offset_unit)
        self.score_threshold, self.max_hands, self.nms_kernel = float(score_threshold), int(max_hands), int(nms_kernel)
        self.hands = _HandModels(hand_model_id)
        self.num_vertices = self.hands.num_vertices

        self.backbone = build_backbone(backbone, pretrained)
        ch = self.backbone.out_channels
        self.fusion = MultiScaleFusion([ch["c3"], ch["c4"], ch["c5"]], fuse_channels)
        self.keypoints = (KeypointBranch(fuse_channels, ch["c2"], head_channels // 2, NUM_JOINTS)
                          if keypoint_branch else None)
        enc_in = fuse_channels + (NUM_JOINTS if keypoint_branch else 0)
        self.encoder = nn.Sequential(ConvBNReLU(enc_in, head_channels), ConvBNReLU(head_channels, head_channels))
        hidden = (head_channels,)
        self.center_head = PerCellHead(head_channels, 1, hidden, init_bias=focal_bias())
        self.handedness_head = PerCellHead(head_channels, 2, hidden, init_bias=focal_bias())
        self.param_head = PerCellHead(head_channels, self.num_params, hidden)
        self.light_head = PerCellHead(head_channels, NUM_SH, hidden, init_bias=default_sh().tolist())
        self.texture_head = PerCellHead(head_channels, self.num_vertices * 3, ())
        self.lifter_window = float(lifter_window)
        self.extent_head = PerCellHead(head_channels, 1, hidden) if keypoint_lifter else None
        self.lifter = KeypointLifter(self.num_params, NUM_JOINTS) if keypoint_lifter else None
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ dense maps
    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, S, S, 3)`` uint8 RGB -> ``(B, 3, S, S)`` float ImageNet-normalised."""
        x = image.permute(0, 3, 1, 2).float() / 255.0
        return (x - self.pixel_mean) / self.pixel_std

    def forward_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Dense outputs of the network.

        Args:
            x: (B, 3, S, S) ImageNet-normalised RGB.

        Returns:
            dict of logits / raw codes: ``center`` (B, 1, S/8, S/8), ``handedness`` (B, 2, S/8, S/8), ``keypoints``
            (B, 21, S/4, S/4) or absent, ``params`` (B, 61, S/8, S/8), ``light`` (B, 27, S/8, S/8), ``features``
            (B, head_channels, S/8, S/8) (input of the per-cell heads).
        """
        f = self.backbone.forward_features(x)
        fused = self.fusion(f["c3"], f["c4"], f["c5"])
        out: dict[str, torch.Tensor] = {}
        if self.keypoints is not None:
            kp = self.keypoints(fused, f["c2"])
            out["keypoints"] = kp
            fused = torch.cat([fused, F.avg_pool2d(torch.sigmoid(kp), 2)], dim=1)
        feat = self.encoder(fused)
        out.update(center=self.center_head(feat), handedness=self.handedness_head(feat), params=self.param_head(feat),
                   light=self.light_head(feat), features=feat)
        if self.extent_head is not None:
            out["extent"] = self.extent_head(feat)
        return out

    @property
    def extent_unit(self) -> float:
        """Input pixels of a zero ``extent`` code (``extent = extent_unit * exp(code)``)."""
        return self.input_size / 4.0

    def cell_codes(self, maps: Mapping[str, torch.Tensor], batch: torch.Tensor, cells: torch.Tensor,
                   handedness: torch.Tensor, extent: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The hand-model code of each hand cell: the per-cell code, plus the lifter's correction when present.

        Args:
            maps: :meth:`forward_maps` output.
            batch: (M,) image of each hand; cells: (M, 2) cells ``(x, y)``; handedness: (M,) codes.
            extent: optional (M,) hand sizes, input pixels, to read the keypoints with (training: the ground
                truth's); default the predicted ``extent``.

        Returns:
            ``(codes (M, num_params), extent (M,) predicted hand size in input pixels or None without lifter)``.
        """
        y, x = cells[:, 1], cells[:, 0]
        codes = gather_cells(maps["params"], batch, y, x)
        if self.lifter is None:
            return codes, None
        predicted = self.extent_unit * torch.exp(gather_cells(maps["extent"], batch, y, x)[:, 0].float().clamp(-6, 6))
        size = predicted.detach() if extent is None else extent.float()
        centre = cell_to_pixel(cells, STRIDE)
        with torch.autocast(device_type=codes.device.type, enabled=False):
            kp = read_keypoints(maps["keypoints"].detach(), batch, centre, size, KEYPOINT_STRIDE, self.lifter_window)
            codes = codes.float() + self.lifter(kp, centre, size, handedness)
        return codes, predicted

    # ------------------------------------------------------------------ hands
    def reconstruct(self, params: torch.Tensor, light: torch.Tensor, features: torch.Tensor | None,
                    cells: torch.Tensor, handedness: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        """Hands from per-cell codes (float32, outside autocast).

        Args:
            params: (M, 61) ``delta_mano`` codes ((M, 64) with ``orient_repr="6d"``).
            light: (M, 27) SH coefficients.
            features: (M, head_channels) cell features for the texture head, or None (no albedo).
            cells: (M, 2) int64 cells ``(x, y)``.
            handedness: (M,) int64 codes (``RIGHT``/``LEFT``): which hand layer.
            K: (M, 3, 3) camera of each hand's image (network-input pixels).

        Returns:
            dict: ``global_orient`` (M, 3) axis-angle, ``orient_matrix`` (M, 3, 3), ``finger_pose`` (M, 45),
            ``betas`` (M, 10), ``transl`` (M, 3), ``root`` (M, 3), ``joints`` (M, 21, 3), ``vertices`` (M, V, 3)
            (metres, camera frame),
            ``keypoints_2d`` (M, 21, 2) pixels, ``sh`` (M, 27), ``albedo`` (M, V, 3) in [0, 1] (if features).
        """
        dev = params.device
        hands = self.hands.to(dev)
        with torch.autocast(device_type=dev.type, enabled=False):
            p = params.float()
            sl = self.param_slices
            go = p[:, slice(*sl["global_orient"])]
            if self.orient_repr == "6d":  # a zero code is the identity, as for axis-angle
                orient_matrix = rot6d_to_matrix(go + go.new_tensor(IDENTITY_6D))
                go = matrix_to_axis_angle(orient_matrix)
            else:
                orient_matrix = axis_angle_to_matrix(go)
            fp = p[:, slice(*sl["finger_pose"])]
            # bounded shape: unbounded betas let early training shrink every hand to a point (a tiny hand has a
            # smaller root-relative error than a full-size hand in a wrong pose) and stay there
            betas = soft_clamp(p[:, slice(*sl["betas"])], *BETA_RANGE)
            cam = p[:, slice(*sl["camera"])]
            m = p.shape[0]
            v = self.num_vertices
            joints = p.new_zeros(m, NUM_JOINTS, 3)
            verts = p.new_zeros(m, v, 3)
            transl = p.new_zeros(m, 3)
            root = p.new_zeros(m, 3)
            for side in (RIGHT, LEFT):
                idx = (handedness == side).nonzero().flatten()
                if idx.numel() == 0:
                    continue
                layer = hands.layers[side]
                j0 = layer.rest_joints(betas[idx])[:, 0]
                t, r = cell_translation(cam[idx], cells[idx], K[idx].float(), j0, self.input_size, STRIDE,
                                        self.depth_scale, self.offset_unit)
                out = layer(global_orient=go[idx], hand_pose=fp[idx], betas=betas[idx], transl=t)
                joints = joints.index_copy(0, idx, out.joints.float())
                verts = verts.index_copy(0, idx, out.vertices.float())
                transl = transl.index_copy(0, idx, t)
                root = root.index_copy(0, idx, r)
            kp2d = project_points(joints, K.float(), min_depth=MIN_PROJECTION_DEPTH)
            result = {"global_orient": go, "orient_matrix": orient_matrix, "finger_pose": fp, "betas": betas,
                      "transl": transl, "root": root, "joints": joints, "vertices": verts, "keypoints_2d": kp2d,
                      "sh": light.float()}
            if features is not None:
                tex = self.texture_head.forward_cells(features.float())
                result["albedo"] = torch.sigmoid(tex).reshape(m, v, 3)
        return result

    def decode(self, maps: Mapping[str, torch.Tensor], K: torch.Tensor, texture: bool = True
               ) -> dict[str, torch.Tensor]:
        """Detect and reconstruct every hand (module docstring, "Decoding").

        Args:
            maps: output of :meth:`forward_maps`.
            K: (B, 3, 3) camera of each image (network-input pixels).
            texture: also regress the per-vertex albedo.

        Returns:
            dict of per-detection tensors (``D`` detections over the batch, sorted by image then score): ``batch``
            (D,) int64, ``cells`` (D, 2), ``score`` (D,) centre probability, ``handedness`` (D,) int64,
            ``handedness_score`` (D,) probability of that side, and the keys of :meth:`reconstruct`.
        """
        with torch.no_grad():
            prob = torch.sigmoid(maps["center"].float())
            peaks = decode_peaks(prob, threshold=self.score_threshold, top_k=self.max_hands, kernel=self.nms_kernel)
            side_prob = torch.sigmoid(maps["handedness"].float())[peaks.batch, :, peaks.y, peaks.x]  # (D, 2)
            side_score, side = side_prob.max(dim=1)
            cells = torch.stack([peaks.x, peaks.y], dim=1)
            params, _ = self.cell_codes(maps, peaks.batch, cells, side)
            light = gather_cells(maps["light"], peaks.batch, peaks.y, peaks.x)
            feats = gather_cells(maps["features"], peaks.batch, peaks.y, peaks.x) if texture else None
            out = self.reconstruct(params, light, feats, cells, side, K[peaks.batch])
        out.update(batch=peaks.batch, cells=cells, score=peaks.score, handedness=side, handedness_score=side_score)
        return out

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The engine's forward: dense maps, the ground-truth hands' reconstructions, and (in eval mode) decoding.

        Args:
            batch: :meth:`SingleStageMethod.collate` output (on the device).

        Returns:
            ``{"maps": forward_maps(...), "hands": reconstruct(...) at the ground-truth centre cells with the
            ground-truth handedness (absent without hands), "detections": decode(...) (eval mode only)}``.
        """
        maps = self.forward_maps(self.normalize(batch["net_image"]))
        out: dict[str, Any] = {"maps": maps}
        hb = batch.get("hand_batch")
        if hb is not None and hb.numel() > 0:
            cells = batch["hand_cells"]
            y, x = cells[:, 1], cells[:, 0]
            gt_extent = None
            if self.lifter is not None and self.training:  # read the keypoints with the true hand size
                box = batch["bbox"].float()
                gt_extent = (box[:, 2:] - box[:, :2]).amax(dim=1).clamp_min(4.0)
            codes, extent = self.cell_codes(maps, hb, cells, batch["handedness"], gt_extent)
            out["hands"] = self.reconstruct(codes, gather_cells(maps["light"], hb, y, x),
                                            gather_cells(maps["features"], hb, y, x), cells, batch["handedness"],
                                            batch["K_cam"][hb])
            if extent is not None:
                out["hands"]["extent"] = extent
        if not self.training:
            out["detections"] = self.decode(maps, batch["K_cam"])
        return out


class SingleStageExport(nn.Module):
    """The network without decoding, for ONNX export: normalised image -> dense maps.

    Args:
        net: a :class:`SingleStageNet`.
        texture: also output the dense per-vertex albedo map (``V * 3`` channels per cell; large).

    ``forward(x (B, 3, S, S))`` returns the tuple ``(center, handedness, params, light[, keypoints][, texture])``
    of logits / raw codes (shapes of :meth:`SingleStageNet.forward_maps`; ``texture`` (B, 3V, S/8, S/8) raw,
    apply ``sigmoid``).
    """

    def __init__(self, net: SingleStageNet, texture: bool = False) -> None:
        super().__init__()
        self.net = net
        self.texture = bool(texture)

    def output_names(self) -> list[str]:
        """Names of the outputs, in order."""
        names = ["center", "handedness", "params", "light"]
        if self.net.keypoints is not None:
            names.append("keypoints")
        if self.net.extent_head is not None:
            names.append("extent")
        if self.texture:
            names.append("texture")
        return names

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        maps = self.net.forward_maps(x)
        outs = [maps["center"], maps["handedness"], maps["params"], maps["light"]]
        if self.net.keypoints is not None:
            outs.append(maps["keypoints"])
        if self.net.extent_head is not None:
            outs.append(maps["extent"])
        if self.texture:
            outs.append(self.net.texture_head(maps["features"]))
        return tuple(outs)


# --------------------------------------------------------------------------------------------------- method
def _hand_centres(kp: np.ndarray, valid: np.ndarray, visible: np.ndarray, bbox: np.ndarray, size: int
                  ) -> np.ndarray:
    """The paper's hand centre (Sec. III-B and IV-D "Hand Center"): the mean of the visible 2D keypoints.

    Fallbacks: the valid keypoints inside the image, then the box centre.

    Args:
        kp: (N, 21, 2) keypoints, input pixels.
        valid: (N, 21) bool annotated.
        visible: (N, 21) bool not occluded.
        bbox: (N, 4) xyxy boxes, pixels.
        size: input side, pixels (inside = ``[-0.5, size - 0.5)``).

    Returns:
        (N, 2) float32 centres, pixels.
    """
    inside = (kp[..., 0] >= -0.5) & (kp[..., 0] < size - 0.5) & (kp[..., 1] >= -0.5) & (kp[..., 1] < size - 0.5)
    out = np.zeros((len(kp), 2), dtype=np.float32)
    for i in range(len(kp)):
        for sel in (valid[i] & visible[i] & inside[i], valid[i] & inside[i]):
            if sel.any():
                out[i] = kp[i][sel].mean(axis=0)
                break
        else:
            out[i] = 0.5 * (bbox[i, :2] + bbox[i, 2:])
    return out


@register_method("single_stage")
class SingleStageMethod:
    """The single-stage multi-hand method (module docstring) for the training engine.

    Loss weights: the paper's Eq. 2, 7 and 10 have weights ``lambda_cp, lambda_lr, lambda_kp, lambda_rep,
    lambda_pho, lambda_reg, w_pose, w_shape`` (and an implicit 1 for ``L_con``, Eq. 1) without numeric values; the
    defaults below are ours (terms of order 1 at initialisation: focal losses per centre, 2D errors in units of the
    wrist -> middle-MCP length, RGB distance, radians of limit violation, metres x 100 for 3D). Set a weight to 0 to
    switch a term off (stage 1 switches the localisation terms off, Sec. IV-A).

    Args:
        input_size: network input side S, pixels (paper: 224 crops / 512 multi-hand; multiple of 32).
        keypoint_branch: build the optional keypoint heatmap branch (``L_kp`` and ``L_con`` need it).
        fuse_channels, head_channels: widths (ours: 256).
        focal_ratio: fixed focal length / S (paper: 512 / 512).
        intrinsics: ``"fixed"`` (paper) or ``"sample"`` (each image's own K).
        depth_scale, offset_unit: translation code (module docstring, "Camera").
        supervision: ``"weak"`` (2D only, the paper's main setting) or ``"full"`` (adds the 3D terms).
        w_center, w_handedness, w_keypoint_heatmap: ``lambda_cp``, ``lambda_lr``, ``lambda_kp`` (Eq. 2).
        w_reprojection, w_bone: the two terms of ``lambda_rep L_rep`` (Eq. 8; ablated separately in Table IV).
        w_photometric: ``lambda_pho`` (Eq. 9).
        w_pose_prior, w_shape_prior: ``lambda_reg w_pose``, ``lambda_reg w_shape`` (Eq. 10).
        w_consistency: weight of ``L_con`` (Eq. 11).
        w_joints_3d, w_vertices_3d: root-relative 3D errors (metres) with ``supervision="full"``.
        w_pose_3d, w_betas_3d: MSE of the 16 joint rotation matrices and of beta with ``supervision="full"``.
        w_root_3d: absolute wrist error (metres), only with ``supervision="full"`` and ``intrinsics="sample"``.
        w_orient_3d: squared Frobenius distance of the global rotation matrix alone (0 to 8), with
            ``supervision="full"`` (ours, default off: in ``w_pose_3d`` the global orientation is one rotation of
            16, yet it dominates the root-relative error).
        score_threshold, max_hands, nms_kernel: decoding.
        photometric_crop, photometric_margin, photometric_sigma: crop side (pixels), crop / box size and soft
            rasterizer sharpness (pixels^2 of the crop; 0.25 keeps the per-face pixel footprint, hence the cost,
            about 4x smaller than 1.0 while the binary mask of Eq. 9 does not use the soft edges) of the
            photometric loss.
        keypoint_box_fraction: keypoint heatmap Gaussians use the radius rule of a box this fraction of the hand
            box (ours: a finger-sized object, 0.25).
        min_radius: smallest Gaussian radius of the centre maps, cells.
        input_crop: ``"image"`` (letterbox the whole image: multi-hand stage) or ``"hands"`` (square crop around
            the hands: the crop stage).
        crop_margin: crop side / hand-box side for ``input_crop="hands"``.
        augment: None, or a dict of :class:`hand_recon_core.data.augment.AugmentConfig` fields (scale, rotation,
            translation, flip, colour jitter, blur) applied by :meth:`encode_targets` to training samples only
            (``train=True``) before the targets are built; validation and ``hand-recon eval`` use the
            deterministic crop.
        init_weights: optional training checkpoint, or a run directory (its latest checkpoint), whose model
            weights initialise the network (the paper's second stage starts from the first); missing: a warning
            (evaluation rebuilds the method from a checkpoint's config and then loads that checkpoint's weights).
        init_strict: ``init_weights`` must match the network exactly; ``False`` loads the tensors that match and
            leaves the others (e.g. a parameter head of another size) at their initialisation, with a warning.
        orient_repr: code of the global orientation: ``"axis_angle"`` (the paper's 61-number code) or ``"6d"``
            (continuous 6D, Zhou et al. 2019; 64 numbers) — ours, for orientations over all of SO(3).
        eval_centres: ``"detected"`` (decode the centre map) or ``"ground_truth"``: predictions read at the
            ground-truth centre cells with the ground-truth handedness, the paper's first-stage protocol (centre
            known), for checkpoints trained without the localisation terms; detection AP and handedness are then
            not measured (``hand-recon eval --set method.kwargs.eval_centres=ground_truth``).
        keypoint_lifter, lifter_window: the keypoint lifter (ours; :mod:`hand_recon_core.models.heads.keypoint_lifter`)
            and its keypoint window (fraction of the hand extent).
        w_extent: L1 of the log predicted 2D hand extent against the ground-truth box's longer side (with the
            lifter only).
    """

    def __init__(self, input_size: int = 512, keypoint_branch: bool = True, fuse_channels: int = 256,
                 head_channels: int = 256, focal_ratio: float = 1.0, intrinsics: str = "fixed",
                 depth_scale: float = 0.4, offset_unit: float = 0.1, supervision: str = "weak",
                 w_center: float = 1.0, w_handedness: float = 1.0, w_keypoint_heatmap: float = 1.0,
                 w_reprojection: float = 1.0, w_bone: float = 1.0, w_photometric: float = 1.0,
                 w_pose_prior: float = 1.0, w_shape_prior: float = 0.1, w_consistency: float = 1.0,
                 w_joints_3d: float = 100.0, w_vertices_3d: float = 100.0, w_pose_3d: float = 1.0,
                 w_betas_3d: float = 0.1, w_root_3d: float = 10.0, w_orient_3d: float = 0.0,
                 w_extent: float = 1.0, score_threshold: float = 0.3,
                 max_hands: int = 20, nms_kernel: int = 3, photometric_crop: int = 64,
                 photometric_margin: float = 1.2, photometric_sigma: float = 0.25, keypoint_box_fraction: float = 0.25,
                 min_radius: int = 0, input_crop: str = "image", crop_margin: float = 1.5,
                 augment: Mapping[str, Any] | None = None, init_weights: str | None = None,
                 init_strict: bool = True, orient_repr: str = "axis_angle", eval_centres: str = "detected",
                 keypoint_lifter: bool = False, lifter_window: float = 0.75) -> None:
        if input_size <= 0 or input_size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32, got {input_size}")
        if supervision not in SUPERVISIONS:
            raise ValueError(f"supervision must be one of {SUPERVISIONS}, got {supervision!r}")
        if intrinsics not in INTRINSICS:
            raise ValueError(f"intrinsics must be one of {INTRINSICS}, got {intrinsics!r}")
        if input_crop not in ("image", "hands"):
            raise ValueError(f"input_crop must be 'image' or 'hands', got {input_crop!r}")
        weights = {k: v for k, v in locals().items() if k.startswith("w_")}
        for k, v in weights.items():
            if float(v) < 0:
                raise ValueError(f"{k} must be >= 0, got {v}")
        if (weights["w_keypoint_heatmap"] > 0 or weights["w_consistency"] > 0) and not keypoint_branch:
            raise ValueError("w_keypoint_heatmap / w_consistency need keypoint_branch=True (set them to 0)")
        if keypoint_lifter and not keypoint_branch:
            raise ValueError("keypoint_lifter needs keypoint_branch=True")
        self.keypoint_lifter, self.lifter_window = bool(keypoint_lifter), float(lifter_window)
        self.weights = {k[2:]: float(v) for k, v in weights.items()}
        self.input_size = int(input_size)
        self.keypoint_branch = bool(keypoint_branch)
        self.fuse_channels, self.head_channels = int(fuse_channels), int(head_channels)
        self.focal_ratio, self.intrinsics = float(focal_ratio), intrinsics
        self.depth_scale, self.offset_unit = float(depth_scale), float(offset_unit)
        self.supervision = supervision
        self.score_threshold, self.max_hands, self.nms_kernel = float(score_threshold), int(max_hands), int(nms_kernel)
        self.photometric_crop, self.photometric_margin = int(photometric_crop), float(photometric_margin)
        self.photometric_sigma = float(photometric_sigma)
        self.keypoint_box_fraction, self.min_radius = float(keypoint_box_fraction), int(min_radius)
        self.input_crop, self.crop_margin = input_crop, float(crop_margin)
        self.augment = None if augment is None else dict(augment)
        self._augmentation = None
        if self.augment is not None:
            self._augmentation = self._build_augmentation()
        self.init_weights = init_weights
        self.init_strict = bool(init_strict)
        if eval_centres not in ("detected", "ground_truth"):
            raise ValueError(f"eval_centres must be 'detected' or 'ground_truth', got {eval_centres!r}")
        self.eval_centres = eval_centres
        param_slices(orient_repr)  # validates
        self.orient_repr = orient_repr
        self.hand_model_id: str | None = None
        self.num_vertices: int | None = None
        self.net: SingleStageNet | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (e.g. into spawned data-loader workers) without the network: encoding needs none of it."""
        state = dict(self.__dict__)
        state["net"] = None
        return state

    # ------------------------------------------------------------------ protocol: build
    def _build_augmentation(self):
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in (self.augment or {}).items()}
        for key in ("out_size", "crop_mode", "crop_margin"):
            if key in fields:
                raise ValueError(f"augment.{key} is set by the method (input_size / input_crop / crop_margin)")
        try:
            cfg = AugmentConfig(out_size=(self.input_size, self.input_size), crop_mode=self.input_crop,
                                crop_margin=self.crop_margin, **fields)
        except TypeError as exc:
            raise ValueError(f"augment: {exc}") from None
        return build_augmentation(cfg)

    def build(self, cfg: Any, hand_model_id: str) -> SingleStageNet:
        """The network (backbone ``cfg.backbone.name``, default the paper's ``resnet50``)."""
        backbone = getattr(getattr(cfg, "backbone", None), "name", None) or "resnet50"
        pretrained = getattr(getattr(cfg, "backbone", None), "pretrained", None)
        net = SingleStageNet(backbone, pretrained, hand_model_id, self.input_size, self.fuse_channels,
                             self.head_channels, self.keypoint_branch, self.focal_ratio, self.intrinsics,
                             self.depth_scale, self.offset_unit, self.score_threshold, self.max_hands, self.nms_kernel,
                             self.orient_repr, self.keypoint_lifter, self.lifter_window)
        if self.init_weights:
            from hand_recon_core.training import checkpoint as ckpt_io  # lazy: training imports the models

            path = Path(self.init_weights)
            if path.is_dir():  # a run directory (or its checkpoints/ folder): its latest checkpoint
                found = (ckpt_io.find_latest_checkpoint(path / "checkpoints")
                         or ckpt_io.find_latest_checkpoint(path))
                path = found if found is not None else path / "checkpoints"
            if path.is_file():
                ckpt = ckpt_io.load_checkpoint(path)
                ckpt_io.check_method(ckpt, self.method_name, source=str(path))
                skipped = ckpt_io.load_model_state(net, ckpt["model"], source=str(path), strict=self.init_strict)
                logger.info("single_stage: initialised the network from %s", path)
                if skipped:
                    logger.warning("single_stage: init_strict=false: %d tensors absent or of another shape in %s "
                                   "keep their initialisation: %s", len(skipped), path, ", ".join(skipped[:10]))
            else:
                logger.warning("single_stage: init_weights %s not found: the network starts from its default "
                               "initialisation (expected only when a checkpoint is loaded afterwards)", path)
        self.hand_model_id = hand_model_id
        self.num_vertices = net.num_vertices
        self.net = net
        return net

    # ------------------------------------------------------------------ protocol: targets
    def encode_targets(self, sample: dict[str, Any], train: bool = False) -> dict[str, Any]:
        """Resize/crop the sample to the network input and build the targets (runs in data-loader workers).

        Geometry: ``input_crop`` crop/letterbox to ``S x S`` (or the random ``augment`` chain); the camera
        follows (:mod:`hand_recon_core.data.augment`), so the 3D labels stay valid. Targets: centre of each hand =
        mean of its visible in-image keypoints (paper, Sec. III-B); Gaussian centre map (1 channel) and
        per-handedness map (2 channels) at stride 8, radius from the hand box (CenterNet rule); keypoint heatmaps
        (21 channels, stride 4) of every visible in-image keypoint; each hand's centre cell. Hands whose centre
        falls outside the map are not encoded.

        Returns:
            dict of numpy arrays: ``net_image`` (S, S, 3) uint8, ``K_net`` (3, 3) (camera of the input),
            ``K_raw`` (3, 3), ``net_from_image`` (2, 3) affine raw pixels -> input pixels, ``raw_size`` (2,)
            ``(H, W)``, ``center_hm`` (1, S/8, S/8), ``hand_hm`` (2, S/8, S/8), ``kp_hm`` (21, S/4, S/4) float32,
            ``mask`` (S, S) int16 (if the sample has one), per hand (N kept hands): ``cells`` (N, 2) int64
            ``(x, y)``, ``instance`` (N,) index into the mask, ``joint_inside`` (N, 21), and the sample's
            per-hand keys in input pixels / camera frame (``vertices_3d`` when present); ``dataset``,
            ``sample_id``, ``hand_model_id``.
        """
        s_in = self.input_size
        if train and self._augmentation is not None:
            seed = int(np.random.randint(0, 2**31 - 1))  # noqa: NPY002 (the engine seeds the global generator)
            s = self._augmentation(sample, np.random.default_rng(seed))
        else:
            s = CropResize(out_size=(s_in, s_in), mode=self.input_crop, margin=self.crop_margin)(sample)
        k_raw = np.asarray(sample["K"], np.float64)
        k_net = np.asarray(s["K"], np.float64)
        net_from_image = (k_net @ np.linalg.inv(k_raw))[:2].astype(np.float32)

        kp = np.asarray(s["keypoints_2d"], np.float32)
        valid = np.asarray(s["joint_valid"]) > 0
        visible = np.asarray(s["joint_visible"]) > 0
        bbox = np.clip(np.asarray(s["bbox"], np.float32), 0.0, s_in - 1.0)
        n = len(kp)
        inside = (kp[..., 0] >= -0.5) & (kp[..., 0] < s_in - 0.5) & (kp[..., 1] >= -0.5) & (kp[..., 1] < s_in - 0.5)
        centres = _hand_centres(kp, valid, visible, bbox, s_in)
        sizes = np.maximum(np.stack([bbox[:, 2] - bbox[:, 0], bbox[:, 3] - bbox[:, 1]], axis=1), 1.0)
        h8 = s_in // STRIDE
        handedness = torch.as_tensor(np.asarray(s["handedness"], np.int64))
        c_t, sz_t = torch.from_numpy(centres), torch.from_numpy(sizes)
        center_hm, cells, in_map = encode_center_heatmap(c_t, sz_t, None, 1, (h8, h8), STRIDE,
                                                         min_radius=self.min_radius)
        hand_hm, _, _ = encode_center_heatmap(c_t, sz_t, handedness, 2, (h8, h8), STRIDE, min_radius=self.min_radius)
        h4 = s_in // KEYPOINT_STRIDE
        kp_sel = valid & visible & inside
        hand_idx, joint_idx = np.nonzero(kp_sel)
        kp_hm, _, _ = encode_center_heatmap(torch.from_numpy(kp[hand_idx, joint_idx]),
                                            torch.from_numpy(sizes[hand_idx] * self.keypoint_box_fraction),
                                            torch.from_numpy(joint_idx.astype(np.int64)), NUM_JOINTS, (h4, h4),
                                            KEYPOINT_STRIDE)
        keep = in_map.numpy()
        has_params = np.asarray(s["has_params"]) & (str(s.get("hand_model_id")) == str(self.hand_model_id))
        out: dict[str, Any] = {
            "net_image": np.ascontiguousarray(s["image"]),
            "K_net": k_net.astype(np.float32),
            "K_raw": k_raw.astype(np.float32),
            "net_from_image": net_from_image,
            "raw_size": np.array(sample["image"].shape[:2], np.int64),
            "center_hm": center_hm.numpy(),
            "hand_hm": hand_hm.numpy(),
            "kp_hm": kp_hm.numpy(),
            "cells": cells.numpy()[keep],
            "instance": np.arange(n, dtype=np.int64)[keep],
            "joint_inside": (valid & inside)[keep].astype(np.float32),
            "has_params": has_params[keep],
            "dataset": s["dataset"],
            "sample_id": s["sample_id"],
            "hand_model_id": s["hand_model_id"],
        }
        for key in ("handedness", "keypoints_2d", "joint_valid", "joint_visible", "bbox", "joints_3d", "has_3d",
                    "hand_pose", "betas", "transl"):
            out[key] = np.asarray(s[key])[keep]
        if "vertices_3d" in s:
            out["vertices_3d"] = np.asarray(s["vertices_3d"], np.float32)[keep]
        if "mask" in s:
            out["mask"] = np.asarray(s["mask"], np.int16)
        return out

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Encoded samples -> batch: stacked images / maps / cameras and the hands of all images flattened.

        Returns:
            dict of tensors: ``net_image`` (B, S, S, 3) uint8, ``K_net``, ``K_raw``, ``K_cam`` (B, 3, 3) (``K_cam``:
            the camera the network reasons in, fixed or the image's), ``net_from_image`` (B, 2, 3), ``raw_size``
            (B, 2), ``center_hm`` (B, 1, h, w), ``hand_hm`` (B, 2, h, w), ``kp_hm`` (B, 21, 2h, 2w), ``mask``
            (B, S, S) int16 (-1 background; all -1 for images without a mask) and ``has_mask`` (B,) bool;
            ``num_hands`` (B,); per hand, over the M hands of the batch: ``hand_batch`` (M,) image index,
            ``hand_cells`` (M, 2), ``instance`` (M,), ``handedness``, ``keypoints_2d``, ``joint_valid``,
            ``joint_visible``, ``joint_inside``, ``bbox``, ``joints_3d``, ``has_3d``, ``hand_pose``, ``betas``,
            ``transl``, ``has_params``, ``vertices_3d`` (M, V, 3) and ``has_vertices`` (M,); lists
            ``dataset``, ``sample_id``, ``hand_model_id``.
        """
        if not samples:
            raise ValueError("collate needs at least one sample")

        def stack(key: str) -> torch.Tensor:
            return torch.from_numpy(np.stack([np.asarray(s[key]) for s in samples]))

        batch: dict[str, Any] = {k: stack(k) for k in ("net_image", "K_net", "K_raw", "net_from_image", "raw_size",
                                                       "center_hm", "hand_hm", "kp_hm")}
        b = len(samples)
        if self.intrinsics == "fixed":
            batch["K_cam"] = fixed_intrinsics(self.input_size, self.focal_ratio).expand(b, 3, 3).clone()
        else:
            batch["K_cam"] = batch["K_net"].clone()
        s_in = samples[0]["net_image"].shape[0]
        batch["mask"] = torch.from_numpy(np.stack([np.asarray(s["mask"], np.int16) if "mask" in s
                                                   else np.full((s_in, s_in), -1, np.int16) for s in samples]))
        batch["has_mask"] = torch.tensor(["mask" in s for s in samples])
        counts = [len(s["handedness"]) for s in samples]
        batch["num_hands"] = torch.tensor(counts, dtype=torch.int64)
        batch["hand_batch"] = torch.repeat_interleave(torch.arange(b), torch.tensor(counts, dtype=torch.int64))
        cat = {"cells": "hand_cells"}
        for key in ("cells", "instance", "handedness", "keypoints_2d", "joint_valid", "joint_visible", "joint_inside",
                    "bbox", "joints_3d", "has_3d", "hand_pose", "betas", "transl", "has_params"):
            batch[cat.get(key, key)] = torch.from_numpy(np.concatenate([np.asarray(s[key]) for s in samples]))
        v = self.num_vertices
        verts, has_v = [], []
        for s, c in zip(samples, counts):
            arr = s.get("vertices_3d")
            ok = arr is not None and v is not None and arr.shape[1:] == (v, 3)
            verts.append(np.asarray(arr, np.float32) if ok else np.zeros((c, v or 0, 3), np.float32))
            has_v.append(np.full(c, ok))
        batch["vertices_3d"] = torch.from_numpy(np.concatenate(verts))
        batch["has_vertices"] = torch.from_numpy(np.concatenate(has_v))
        for key in ("dataset", "sample_id", "hand_model_id"):
            batch[key] = [s[key] for s in samples]
        return batch

    # ------------------------------------------------------------------ protocol: loss
    def loss(self, model_out: Mapping[str, Any], batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """Eq. 1: ``L = L_loc + L_rec + L_con`` (+ the 3D terms with ``supervision="full"``).

        Returns:
            ``(total, parts)``; ``parts`` holds every unweighted term (float32 scalars).
        """
        w = self.weights
        maps = model_out["maps"]
        dev = maps["center"].device
        zero = torch.zeros((), device=dev)
        parts: dict[str, torch.Tensor] = {}
        with torch.autocast(device_type=dev.type, enabled=False):
            # L_loc (Eq. 2, 3)
            if w["center"] > 0:
                parts["center"] = center_focal_loss(maps["center"], batch["center_hm"])
            if w["handedness"] > 0:
                parts["handedness"] = center_focal_loss(maps["handedness"], batch["hand_hm"])
            if w["keypoint_heatmap"] > 0 and "keypoints" in maps:
                parts["keypoint_heatmap"] = center_focal_loss(maps["keypoints"], batch["kp_hm"])
            hands = model_out.get("hands")
            if hands is not None:
                parts.update(self._hand_losses(maps, hands, batch))
                if "extent" in hands and w["extent"] > 0:
                    box = batch["bbox"].float()
                    target = (box[:, 2:] - box[:, :2]).amax(dim=1).clamp_min(4.0)
                    parts["extent"] = (torch.log(hands["extent"]) - torch.log(target)).abs().mean()
        total = zero
        for name, value in parts.items():
            total = total + w[name] * value
        if self.net is not None and self.net.training:
            # Every parameter takes part in the graph (with a zero gradient when its term is off, e.g. the
            # localisation heads in stage 1 or the texture head in a batch without hands), so that
            # DistributedDataParallel without find_unused_parameters sees a complete set of gradients.
            total = total + 0.0 * sum(p.reshape(-1)[0].float() for p in self.net.parameters() if p.requires_grad)
        return total, {k: v.detach() for k, v in parts.items()}

    def _hand_losses(self, maps: Mapping[str, torch.Tensor], hands: Mapping[str, torch.Tensor],
                     batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        w = self.weights
        out: dict[str, torch.Tensor] = {}
        gt_kp, valid, bbox = batch["keypoints_2d"].float(), batch["joint_valid"].float(), batch["bbox"].float()
        scale = hand_scale_2d(gt_kp, valid, bbox)
        kp = hands["keypoints_2d"]
        # L_rec (Eq. 7-10)
        if w["reprojection"] > 0:
            out["reprojection"] = keypoint_reprojection_loss(kp, gt_kp, valid, scale)
        if w["bone"] > 0:
            out["bone"] = bone_direction_loss(kp, gt_kp, valid)
        left = batch["handedness"] == LEFT
        if w["pose_prior"] > 0:
            hm = self.net.hands.to(kp.device) if self.net is not None else None
            if hm is not None:
                out["pose_prior"] = joint_angle_limit_loss(hands["finger_pose"], hm.frames, hm.limits, left)
        if w["shape_prior"] > 0:
            out["shape_prior"] = shape_prior_loss(hands["betas"])
        if w["photometric"] > 0 and "albedo" in hands:
            out["photometric"] = self._photometric(hands, batch)
        # L_con (Eq. 11)
        if w["consistency"] > 0 and "keypoints" in maps:
            boxes = square_boxes(bbox, self.photometric_margin)
            local = heatmap_soft_argmax(maps["keypoints"].float(), batch["hand_batch"], boxes, KEYPOINT_STRIDE)
            out["consistency"] = keypoint_consistency_loss(local, kp, batch["joint_inside"].float(), scale)
        if self.supervision == "full":
            out.update(self._full_losses(hands, batch))
        return out

    def _photometric(self, hands: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> torch.Tensor:
        """Eq. 9 on per-hand crops (see :mod:`hand_recon_core.losses.photometric`)."""
        hb = batch["hand_batch"]
        use = batch["has_mask"][hb]
        if not bool(use.any()):
            return torch.zeros((), device=hb.device)
        p = self.photometric_crop
        boxes = square_boxes(batch["bbox"].float(), self.photometric_margin)
        image = batch["net_image"].permute(0, 3, 1, 2).float() / 255.0
        target = crop_images(image, hb, boxes, p).permute(0, 2, 3, 1)  # (M, P, P, 3)
        skin = (batch["mask"][hb].long() == batch["instance"][:, None, None]).float()[:, None]  # (M, 1, S, S)
        skin = crop_images(skin, torch.arange(len(hb), device=hb.device), boxes, p, mode="nearest")[:, 0]
        skin = skin * use[:, None, None].float()
        k_crop = crop_intrinsics(batch["K_cam"][hb], boxes, p)
        rendered = torch.zeros_like(target)
        sil = torch.zeros_like(target[..., 0])
        hm = self.net.hands.to(hb.device)
        for side in (RIGHT, LEFT):
            idx = (batch["handedness"] == side).nonzero().flatten()
            if idx.numel() == 0:
                continue
            img, s = render_hands(hands["vertices"][idx], hm.faces(side), hands["albedo"][idx], hands["sh"][idx],
                                  k_crop[idx], p, sigma=self.photometric_sigma)
            rendered = rendered.index_copy(0, idx, img)
            sil = sil.index_copy(0, idx, s)
        return photometric_loss(rendered, sil, target, skin)

    def _full_losses(self, hands: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The fully supervised terms (Table IV "L_3D"), on hands whose ground truth has them."""
        w = self.weights
        out: dict[str, torch.Tensor] = {}
        has3d = batch["has_3d"].float()[:, None]
        jvalid = batch["joint_valid"].float() * has3d
        if w["joints_3d"] > 0:
            out["joints_3d"] = root_relative_joint_loss(hands["joints"], batch["joints_3d"], jvalid)
        if w["vertices_3d"] > 0 and bool(batch["has_vertices"].any()):
            hv = (batch["has_vertices"] & batch["has_3d"] & (batch["joint_valid"][:, 0] > 0)).float()
            vvalid = hv[:, None].expand(-1, hands["vertices"].shape[1])
            out["vertices_3d"] = root_relative_joint_loss(hands["vertices"], batch["vertices_3d"], vvalid,
                                                          pred_root=hands["joints"][:, 0],
                                                          target_root=batch["joints_3d"][:, 0])
        hp = batch["has_params"]
        if bool(hp.any()) and (w["pose_3d"] > 0 or w["betas_3d"] > 0 or w["orient_3d"] > 0):
            # rotation matrices: the orientation straight from its code (no axis-angle round trip for 6D)
            pred_rot = torch.cat([hands["orient_matrix"][hp][:, None],
                                  axis_angle_to_matrix(hands["finger_pose"][hp].reshape(-1, 15, 3))], dim=1)
            gt_rot = axis_angle_to_matrix(batch["hand_pose"][hp].float().reshape(-1, 16, 3))
            out["pose_3d"] = ((pred_rot - gt_rot) ** 2).mean()
            if w["orient_3d"] > 0:
                out["orient_3d"] = ((pred_rot[:, 0] - gt_rot[:, 0]) ** 2).sum(dim=(-1, -2)).mean()
            out["betas_3d"] = ((hands["betas"][hp] - batch["betas"][hp].float()) ** 2).mean()
        if self.intrinsics == "sample" and w["root_3d"] > 0:
            ok = batch["has_3d"] & (batch["joint_valid"][:, 0] > 0)
            if bool(ok.any()):
                err = torch.linalg.vector_norm(hands["joints"][ok, 0] - batch["joints_3d"][ok, 0].float(), dim=-1)
                out["root_3d"] = err.mean()
        return out

    # ------------------------------------------------------------------ protocol: predict
    @staticmethod
    def _ground_truth_centre_hands(model_out: Mapping[str, Any], batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Detections at the ground-truth centre cells with the ground-truth handedness (``eval_centres``)."""
        hands = model_out.get("hands")
        hb = batch.get("hand_batch")
        if hands is None or hb is None:
            empty = batch["net_image"].new_zeros(0, dtype=torch.int64)
            return {"batch": empty, "joints": torch.zeros(0, NUM_JOINTS, 3), "vertices": torch.zeros(0, 0, 3),
                    "transl": torch.zeros(0, 3), "global_orient": torch.zeros(0, 3),
                    "finger_pose": torch.zeros(0, NUM_HAND_POSE), "score": torch.zeros(0),
                    "handedness": empty, "handedness_score": torch.zeros(0), "betas": torch.zeros(0, NUM_BETAS),
                    "albedo": torch.zeros(0, 0, 3), "sh": torch.zeros(0, NUM_SH)}
        ones = torch.ones(hb.shape[0], device=hb.device)
        return {**hands, "batch": hb, "score": ones, "handedness": batch["handedness"], "handedness_score": ones}

    def predict(self, model_out: Mapping[str, Any], batch: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Per-image predictions in the original image and camera (protocol of
        :class:`~hand_recon_core.models.registry.MethodProtocol`).

        Returns:
            one dict per image: ``handedness (N,) int64``, ``score (N,) float32`` (centre probability),
            ``handedness_score (N,)``, ``bbox (N, 4)`` (box of the projected vertices, clipped to the image),
            ``keypoints_2d (N, 21, 2)`` pixels, ``joints_3d (N, 21, 3)`` and ``vertices_3d (N, V, 3)`` metres in the
            image's camera frame, ``hand_pose (N, 48)`` (absolute axis-angle, global orientation in the camera
            frame, flat hand = 0), ``betas (N, 10)``, ``transl (N, 3)`` (smplx semantics), ``albedo (N, V, 3)``,
            ``sh (N, 27)``.
        """
        det = model_out.get("detections")
        if self.eval_centres == "ground_truth":
            det = self._ground_truth_centre_hands(model_out, batch)
        if det is None:
            if self.net is None:
                raise RuntimeError("predict needs the model in eval mode (detections) or a built method")
            det = self.net.decode(model_out["maps"], batch["K_cam"])
        b = batch["net_image"].shape[0]
        k_cam, k_net, k_raw = batch["K_cam"].float(), batch["K_net"].float(), batch["K_raw"].float()
        results = []
        for i in range(b):
            sel = (det["batch"] == i).nonzero().flatten()
            joints, verts = det["joints"][sel].float(), det["vertices"][sel].float()
            transl = det["transl"][sel].float()
            if self.intrinsics == "fixed" and sel.numel():
                root_v = joints[:, 0]
                uv = project_points(root_v[:, None], k_cam[i], min_depth=MIN_PROJECTION_DEPTH)[:, 0]
                z = root_v[:, 2].clamp_min(MIN_PROJECTION_DEPTH) * k_net[i, 0, 0] / k_cam[i, 0, 0]
                root_r = backproject_pixels(uv[:, None], z[:, None], k_net[i])[:, 0]
                shift = (root_r - root_v)[:, None]
                joints, verts, transl = joints + shift, verts + shift, transl + shift[:, 0]
            kp = project_points(joints, k_raw[i], min_depth=MIN_PROJECTION_DEPTH)
            vuv = project_points(verts, k_raw[i], min_depth=MIN_PROJECTION_DEPTH)
            h, w_img = (int(x) for x in batch["raw_size"][i])
            if sel.numel():
                lo = vuv.amin(dim=1)
                hi = vuv.amax(dim=1)
                bbox = torch.cat([lo, hi], dim=1)
                bbox[:, 0::2] = bbox[:, 0::2].clamp(0, w_img - 1)
                bbox[:, 1::2] = bbox[:, 1::2].clamp(0, h - 1)
            else:
                bbox = kp.new_zeros(0, 4)
            pose = torch.cat([det["global_orient"][sel], det["finger_pose"][sel]], dim=1)

            def np32(t: torch.Tensor) -> np.ndarray:
                return t.detach().float().cpu().numpy().astype(np.float32)

            pred = {
                "handedness": det["handedness"][sel].cpu().numpy().astype(np.int64),
                "score": np32(det["score"][sel]),
                "handedness_score": np32(det["handedness_score"][sel]),
                "bbox": np32(bbox),
                "keypoints_2d": np32(kp),
                "joints_3d": np32(joints),
                "vertices_3d": np32(verts),
                "hand_pose": np32(pose),
                "betas": np32(det["betas"][sel]),
                "transl": np32(transl),
                "sh": np32(det["sh"][sel]),
            }
            if "albedo" in det:
                pred["albedo"] = np32(det["albedo"][sel])
            results.append(pred)
        return results

    # ------------------------------------------------------------------ export
    def export_onnx(self, net: SingleStageNet, path: str, texture: bool = False, opset: int = 17,
                    dynamic_batch: bool = True) -> list[str]:
        """Export the network (no decoding) to ONNX: input ``image`` (B, 3, S, S) ImageNet-normalised RGB.

        Args:
            net: the built network (put in eval mode here).
            path: output ``.onnx`` file.
            texture: include the dense per-vertex albedo map.
            opset: ONNX opset (>= 17).
            dynamic_batch: make the batch dimension dynamic.

        Returns:
            The output names (see :class:`SingleStageExport`).
        """
        wrapper = SingleStageExport(net, texture=texture).eval()
        names = wrapper.output_names()
        x = torch.zeros(1, 3, self.input_size, self.input_size)
        axes = {n: {0: "batch"} for n in ["image", *names]} if dynamic_batch else None
        torch.onnx.export(wrapper, (x,), path, input_names=["image"], output_names=names, opset_version=opset,
                          dynamic_axes=axes, dynamo=False)
        return names
