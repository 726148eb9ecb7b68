"""Ground truth of a rendered synthetic scene: labels computed from the render result and the scene.

Conventions (all maps are ``(H, W)`` in the image's pixel grid; pixel ``(row i, col j)`` is centred at
``(u, v) = (j, i)``, the project convention of :mod:`hand_recon_core.data.sample`):

* ``mask``: index of the hand whose surface is visible at the pixel, -1 elsewhere (background and objects:
  objects occlude hands, their pixels are in the extra ``object_mask``).
* ``part_seg`` (ACR's 33 classes): the visible face's vertex with the largest barycentric coordinate gives
  the pixel's vertex, the hand model's ``part_labels`` its part ``p`` (0-15, the kinematic joint that
  dominates it); the class is ``1 + p`` for a right hand and ``17 + p`` for a left hand, 0 elsewhere.
* ``dense`` (DIR's dense correspondence map): DIR (Ren et al., CVPR 2023, Sec. 3.4 "Pixel-wise Loss") predicts
  "two-hand segmentation and dense correspondence maps [IntagHand, Mueller 2019, RGB2Hands]" supervised with
  MSE; its public data preparation renders every hand mesh with a fixed per-vertex colour table
  (``dense_coor``, (V, 3) in [0, 1], the *same table for the left and the right hand*, indexed by vertex) under
  flat ambient light, i.e. each hand pixel holds the colour code of the visible surface point, interpolated
  from the code of its face's vertices, and the background is 0. DIR's table itself (IntagHand's binary
  ``v_color.pkl`` asset) is not described in the papers; ours is the hand model's rest template (flat hand,
  betas 0, right-hand frame) normalised per axis to [0, 1] over its bounding box,
  ``code = (v_rest - min) / (max - min)`` (channel 0: fingertips 0 -> wrist 1; channel 1: palm side 0 ->
  back 1; channel 2: little-finger side 0 -> thumb side 1), a smooth code unique to each surface point.
  The map holds the perspective-correct barycentric interpolation of the codes of the visible face's three
  vertices (hands only; background and objects 0), quantised to 8 bits like DIR's stored maps (an 8-bit image
  divided by 255; 1/255 of the hand's extent is below 1 mm): ``dense = round(code * 255) / 255``, float32
  (H, W, 3).
* ``depth``: camera-frame z of the visible surface (hands and objects), 0 on the background, quantised to
  ``DEPTH_STEP`` = 0.1 mm (``depth = round(z / DEPTH_STEP) * DEPTH_STEP``) so that it stores compactly and
  exactly; the visibility rule below uses this stored depth.
* Joint visibility (:func:`joint_visibility`): joint ``j`` of hand ``i`` with projection ``(u, v)`` is visible
  when its rounded pixel ``(round(v), round(u))`` lies in the image and some pixel of the 3 x 3 window around
  it shows hand ``i`` (``mask == i``) at a depth ``d >= z_j - r_j - JOINT_VISIBILITY_TOLERANCE``, where
  ``z_j`` is the joint's depth and ``r_j`` the distance from the joint to the nearest vertex of its part (the
  part of kinematic joint ``j`` is ``j``; a fingertip's is its distal joint; so ``z_j - r_j`` is the depth of
  the part's nearest surface if it faced the camera). An occluding surface (another finger, the other hand, an
  object) lies in front of that by more than the tolerance. ``joint_valid`` is 1 for every joint (all are
  annotated, also outside the image).
* ``bbox``: box of the hand's projected vertices, clipped to the image ``[0, W - 1] x [0, H - 1]``.
* ``center`` (extra): mean of the visible 2D keypoints (the single-stage paper's ground-truth centre, "the mean
  position of all visible 2D keypoints"); when no keypoint is visible, the mean of the keypoints inside the
  image, else the bbox centre, with ``center_valid`` False.
* Interacting hands (extra ``interaction_pairs``): pairs ``(i, k)``, ``i < k``, whose meshes come within
  ``INTERACTION_DISTANCE`` (closest vertex-to-vertex distance).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from hand_recon_core.data.sample import (
    LEFT,
    MASK_BACKGROUND,
    PART_SEG_PARTS_PER_HAND,
    RIGHT,
    empty_hands,
    handedness_from_name,
)
from hand_recon_core.data.synthetic.camera import project
from hand_recon_core.data.synthetic.hands import HandModels
from hand_recon_core.data.synthetic.scene import OBJECT_KINDS, OBJECT_ROLES, Scene
from hand_recon_core.hand_model.constants import NUM_KINEMATIC_JOINTS, TIP_PARENTS
from hand_recon_core.render.rasterizer import RenderResult

__all__ = [
    "JOINT_VISIBILITY_TOLERANCE",
    "VISIBILITY_WINDOW",
    "INTERACTION_DISTANCE",
    "DENSE_LEVELS",
    "DEPTH_STEP",
    "quantize_depth",
    "dequantize_depth",
    "dequantize_dense",
    "EXTRA_KEYS",
    "JOINT_PARTS",
    "instance_mask",
    "hand_pixels",
    "part_segmentation",
    "dense_correspondence",
    "joint_surface_offsets",
    "joint_visibility",
    "clipped_box",
    "hand_center",
    "interaction_pairs",
    "build_sample",
    "split_extras",
]

#: Depth tolerance of the joint visibility rule (metres).
JOINT_VISIBILITY_TOLERANCE = 0.01
#: Half size of the pixel window of the visibility rule (1: 3 x 3 pixels).
VISIBILITY_WINDOW = 1
#: Two hands interact when their meshes come within this distance (metres).
INTERACTION_DISTANCE = 0.02
#: Quantisation levels of the dense correspondence map (8 bits).
DENSE_LEVELS = 255
#: Quantisation step of the depth map (metres).
DEPTH_STEP = 1e-4
#: Part (kinematic joint) owning each of the 21 ``mano21`` joints: itself, or a fingertip's distal joint.
JOINT_PARTS = np.array(list(range(NUM_KINEMATIC_JOINTS)) + list(TIP_PARENTS), dtype=np.int64)

#: Extra keys (not part of the sample format) returned with ``extras=True``: name -> (shape, dtype, meaning).
EXTRA_KEYS: dict[str, tuple[str, str, str]] = {
    "center": ("(N, 2)", "float32", "pixels: mean of the visible keypoints (single-stage centre)"),
    "center_valid": ("(N,)", "bool", "the hand has at least one visible keypoint"),
    "interaction_pairs": ("(P, 2)", "int64", "hand index pairs (i < k) within INTERACTION_DISTANCE"),
    "sh_coeffs": ("(27,)", "float32", "SH lighting, channel-major (render.rasterizer.sh_shading)"),
    "albedo": ("(N, V, 3)", "float32", "per-vertex skin colour in [0, 1] (multiples of 1/255)"),
    "skin_tone": ("(N,)", "float32", "palette position 0 (very light) .. 8 (very dark)"),
    "object_type": ("(M,)", "int64", "index into scene.OBJECT_KINDS (box, cylinder, sphere)"),
    "object_role": ("(M,)", "int64", "index into scene.OBJECT_ROLES (occluder, grasped)"),
    "object_hand": ("(M,)", "int64", "grasping hand index, -1 for none"),
    "object_size": ("(M, 3)", "float32", "metres; box sides / (r, r, height) / (r, r, r)"),
    "object_pose": ("(M, 4, 4)", "float32", "object-to-camera transform (metres)"),
    "object_mask": ("(H, W)", "int16", "visible object index, -1 elsewhere"),
}


def quantize_depth(depth: np.ndarray) -> np.ndarray:
    """Depth in units of ``DEPTH_STEP``.

    Args:
        depth: (H, W) float depth in metres; +inf or 0 where there is no surface.

    Returns:
        (H, W) uint32 ``round(depth / DEPTH_STEP)``, 0 where there is no surface.
    """
    d = np.where(np.isfinite(depth), depth, 0.0).astype(np.float64)
    return np.rint(d / DEPTH_STEP).astype(np.uint32)


def dequantize_depth(q: np.ndarray) -> np.ndarray:
    """Inverse of :func:`quantize_depth`: (H, W) float32 metres (bitwise the same for the same integers)."""
    return (np.asarray(q, dtype=np.float64) * DEPTH_STEP).astype(np.float32)


def dequantize_dense(q: np.ndarray) -> np.ndarray:
    """Quantised dense map (uint8 levels) -> float32 in [0, 1] (bitwise the same for the same levels)."""
    return np.asarray(q).astype(np.float32) / np.float32(DENSE_LEVELS)


def instance_mask(mesh_id: np.ndarray, num_hands: int) -> np.ndarray:
    """Hand instance mask from the renderer's mesh ids (hands are meshes ``0 .. num_hands - 1``).

    Args:
        mesh_id: (H, W) int32 visible mesh index, -1 on the background.
        num_hands: number of hand meshes (rendered first).

    Returns:
        (H, W) int16 hand index or -1.
    """
    return np.where((mesh_id >= 0) & (mesh_id < num_hands), mesh_id, MASK_BACKGROUND).astype(np.int16)


def hand_pixels(render: RenderResult, sides: list[str], faces: dict[str, np.ndarray]
                ) -> list[tuple[int, str, np.ndarray, np.ndarray, np.ndarray]]:
    """Pixels of every hand with their face's vertex ids and barycentrics.

    Args:
        render: the render (hands are meshes ``0 .. N - 1``).
        sides: N side names.
        faces: per side (F, 3) faces used for rendering.

    Returns:
        One ``(hand index, side, flat pixel indices (n,), vertex ids (n, 3), barycentrics (n, 3) float32)`` per
        hand with at least one visible pixel.
    """
    mid = render.mesh_id.reshape(-1)
    order = np.argsort(mid, kind="stable")
    bounds = np.searchsorted(mid[order], np.arange(len(sides) + 1))
    fid, bary = render.face_id.reshape(-1), render.bary.reshape(-1, 3)
    out = []
    for i, side in enumerate(sides):
        sel = np.sort(order[bounds[i]:bounds[i + 1]])
        if sel.size:
            out.append((i, side, sel, faces[side][fid[sel]], bary[sel]))
    return out


def part_segmentation(render: RenderResult, sides: list[str], faces: dict[str, np.ndarray],
                      part_labels: np.ndarray, pixels: list | None = None) -> np.ndarray:
    """ACR 33-class part segmentation (see the module docstring).

    Args:
        render: the render of the scene (hands are meshes ``0 .. N - 1``).
        sides: N side names of the hand meshes.
        faces: per side (F, 3) faces used for rendering.
        part_labels: (V,) part of each vertex (0-15).
        pixels: optional precomputed :func:`hand_pixels`.

    Returns:
        (H, W) uint8 classes 0-32.
    """
    out = np.zeros(render.mesh_id.size, dtype=np.uint8)
    for _i, side, sel, tri, bary in (hand_pixels(render, sides, faces) if pixels is None else pixels):
        vert = tri[np.arange(sel.size), np.argmax(bary, axis=1)]
        offset = 1 + (PART_SEG_PARTS_PER_HAND if handedness_from_name(side) == LEFT else 0)
        out[sel] = (offset + part_labels[vert]).astype(np.uint8)
    return out.reshape(render.mesh_id.shape)


def dense_correspondence(render: RenderResult, sides: list[str], faces: dict[str, np.ndarray],
                         code: np.ndarray, pixels: list | None = None) -> np.ndarray:
    """Quantised DIR dense correspondence map (see the module docstring).

    Args:
        render: the render of the scene (hands are meshes ``0 .. N - 1``).
        sides: N side names of the hand meshes.
        faces: per side (F, 3) faces used for rendering.
        code: (V, 3) per-vertex code in [0, 1].
        pixels: optional precomputed :func:`hand_pixels`.

    Returns:
        (H, W, 3) uint8 ``round(code * DENSE_LEVELS)``, 0 off the hands.
    """
    out = np.zeros((render.mesh_id.size, 3), dtype=np.uint8)
    code = np.asarray(code, dtype=np.float64)
    for _i, _side, sel, tri, bary in (hand_pixels(render, sides, faces) if pixels is None else pixels):
        val = np.einsum("nk,nkc->nc", bary.astype(np.float64), code[tri])
        out[sel] = np.rint(np.clip(val, 0.0, 1.0) * DENSE_LEVELS).astype(np.uint8)
    return out.reshape(*render.mesh_id.shape, 3)


def joint_surface_offsets(joints: np.ndarray, vertices: np.ndarray, part_labels: np.ndarray) -> np.ndarray:
    """Distance from every joint to the nearest vertex of its part (``r_j`` of the visibility rule).

    Args:
        joints: (21, 3) joints, metres.
        vertices: (V, 3) vertices of the same hand, metres.
        part_labels: (V,) part of each vertex.

    Returns:
        (21,) float64 metres.
    """
    out = np.zeros(len(JOINT_PARTS))
    v = np.asarray(vertices, dtype=np.float64)
    j = np.asarray(joints, dtype=np.float64)
    for k, part in enumerate(JOINT_PARTS):
        pv = v[part_labels == part]
        out[k] = np.sqrt(np.min(np.sum((pv - j[k]) ** 2, axis=1))) if pv.size else 0.0
    return out


def joint_visibility(uv: np.ndarray, joints: np.ndarray, offsets: np.ndarray, hand_index: int, mask: np.ndarray,
                     depth: np.ndarray, tolerance: float = JOINT_VISIBILITY_TOLERANCE,
                     window: int = VISIBILITY_WINDOW) -> np.ndarray:
    """Occlusion-aware visibility of one hand's joints (rule in the module docstring).

    Args:
        uv: (21, 2) projected joints, pixels.
        joints: (21, 3) camera-frame joints, metres.
        offsets: (21,) ``r_j`` from :func:`joint_surface_offsets`, metres.
        hand_index: index of the hand in ``mask``.
        mask: (H, W) hand instance mask.
        depth: (H, W) float depth of the visible surface, metres.
        tolerance: depth tolerance, metres.
        window: half size of the pixel window.

    Returns:
        (21,) float32 0/1.
    """
    h, w = mask.shape
    col = np.rint(uv[:, 0]).astype(np.int64)
    row = np.rint(uv[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h) & np.all(np.isfinite(uv), axis=1)
    z_ref = np.asarray(joints, np.float64)[:, 2] - np.asarray(offsets, np.float64) - tolerance
    vis = np.zeros(len(uv), dtype=bool)
    for dr in range(-window, window + 1):
        for dc in range(-window, window + 1):
            r, c = row + dr, col + dc
            ok = inside & (r >= 0) & (r < h) & (c >= 0) & (c < w)
            rr, cc = np.where(ok, r, 0), np.where(ok, c, 0)
            vis |= ok & (mask[rr, cc] == hand_index) & (depth[rr, cc] >= z_ref)
    return vis.astype(np.float32)


def clipped_box(uv: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Box of points clipped to the image.

    Args:
        uv: (N, 2) pixels.
        size: (H, W).

    Returns:
        (4,) float32 ``x1, y1, x2, y2`` within ``[0, W - 1] x [0, H - 1]``.
    """
    h, w = size
    lo = np.clip(uv.min(axis=0), 0.0, [w - 1, h - 1])
    hi = np.clip(uv.max(axis=0), 0.0, [w - 1, h - 1])
    return np.concatenate([lo, hi]).astype(np.float32)


