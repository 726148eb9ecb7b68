"""``HandLayer``: a batched, differentiable MANO-compatible hand model (torch ``nn.Module``).

Model (MANO, Romero et al. 2017)::

    v_shaped = v_template + shapedirs . betas                       (shape blend shapes)
    J        = J_regressor @ v_shaped                               (16 rest joints)
    v_posed  = v_shaped + posedirs . vec(R_1..15 - I)               (pose correctives, 15 x 9 entries)
    v        = sum_j w_vj G_j(theta, J) v_posed + transl            (linear blend skinning)

Frames and units: metres; the hand-model frame of the template (for MANO and the open model the fingers point
roughly along -x and the palm faces -y; the right thumb is towards +z, the left hand is mirrored in x). The
global rotation ``global_orient`` rotates the hand about the wrist joint (MANO/smplx convention), then
``transl`` is added, so the wrist ends at ``R_g J_0 ... = J_0 + transl``.

Precision: rotations and the kinematic chain are evaluated in float32 for float16/bfloat16 layers (they are
tiny) and in the layer's dtype otherwise; the blend shapes and the skinning always run in the layer's dtype, so
float16 layers stay finite and accurate to float16 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hand_recon_core.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    rot6d_to_matrix,
)
from hand_recon_core.hand_model.constants import (
    NUM_BETAS,
    NUM_HAND_POSE,
    NUM_KINEMATIC_JOINTS,
    depth_levels,
)
from hand_recon_core.hand_model.lbs import blend_and_apply, forward_kinematics, skinning_transforms
from hand_recon_core.hand_model.model_data import HandModelData

#: Hand-pose representations accepted by :class:`HandLayer`.
POSE_REPRS = ("axis_angle", "pca", "6d")


def _chain_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype of the rotations and kinematic chain: float32 for half-precision layers, else the layer's."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


@dataclass
class HandOutput:
    """Result of :meth:`HandLayer.forward` (all tensors in the layer's dtype/device, metres).

    Attributes:
        vertices: (B, V, 3) posed vertices, hand-model frame rotated by ``global_orient`` about the wrist,
            plus ``transl``.
        joints: (B, 21, 3) joints in the canonical ``mano21`` order (16 kinematic joints in MANO native order,
            then the fingertip vertices thumb, index, middle, ring, pinky), same frame as ``vertices``.
        full_pose: (B, 16, 3) axis-angle (radians) of every kinematic joint: global orient then the 15 finger
            joints, with the PCA expansion and the mean pose (when not flat) already applied.
        joint_transforms: (B, 16, 4, 4) rigid transforms of the joint frames in the output frame: rotation =
            global rotation of the joint (its rest frame is aligned with the model frame), translation = posed
            joint position.
        betas: (B, 10) shape coefficients used.
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    full_pose: torch.Tensor
    joint_transforms: torch.Tensor
    betas: torch.Tensor


class HandLayer(nn.Module):
    """MANO-compatible linear-blend-skinning hand model.

    Build it with :func:`hand_recon_core.hand_model.loader.load_hand_model`, or directly from a
    :class:`~hand_recon_core.hand_model.model_data.HandModelData`.

    Args:
        data: model arrays for one side.
        pose_repr: representation of ``hand_pose``, fixed at construction: ``"axis_angle"`` (B, 45) radians in
            MANO native joint order 1..15; ``"pca"`` (B, K) coefficients of the first ``num_pca_comps`` rows of
            ``hands_components``; ``"6d"`` (B, 15, 6) rotations in the 6D layout of
            :func:`hand_recon_core.geometry.rotations.rot6d_to_matrix`.
        num_pca_comps: K for ``pose_repr="pca"`` (1..45).
        flat_hand_mean: if False (default, as smplx and manopth), ``hands_mean`` (a relaxed, slightly flexed
            pose) is added to the axis-angle/PCA finger pose, so zero input gives the mean pose; if True, zero
            input gives the flat rest pose of the template. 6D inputs are absolute local rotations: the mean
            is never added to them.
        dtype: floating dtype of the buffers (float32, float64, float16, bfloat16).

    Attributes:
        side: ``"right"`` or ``"left"``.
        model_id: id of the model the layer was built from.
        faces: (F, 3) int64 buffer, counter-clockwise seen from outside.
        parents: tuple of 16 parent indices (MANO native tree).
        part_labels: (V,) int64 buffer, dominant joint per vertex (0..15).
        tip_vertex_ids: (5,) int64 buffer (thumb, index, middle, ring, pinky).
        joint_limits: (16, 3, 2) float32 buffer of anatomical limits (radians) or None.
        joint_frames: (16, 3, 3) float32 buffer of anatomical rest frames or None.
    """

    def __init__(self, data: HandModelData, pose_repr: str = "axis_angle", num_pca_comps: int = 45,
                 flat_hand_mean: bool = False, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if pose_repr not in POSE_REPRS:
            raise ValueError(f"pose_repr must be one of {POSE_REPRS}, got {pose_repr!r}")
        if pose_repr == "pca" and not 1 <= num_pca_comps <= NUM_HAND_POSE:
            raise ValueError(f"num_pca_comps must be in 1..{NUM_HAND_POSE}, got {num_pca_comps}")
        data.validate()
        self.side = data.side
        self.model_id = data.model_id
        self.tip_convention = data.tip_convention
        self.pose_repr = pose_repr
        self.num_pca_comps = int(num_pca_comps) if pose_repr == "pca" else NUM_HAND_POSE
        self.flat_hand_mean = bool(flat_hand_mean)
        self.parents = tuple(int(p) for p in data.parents)
        self._levels = depth_levels(self.parents)

        def f64(a: np.ndarray) -> torch.Tensor:  # always a copy: buffers never alias the model arrays
            return torch.tensor(np.asarray(a, dtype=np.float64))

        v = data.num_vertices
        v_template = f64(data.v_template)
        shapedirs = f64(data.shapedirs)  # (V, 3, 10)
        reg = f64(data.dense_regressor())  # (16, V)
        self.register_buffer("v_template", v_template.to(dtype))
        self.register_buffer("shapedirs", shapedirs.reshape(v * 3, NUM_BETAS).T.contiguous().to(dtype))
        self.register_buffer("posedirs", f64(data.posedirs).reshape(v * 3, -1).T.contiguous().to(dtype))
        self.register_buffer("J_regressor", reg.to(dtype))
        # Joints are linear in betas: precompute J = J_template + betas . J_shapedirs.
        chain_dtype = _chain_dtype(dtype)
        self.register_buffer("J_template", (reg @ v_template).to(chain_dtype))
        j_dirs = torch.einsum("jv,vcl->ljc", reg, shapedirs).reshape(NUM_BETAS, -1)
        self.register_buffer("J_shapedirs", j_dirs.contiguous().to(chain_dtype))
        self.register_buffer("lbs_weights", f64(data.weights).to(dtype))
        self.register_buffer("faces", torch.tensor(np.asarray(data.faces, dtype=np.int64)))
        self.register_buffer("part_labels", torch.tensor(np.asarray(data.part_labels, dtype=np.int64)))
        self.register_buffer("tip_vertex_ids", torch.tensor(np.asarray(data.tip_vertex_ids, dtype=np.int64)))
        comps = f64(data.hands_components)
        self.register_buffer("hands_components", comps[: self.num_pca_comps].to(chain_dtype))
        self.register_buffer("hands_mean", f64(data.hands_mean).to(chain_dtype))
        self.register_buffer("parents_tensor", torch.as_tensor(self.parents, dtype=torch.int64))
        limits = None if data.joint_limits is None else f64(data.joint_limits).to(torch.float32)
        frames = None if data.joint_frames is None else f64(data.joint_frames).to(torch.float32)
        self.register_buffer("joint_limits", limits)
        self.register_buffer("joint_frames", frames)

    # ------------------------------------------------------------------ info
    @property
    def num_vertices(self) -> int:
        """Number of mesh vertices V."""
        return int(self.v_template.shape[0])

    @property
    def num_faces(self) -> int:
        """Number of triangles F."""
        return int(self.faces.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the layer's buffers."""
        return self.v_template.dtype

    @property
    def device(self) -> torch.device:
        """Device of the layer's buffers."""
        return self.v_template.device

    def extra_repr(self) -> str:
        return (f"model_id={self.model_id}, side={self.side}, pose_repr={self.pose_repr}, "
                f"num_pca_comps={self.num_pca_comps}, flat_hand_mean={self.flat_hand_mean}, "
                f"V={self.num_vertices}, F={self.num_faces}")

    # ------------------------------------------------------------------ pose handling
    def hand_pose_dim(self) -> tuple[int, ...]:
        """Per-sample shape of ``hand_pose``: (45,), (K,) or (15, 6)."""
        if self.pose_repr == "axis_angle":
            return (NUM_HAND_POSE,)
        if self.pose_repr == "pca":
            return (self.num_pca_comps,)
        return (15, 6)

    def hand_pose_to_axis_angle(self, hand_pose: torch.Tensor) -> torch.Tensor:
        """Convert an axis-angle or PCA ``hand_pose`` to the full (B, 45) axis-angle finger pose (see Returns).

        The mean pose is added unless ``flat_hand_mean``. Not defined for ``pose_repr="6d"``.

        Args:
            hand_pose: (B, 45) or (B, K) as set by ``pose_repr``.

        Returns:
            (B, 45) axis-angle, radians, MANO native joints 1..15 (float32 for half-precision layers, else the
            layer's dtype).
        """
        cd = _chain_dtype(self.dtype)
        x = hand_pose.to(cd)
        if self.pose_repr == "pca":
            x = x @ self.hands_components.to(cd)
        elif self.pose_repr != "axis_angle":
            raise ValueError("hand_pose_to_axis_angle is defined for the axis_angle and pca representations")
        if not self.flat_hand_mean:
            x = x + self.hands_mean.to(cd)
        return x

    def axis_angle_to_pca(self, hand_pose_aa: torch.Tensor) -> torch.Tensor:
        """Project a full (B, 45) axis-angle finger pose onto this layer's PCA coefficients (least squares).

        Inverse of :meth:`hand_pose_to_axis_angle` for ``pose_repr="pca"`` (exact when K = 45).

        Args:
            hand_pose_aa: (B, 45) axis-angle, radians, including the mean pose.

        Returns:
            (B, K) coefficients.
        """
        cd = _chain_dtype(self.dtype)
        x = hand_pose_aa.to(cd)
        if not self.flat_hand_mean:
            x = x - self.hands_mean.to(cd)
        return torch.linalg.lstsq(self.hands_components.to(cd).T, x.T).solution.T

    # ------------------------------------------------------------------ forward
    def _batch_size(self, *tensors: torch.Tensor | None) -> int:
        sizes = {int(t.shape[0]) for t in tensors if t is not None}
        if len(sizes) > 1:
            raise ValueError(f"inconsistent batch sizes {sorted(sizes)}")
        return sizes.pop() if sizes else 1

    def forward(self, global_orient: torch.Tensor | None = None, hand_pose: torch.Tensor | None = None,
                betas: torch.Tensor | None = None, transl: torch.Tensor | None = None) -> HandOutput:
        """Pose and shape the hand.

        Args:
            global_orient: (B, 3) axis-angle (radians) of the wrist, rotating about the wrist joint. Default 0.
            hand_pose: finger pose in the representation chosen at construction: (B, 45) axis-angle,
                (B, K) PCA coefficients or (B, 15, 6) 6D rotations. Default: zeros (identity for 6D).
            betas: (B, 10) shape coefficients. Default 0.
            transl: (B, 3) translation, metres, added last. Default 0.

        Returns:
            :class:`HandOutput`. The batch size B is taken from whichever inputs are given (1 if none).
        """
        bsz = self._batch_size(global_orient, hand_pose, betas, transl)
        if hand_pose is not None and hand_pose[0].numel() != int(np.prod(self.hand_pose_dim())):
            raise ValueError(f"hand_pose must have shape (B, {', '.join(map(str, self.hand_pose_dim()))}) for "
                             f"pose_repr={self.pose_repr!r}, got {tuple(hand_pose.shape)}")
        dev, dt = self.device, self.dtype
        cd = _chain_dtype(dt)  # dtype of the rotations and the kinematic chain
        go = torch.zeros(bsz, 3, device=dev, dtype=cd) if global_orient is None else global_orient.to(cd)
        if self.pose_repr == "6d":
            if hand_pose is None:
                local = torch.eye(3, device=dev, dtype=cd).expand(bsz, 15, 3, 3)
            else:
                local = rot6d_to_matrix(hand_pose.to(cd).reshape(-1, 15, 6))
            rot_mats = torch.cat([axis_angle_to_matrix(go)[:, None], local], dim=1)
            full_pose = torch.cat([go[:, None], matrix_to_axis_angle(local)], dim=1)
        else:
            if hand_pose is None:
                hand_pose = torch.zeros(bsz, self.hand_pose_dim()[0], device=dev, dtype=cd)
            aa = self.hand_pose_to_axis_angle(hand_pose)
            full_pose = torch.cat([go, aa], dim=1).reshape(-1, NUM_KINEMATIC_JOINTS, 3)
            rot_mats = axis_angle_to_matrix(full_pose)
        if betas is None:
            betas = torch.zeros(bsz, NUM_BETAS, device=dev, dtype=dt)

        # Shape: vertices in the layer dtype, joints (linear in betas) in the chain dtype.
        v_shaped = torch.addmm(self.v_template.reshape(1, -1), betas.to(dt), self.shapedirs)
        joints = torch.addmm(self.J_template.to(cd).reshape(1, -1), betas.to(cd), self.J_shapedirs.to(cd))
        joints = joints.reshape(-1, NUM_KINEMATIC_JOINTS, 3)

        # Pose correctives from the 15 finger rotations.
        eye = torch.eye(3, device=dev, dtype=cd)
        pose_feature = (rot_mats[:, 1:] - eye).flatten(1).to(dt)
        v_posed = torch.addmm(v_shaped, pose_feature, self.posedirs).unflatten(1, (-1, 3))

        glob_rot, glob_pos = forward_kinematics(rot_mats, joints, list(self.parents), self._levels)
        transforms = skinning_transforms(glob_rot, glob_pos, joints).to(dt)
        verts = blend_and_apply(self.lbs_weights, transforms, v_posed)

        tips = verts.index_select(1, self.tip_vertex_ids)
        joints_out = torch.cat([glob_pos.to(dt), tips], dim=1)
        # Built without Python batch sizes so that traced exports (ONNX) keep a dynamic batch axis.
        bottom = torch.cat([torch.zeros_like(glob_pos), torch.ones_like(glob_pos[..., :1])], dim=-1)[..., None, :]
        jt = torch.cat([torch.cat([glob_rot, glob_pos[..., None]], dim=-1), bottom], dim=-2)
        if transl is not None:
            t = transl.to(dt)[:, None, :]
            verts = verts + t
            joints_out = joints_out + t
            jt[..., :3, 3] += transl.to(cd)[:, None, :]
        return HandOutput(vertices=verts, joints=joints_out, full_pose=full_pose.to(dt),
                          joint_transforms=jt.to(dt), betas=betas.to(dt))

    # ------------------------------------------------------------------ helpers
    def rest_joints(self, betas: torch.Tensor | None = None) -> torch.Tensor:
        """Rest-pose kinematic joints.

        Args:
            betas: optional (B, 10) shape coefficients.

        Returns:
            (B, 16, 3) joints, metres, model frame (B = 1 without betas); float32 for half-precision layers.
        """
        if betas is None:
            return self.J_template.reshape(1, NUM_KINEMATIC_JOINTS, 3)
        j = torch.addmm(self.J_template.reshape(1, -1), betas.to(self.J_template.dtype), self.J_shapedirs)
        return j.reshape(-1, NUM_KINEMATIC_JOINTS, 3)
