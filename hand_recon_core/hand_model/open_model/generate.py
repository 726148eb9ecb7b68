"""Generate the open hand model (deterministic): mesh, rig, shape basis, pose correctives, pose PCA.

``generate_open_model()`` returns the right hand as a :class:`HandModelData`; ``hand-recon hand-model generate
--out PATH`` writes it as the asset ``hand_recon_core/assets/open_hand_v1.npz`` (float32). Running it again
reproduces the asset exactly: every step is deterministic numpy (fixed seeds, no timestamps).
"""

from __future__ import annotations

import numpy as np

from hand_recon_core.hand_model.constants import MANO_PARENTS
from hand_recon_core.hand_model.mesh_checks import vertex_normals
from hand_recon_core.hand_model.model_data import HandModelData
from hand_recon_core.hand_model.open_model import anatomy, rigging
from hand_recon_core.hand_model.open_model.mesh import build_open_mesh
from hand_recon_core.hand_model.pose_sampler import (
    MEAN_PRESET,
    anatomical_to_axis_angle,
    preset_angles,
    sample_hand_poses,
)

#: Version tag of the open model (part of its ``model_id``).
OPEN_MODEL_VERSION = "v1"
#: Seed and sample count of the pose PCA.
PCA_SEED = 20240601
PCA_SAMPLES = 5000


def _uwh_fields_to_model(field: np.ndarray) -> np.ndarray:
    """Displacement fields (V, 3, K) from (u, w, h) millimetres to model-frame (x, y, z) metres."""
    perm = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]) * anatomy.MM  # rows: x, y, z
    return np.einsum("ij,vjk->vik", perm, field)


def pose_pca(frames: np.ndarray, limits: np.ndarray, mean: np.ndarray, seed: int = PCA_SEED,
             n: int = PCA_SAMPLES) -> np.ndarray:
    """Orthonormal PCA basis (45, 45) of sampled plausible poses around ``mean`` (rows = components).

    Components are the eigenvectors of the second-moment matrix of ``samples - mean`` by decreasing
    eigenvalue; each row's sign is fixed so that its largest-magnitude entry is positive (deterministic).
    """
    rng = np.random.default_rng(seed)
    x = sample_hand_poses(rng, n, frames, limits) - mean
    evals, evecs = np.linalg.eigh(np.einsum("ni,nj->ij", x, x) / len(x))  # einsum: no threaded BLAS
    vt = evecs[:, np.argsort(evals)[::-1]].T
    flip = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    return vt * flip[:, None]


def generate_open_model() -> HandModelData:
    """Build the open right hand from :mod:`.anatomy` (takes ~3 s on one CPU core).

    Returns:
        The model (float64 arrays, model frame in metres: fingers -x, palm -y, thumb +z).
    """
    skel = anatomy.build_skeleton()
    mesh = build_open_mesh(skel)
    verts = mesh.vertices  # (u, w, h) mm
    axial = rigging.axial_weights(verts, mesh.surface)
    labels_hard = axial.argmax(axis=1).astype(np.int64)
    weights = rigging.smooth_weights(axial, mesh.quads, rigging.seam_vertices(verts, mesh.surface, mesh.quads))
    labels = weights.argmax(axis=1).astype(np.int64)
    reg = rigging.joint_regressor(verts, labels_hard, skel)
    tips = mesh.tip_ids.astype(np.int64)
    frames = anatomy.anatomical_frames(skel)
    limits = anatomy.joint_limits_rad()

    normals_uwh = vertex_normals(verts, mesh.faces)
    posedirs_uwh = rigging.pose_correctives(verts, normals_uwh, labels_hard, skel, frames)  # (V, 3, 135)
    shape_uwh = rigging.orthogonal_shape_basis(rigging.shape_displacements(verts, weights, skel))  # (10, V, 3)

    v_model = anatomy.uwh_to_model(verts)
    shapedirs = _uwh_fields_to_model(np.transpose(shape_uwh, (1, 2, 0)))  # (V, 3, 10)
    posedirs = _uwh_fields_to_model(posedirs_uwh)
    mean = anatomical_to_axis_angle(preset_angles(MEAN_PRESET), frames)
    comps = pose_pca(frames, limits, mean)
    return HandModelData(
        v_template=v_model,
        faces=mesh.faces,
        shapedirs=shapedirs,
        posedirs=posedirs,
        J_regressor=reg,
        weights=weights,
        parents=np.asarray(MANO_PARENTS, dtype=np.int64),
        hands_components=comps,
        hands_mean=mean,
        tip_vertex_ids=tips,
        part_labels=labels,
        side="right",
        model_id=f"open-{OPEN_MODEL_VERSION}-right",
        tip_convention=f"open-{OPEN_MODEL_VERSION}",
        joint_limits=limits,
        joint_frames=frames,
    ).validate()