def hand_center(keypoints: np.ndarray, visible: np.ndarray, box: np.ndarray, size: tuple[int, int]
                ) -> tuple[np.ndarray, bool]:
    """Hand centre: mean of the visible keypoints (fallbacks in the module docstring).

    Args:
        keypoints: (21, 2) pixels.
        visible: (21,) 0/1.
        box: (4,) clipped box.
        size: (H, W).

    Returns:
        ``((2,) float32 centre, valid)``.
    """
    h, w = size
    vis = np.asarray(visible) > 0
    if vis.any():
        return keypoints[vis].mean(axis=0).astype(np.float32), True
    inside = (keypoints[:, 0] >= -0.5) & (keypoints[:, 0] <= w - 0.5) & (keypoints[:, 1] >= -0.5) & (
        keypoints[:, 1] <= h - 0.5)
    if inside.any():
        return keypoints[inside].mean(axis=0).astype(np.float32), False
    return np.array([0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])], dtype=np.float32), False


def interaction_pairs(vertices: list[np.ndarray], distance: float = INTERACTION_DISTANCE) -> np.ndarray:
    """Pairs of hands whose meshes come within ``distance`` (closest vertex-to-vertex distance).

    Args:
        vertices: N arrays (V, 3), camera frame, metres.
        distance: contact distance, metres.

    Returns:
        (P, 2) int64 pairs ``(i, k)``, ``i < k``, in lexicographic order.
    """
    pairs = []
    centres = [v.mean(axis=0) for v in vertices]
    radii = [float(np.max(np.linalg.norm(v - c, axis=1))) for v, c in zip(vertices, centres)]
    trees: dict[int, cKDTree] = {}
    for i in range(len(vertices)):
        for k in range(i + 1, len(vertices)):
            if np.linalg.norm(centres[i] - centres[k]) > radii[i] + radii[k] + distance:
                continue
            if i not in trees:
                trees[i] = cKDTree(vertices[i])
            d, _ = trees[i].query(vertices[k], k=1, distance_upper_bound=distance)
            if np.any(np.isfinite(d)):
                pairs.append((i, k))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def build_sample(scene: Scene, render: RenderResult, image: np.ndarray, models: HandModels, dataset: str,
                 sample_id: str, extras: bool = False) -> dict:
    """Assemble the sample dict (sample format of :mod:`hand_recon_core.data.sample`, plus extras).

    Args:
        scene: the scene.
        render: its render (hands first, then ``scene.objects`` in order).
        image: (H, W, 3) uint8 final image.
        models: the hand models used.
        dataset: dataset name.
        sample_id: unique sample id.
        extras: also return the :data:`EXTRA_KEYS`.

    Returns:
        The sample dict.
    """
    h, w = scene.size
    n = len(scene.hands)
    sides = [hd.side for hd in scene.hands]
    K = scene.K.astype(np.float32)
    mask = instance_mask(render.mesh_id, n)
    pixels = hand_pixels(render, sides, models.faces)
    depth = dequantize_depth(quantize_depth(render.depth))
    per = empty_hands(n)
    centers = np.zeros((n, 2), dtype=np.float32)
    center_valid = np.zeros(n, dtype=bool)
    for i, hd in enumerate(scene.hands):
        uv_j = project(hd.joints, K)
        uv_v = project(hd.vertices, K)
        offsets = joint_surface_offsets(hd.joints, hd.vertices, models.part_labels)
        vis = joint_visibility(uv_j, hd.joints, offsets, i, mask, depth)
        box = clipped_box(uv_v, (h, w))
        per["handedness"][i] = RIGHT if hd.side == "right" else LEFT
        per["joints_3d"][i] = hd.joints
        per["keypoints_2d"][i] = uv_j.astype(np.float32)
        per["joint_valid"][i] = 1.0
        per["joint_visible"][i] = vis
        per["bbox"][i] = box
        per["has_3d"][i] = True
        per["hand_pose"][i] = hd.hand_pose
        per["betas"][i] = hd.betas
        per["transl"][i] = hd.transl
        per["has_params"][i] = True
        centers[i], center_valid[i] = hand_center(uv_j.astype(np.float32), vis, box, (h, w))
    sample = {
        "image": image,
        "K": K,
        **per,
        "vertices_3d": (np.stack([hd.vertices for hd in scene.hands]) if n else
                        np.zeros((0, models.num_vertices, 3))).astype(np.float32),
        "mask": mask,
        "part_seg": part_segmentation(render, sides, models.faces, models.part_labels, pixels),
        "depth": depth,
        "dense": dequantize_dense(dense_correspondence(render, sides, models.faces, models.dense_code, pixels)),
        "dataset": dataset,
        "sample_id": sample_id,
        "hand_model_id": models.name,
    }
    if extras:
        m = len(scene.objects)
        obj_ids = render.mesh_id - n
        sample.update({
            "center": centers,
            "center_valid": center_valid,
            "interaction_pairs": interaction_pairs([hd.vertices for hd in scene.hands]),
            "sh_coeffs": np.asarray(scene.sh, dtype=np.float32).reshape(27),
            "albedo": (np.stack([hd.albedo for hd in scene.hands]) if n else
                       np.zeros((0, models.num_vertices, 3))).astype(np.float32),
            "skin_tone": np.array([hd.tone for hd in scene.hands], dtype=np.float32),
            "object_type": np.array([OBJECT_KINDS.index(o.kind) for o in scene.objects], dtype=np.int64),
            "object_role": np.array([OBJECT_ROLES.index(o.role) for o in scene.objects], dtype=np.int64),
            "object_hand": np.array([o.hand for o in scene.objects], dtype=np.int64),
            "object_size": np.array([o.size for o in scene.objects], dtype=np.float32).reshape(m, 3),
            "object_pose": np.array([o.pose for o in scene.objects], dtype=np.float32).reshape(m, 4, 4),
            "object_mask": np.where((obj_ids >= 0) & (render.mesh_id >= 0), obj_ids, -1).astype(np.int16),
        })
    return sample


def split_extras(sample: dict) -> tuple[dict, dict]:
    """Separate the :data:`EXTRA_KEYS` from a sample.

    Args:
        sample: a sample, possibly with extras.

    Returns:
        ``(core, extras)``: the sample-format part (passes ``validate_sample``) and the extras.
    """
    core = {k: v for k, v in sample.items() if k not in EXTRA_KEYS}
    return core, {k: v for k, v in sample.items() if k in EXTRA_KEYS}
