"""The hand-model data container (numpy arrays), its validation, mirroring and ``.npz`` storage.

A :class:`HandModelData` holds everything a linear-blend-skinning hand model needs, in the MANO layout, for one
side. Frames and units: the hand-model frame of the template (metres). Official MANO and the open model both put
the fingers roughly along -x, the palm facing -y and, for the right hand, the thumb towards +z; the left hand is
the mirror image (x -> -x).
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hand_recon_core.hand_model.constants import (
    AXIS_ANGLE_MIRROR_SIGNS,
    MANO_PARENTS,
    NUM_BETAS,
    NUM_HAND_POSE,
    NUM_KINEMATIC_JOINTS,
    NUM_POSE_BASIS,
    NUM_TIPS,
    check_side,
)

#: Format version written into ``.npz`` files by :meth:`HandModelData.save_npz`.
NPZ_FORMAT_VERSION = 1


@dataclass
class HandModelData:
    """Arrays of one hand model (one side), MANO layout.

    Attributes:
        v_template: (V, 3) float, rest-pose template vertices, metres, hand-model frame.
        faces: (F, 3) int64 triangles, counter-clockwise seen from outside.
        shapedirs: (V, 3, 10) float, shape blend shapes (metres per unit beta).
        posedirs: (V, 3, 135) float, pose-corrective blend shapes; column ``9 * (j - 1) + 3 * r + c`` multiplies
            entry ``(r, c)`` of ``R_j - I`` for kinematic joint ``j = 1..15`` (metres per unit entry).
        J_regressor: (16, V) float, dense array or scipy sparse matrix; rest joints = J_regressor @ vertices.
        weights: (V, 16) float, skinning weights (rows sum to 1).
        parents: (16,) int64 kinematic tree, MANO native order (-1 for the wrist).
        hands_components: (45, 45) float, PCA basis of the 45-D finger pose (rows are components, axis-angle
            radians in native joint order 1..15).
        hands_mean: (45,) float, mean finger pose (axis-angle, radians).
        tip_vertex_ids: (5,) int64, fingertip vertices (thumb, index, middle, ring, pinky).
        part_labels: (V,) int64 in 0..15, dominant kinematic joint (part) per vertex.
        side: ``"right"`` or ``"left"``.
        model_id: identifier recorded in checkpoints, e.g. ``"open-v1-right"`` or ``"mano-right-<sha1>"``.
        tip_convention: name of the fingertip-vertex convention (``"open-v1"``, ``"manopth"``).
        joint_limits: optional (16, 3, 2) float, radians: [min, max] of (flexion, abduction, twist) per joint in
            its anatomical frame (row 0, the wrist, is unused). Angles are those of the right-hand (or
            mirrored-to-right) pose; see :mod:`hand_recon_core.hand_model.pose_sampler`.
        joint_frames: optional (16, 3, 3) float rotation matrices whose columns are the anatomical axes of each
            joint at rest in the right-hand model frame: column 0 along the bone, column 1 towards the palm
            side of the bone (flexion moves the bone towards it), column 2 the flexion axis.
    """

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray | sp.spmatrix
    weights: np.ndarray
    parents: np.ndarray
    hands_components: np.ndarray
    hands_mean: np.ndarray
    tip_vertex_ids: np.ndarray
    part_labels: np.ndarray
    side: str = "right"
    model_id: str = "unknown"
    tip_convention: str = "unknown"
    joint_limits: np.ndarray | None = None
    joint_frames: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    # ------------------------------------------------------------------ properties
    @property
    def num_vertices(self) -> int:
        """Number of vertices V."""
        return int(self.v_template.shape[0])

    @property
    def num_faces(self) -> int:
        """Number of triangles F."""
        return int(self.faces.shape[0])

    def dense_regressor(self) -> np.ndarray:
        """(16, V) float64 dense joint regressor."""
        reg = self.J_regressor
        if sp.issparse(reg):
            return np.asarray(reg.toarray(), dtype=np.float64)
        return np.asarray(reg, dtype=np.float64)

    def rest_joints(self) -> np.ndarray:
        """(16, 3) float64 rest-pose kinematic joints (regressor applied to the template), metres."""
        return self.dense_regressor() @ np.asarray(self.v_template, dtype=np.float64)

    # ------------------------------------------------------------------ validation
    def validate(self) -> HandModelData:
        """Check shapes, index ranges and the kinematic tree; return ``self``.

        Raises:
            ValueError: naming the first inconsistent array.
        """
        check_side(self.side)
        v = self.num_vertices
        expect = {
            "v_template": (v, 3),
            "shapedirs": (v, 3, NUM_BETAS),
            "posedirs": (v, 3, NUM_POSE_BASIS),
            "J_regressor": (NUM_KINEMATIC_JOINTS, v),
            "weights": (v, NUM_KINEMATIC_JOINTS),
            "parents": (NUM_KINEMATIC_JOINTS,),
            "hands_components": (NUM_HAND_POSE, NUM_HAND_POSE),
            "hands_mean": (NUM_HAND_POSE,),
            "tip_vertex_ids": (NUM_TIPS,),
            "part_labels": (v,),
        }
        for name, shape in expect.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"{name} has shape {got}, expected {shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces has shape {tuple(self.faces.shape)}, expected (F, 3)")
        if self.faces.min() < 0 or self.faces.max() >= v:
            raise ValueError("faces index out of range")
        if tuple(int(p) for p in self.parents) != MANO_PARENTS:
            raise ValueError(f"parents {self.parents.tolist()} differ from the MANO tree {list(MANO_PARENTS)}")
        if self.tip_vertex_ids.min() < 0 or self.tip_vertex_ids.max() >= v:
            raise ValueError("tip_vertex_ids out of range")
        if self.part_labels.min() < 0 or self.part_labels.max() >= NUM_KINEMATIC_JOINTS:
            raise ValueError("part_labels must lie in 0..15")
        if self.joint_limits is not None and tuple(self.joint_limits.shape) != (NUM_KINEMATIC_JOINTS, 3, 2):
            raise ValueError(f"joint_limits has shape {tuple(self.joint_limits.shape)}, expected (16, 3, 2)")
        if self.joint_frames is not None and tuple(self.joint_frames.shape) != (NUM_KINEMATIC_JOINTS, 3, 3):
            raise ValueError(f"joint_frames has shape {tuple(self.joint_frames.shape)}, expected (16, 3, 3)")
        return self

    # ------------------------------------------------------------------ mirroring
    def mirrored(self, model_id: str | None = None) -> HandModelData:
        """The same model for the other side: reflect x, reverse the winding, mirror the pose bases.

        Vertices and shape directions get x negated; faces are reversed so normals stay outward; pose
        correctives are re-expressed for the mirrored rotations ``M R M`` (M = diag(-1, 1, 1)), which flips the
        sign of the entries whose row or column (but not both) is x, and of the x displacement; the PCA mean
        and components get the axis-angle mirror signs (x, -y, -z). Regressor, weights, part labels and tips
        are unchanged. ``joint_limits``/``joint_frames`` stay in the right-hand convention.

        Args:
            model_id: id of the result (default: ``model_id`` with the side word swapped).

        Returns:
            A new :class:`HandModelData` with the opposite ``side``.
        """
        other = "left" if self.side == "right" else "right"
        m = np.array([-1.0, 1.0, 1.0])
        v_template = self.v_template * m
        shapedirs = self.shapedirs * m[None, :, None]
        entry_sign = (m[:, None] * m[None, :]).reshape(9)  # sign of (R - I)[r, c] under M . M
        pose_sign = np.tile(entry_sign, NUM_POSE_BASIS // 9)
        posedirs = self.posedirs * m[None, :, None] * pose_sign[None, None, :]
        aa_sign = np.tile(AXIS_ANGLE_MIRROR_SIGNS, NUM_HAND_POSE // 3)
        if model_id is None:
            model_id = self.model_id.replace(self.side, other) if self.side in self.model_id else self.model_id
        return dataclasses.replace(
            self,
            v_template=v_template.astype(self.v_template.dtype),
            faces=self.faces[:, [0, 2, 1]].copy(),
            shapedirs=shapedirs.astype(self.shapedirs.dtype),
            posedirs=posedirs.astype(self.posedirs.dtype),
            hands_components=(self.hands_components * aa_sign[None, :]).astype(self.hands_components.dtype),
            hands_mean=(self.hands_mean * aa_sign).astype(self.hands_mean.dtype),
            side=other,
            model_id=model_id,
            extras=dict(self.extras),
        )

    # ------------------------------------------------------------------ storage
    def to_arrays(self, dtype: np.dtype = np.float32) -> dict[str, np.ndarray]:
        """Flat dict of arrays (floats cast to ``dtype``, regressor dense) as written by :meth:`save_npz`."""
        f = np.dtype(dtype)
        out: dict[str, np.ndarray] = {
            "format_version": np.array(NPZ_FORMAT_VERSION, dtype=np.int64),
            "v_template": np.asarray(self.v_template, dtype=f),
            "faces": np.asarray(self.faces, dtype=np.int32),
            "shapedirs": np.asarray(self.shapedirs, dtype=f),
            "posedirs": np.asarray(self.posedirs, dtype=f),
            "J_regressor": self.dense_regressor().astype(f),
            "weights": np.asarray(self.weights, dtype=f),
            "parents": np.asarray(self.parents, dtype=np.int32),
            "hands_components": np.asarray(self.hands_components, dtype=f),
            "hands_mean": np.asarray(self.hands_mean, dtype=f),
            "tip_vertex_ids": np.asarray(self.tip_vertex_ids, dtype=np.int32),
            "part_labels": np.asarray(self.part_labels, dtype=np.int8),
            "side": np.array(self.side),
            "model_id": np.array(self.model_id),
            "tip_convention": np.array(self.tip_convention),
        }
        if self.joint_limits is not None:
            out["joint_limits"] = np.asarray(self.joint_limits, dtype=f)
        if self.joint_frames is not None:
            out["joint_frames"] = np.asarray(self.joint_frames, dtype=f)
        for k, a in self.extras.items():
            out[f"extra_{k}"] = np.asarray(a)
        return out

    def save_npz(self, path: str | Path, dtype: np.dtype = np.float32) -> Path:
        """Write the model as a compressed ``.npz`` (deterministic bytes for identical contents).

        Args:
            path: destination file.
            dtype: float dtype of the stored arrays.

        Returns:
            The path written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(npz_bytes(self.to_arrays(dtype)))
        return path

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> HandModelData:
        """Build from the dict written by :meth:`to_arrays` (float arrays kept as stored)."""
        version = int(arrays.get("format_version", NPZ_FORMAT_VERSION))
        if version > NPZ_FORMAT_VERSION:
            raise ValueError(f"hand-model file format {version} is newer than supported ({NPZ_FORMAT_VERSION})")
        extras = {k[len("extra_"):]: np.asarray(v) for k, v in arrays.items() if k.startswith("extra_")}
        return cls(
            v_template=np.asarray(arrays["v_template"]),
            faces=np.asarray(arrays["faces"], dtype=np.int64),
            shapedirs=np.asarray(arrays["shapedirs"]),
            posedirs=np.asarray(arrays["posedirs"]),
            J_regressor=np.asarray(arrays["J_regressor"]),
            weights=np.asarray(arrays["weights"]),
            parents=np.asarray(arrays["parents"], dtype=np.int64),
            hands_components=np.asarray(arrays["hands_components"]),
            hands_mean=np.asarray(arrays["hands_mean"]),
            tip_vertex_ids=np.asarray(arrays["tip_vertex_ids"], dtype=np.int64),
            part_labels=np.asarray(arrays["part_labels"], dtype=np.int64),
            side=str(arrays["side"]),
            model_id=str(arrays["model_id"]),
            tip_convention=str(arrays.get("tip_convention", "unknown")),
            joint_limits=np.asarray(arrays["joint_limits"]) if "joint_limits" in arrays else None,
            joint_frames=np.asarray(arrays["joint_frames"]) if "joint_frames" in arrays else None,
            extras=extras,
        ).validate()

    @classmethod
    def load_npz(cls, path: str | Path) -> HandModelData:
        """Read a model written by :meth:`save_npz` (no pickles are loaded)."""
        with np.load(Path(path), allow_pickle=False) as z:
            return cls.from_arrays({k: z[k] for k in z.files})


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Serialise arrays into deterministic ``.npz`` bytes (fixed zip timestamps, sorted names, deflate).

    ``numpy.savez_compressed`` stamps the current time into the zip entries, so two runs differ; this writer
    uses a fixed timestamp and a fixed order so regenerating an asset reproduces it byte for byte.

    Args:
        arrays: name -> array (no object arrays).

    Returns:
        The bytes of the ``.npz`` file.
    """
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            arr = np.asarray(arrays[name])
            arr = arr if arr.flags.c_contiguous else arr.copy(order="C")  # keeps 0-d arrays 0-d
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


def compare_npz(blob: bytes, arrays: dict[str, np.ndarray], rtol: float = 1e-5, atol: float = 1e-6
                ) -> tuple[str, str]:
    """Compare a stored ``.npz`` (``blob``) with freshly computed ``arrays``.

    Regenerated floating-point arrays can differ in their last float32 bits with the BLAS thread count
    (``OMP_NUM_THREADS`` changes the reduction order), so equality is byte-for-byte when possible and otherwise
    within float32 rounding (``rtol``, ``atol``); names, shapes, dtypes and integer arrays must match exactly.

    Returns:
        ``(verdict, detail)``: verdict ``"identical"``, ``"equal within float32 rounding"`` or ``"different"``;
        detail names the first differing array (empty otherwise).
    """
    if npz_bytes(arrays) == blob:
        return "identical", ""
    import zipfile

    try:
        stored = np.load(io.BytesIO(blob), allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        return "different", f"the stored file is not a readable .npz ({exc})"
    with stored:
        names = sorted(stored.files)
        if names != sorted(arrays):
            return "different", f"array names {names} vs {sorted(arrays)}"
        for key in names:
            a, b = np.asarray(arrays[key]), stored[key]
            if a.shape != b.shape or a.dtype != b.dtype:
                return "different", f"{key}: {a.dtype}{a.shape} vs stored {b.dtype}{b.shape}"
            same = (np.allclose(a, b, rtol=rtol, atol=atol) if np.issubdtype(a.dtype, np.floating)
                    else np.array_equal(a, b))
            if not same:
                return "different", key
    return "equal within float32 rounding", ""
