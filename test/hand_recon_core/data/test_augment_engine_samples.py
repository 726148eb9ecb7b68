"""Augmentations on real engine samples (with extras): every label stays consistent with the hand model, the
camera and the engine's own definitions (centres, object masks and poses, lighting, interacting pairs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_recon_core.data.augment import flip_sample, select_hands, warp_sample
from hand_recon_core.data.extras import rotate_sh
from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.data.synthetic.engine import generate_sample
from hand_recon_core.data.synthetic.ground_truth import hand_center
from hand_recon_core.hand_model.loader import load_hand_model
from hand_recon_core.render.rasterizer import sh_shading


@pytest.fixture(scope="module")
def layers():
    return {code: load_hand_model("open", side=side, flat_hand_mean=True, dtype=torch.float64)
            for code, side in ((RIGHT, "right"), (LEFT, "left"))}


@pytest.fixture(scope="module")
def samples():
    return {
        "interacting": generate_sample("interacting", 1, seed=3, size=128, extras=True),
        "hand_object": generate_sample("hand_object", 2, seed=3, size=128, extras=True),
        "multi": generate_sample("multi", 0, seed=5, size=256, extras=True, num_hands=(4, 4)),
    }


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    p = points @ np.asarray(K, np.float64).T
    return p[..., :2] / p[..., 2:]


def _check_hands(s: dict, layers) -> None:
    """Parameters through the layer of each hand's side reproduce its 3D labels; joints project to keypoints."""
    for i, code in enumerate(s["handedness"]):
        pose = torch.from_numpy(np.asarray(s["hand_pose"][i:i + 1], np.float64))
        out = layers[int(code)](global_orient=pose[:, :3], hand_pose=pose[:, 3:],
                                betas=torch.from_numpy(np.asarray(s["betas"][i:i + 1], np.float64)),
                                transl=torch.from_numpy(np.asarray(s["transl"][i:i + 1], np.float64)))
        np.testing.assert_allclose(out.vertices[0].numpy(), s["vertices_3d"][i], atol=2e-5)
        np.testing.assert_allclose(out.joints[0].numpy(), s["joints_3d"][i], atol=2e-5)
        valid = s["joint_valid"][i] > 0
        np.testing.assert_allclose(_project(s["joints_3d"][i], s["K"])[valid], s["keypoints_2d"][i][valid],
                                   atol=5e-3)


def _check_centres(s: dict) -> None:
    h, w = s["image"].shape[:2]
    for i in range(len(s["handedness"])):
        c, ok = hand_center(s["keypoints_2d"][i], s["joint_visible"][i], s["bbox"][i], (h, w))
        np.testing.assert_allclose(s["center"][i], c, atol=1e-4)
        assert bool(s["center_valid"][i]) == ok


def _check_lighting(before: dict, after: dict, frame: np.ndarray) -> None:
    """The light seen by a surface is unchanged when its normal moves with the camera frame (n' = R n)."""
    rng = np.random.default_rng(0)
    n = rng.normal(size=(50, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    np.testing.assert_allclose(sh_shading(n @ frame.T, after["sh_coeffs"]), sh_shading(n, before["sh_coeffs"]),
                               atol=1e-5)


def test_flip_keeps_engine_labels_consistent(samples, layers):
    for name in ("interacting", "hand_object"):
        s = samples[name]
        f = flip_sample(s)
        assert f["handedness"].tolist() == (1 - s["handedness"]).tolist()
        _check_hands(f, layers)
        _check_centres(f)
        _check_lighting(s, f, np.diag([-1.0, 1.0, 1.0]))
        np.testing.assert_array_equal(f["object_mask"], s["object_mask"][:, ::-1])
        if len(s["object_pose"]):
            centre = f["object_pose"][:, :3, 3]
            np.testing.assert_allclose(_project(centre, f["K"]), _project(s["object_pose"][:, :3, 3], s["K"])
                                       * [-1, 1] + [s["image"].shape[1] - 1, 0], atol=1e-3)
            rot = f["object_pose"][:, :3, :3].astype(np.float64)
            np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)  # still a rigid pose


def test_rotation_keeps_engine_labels_consistent(samples, layers):
    s = samples["hand_object"]
    h, w = s["image"].shape[:2]
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    angle = np.radians(35.0)
    a = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * 0.9
    matrix = np.hstack([a, (c - a @ c)[:, None]])
    r = warp_sample(s, matrix, drop_outside=False)  # transl re-expressed through joints_3d - transl (exact here)
    _check_hands(r, layers)
    _check_centres(r)
    np.testing.assert_array_equal(r["mask"] >= 0, r["part_seg"] > 0)  # label maps stay in register
    # camera rotation of the warp: the 3D labels turned about z by the image angle
    q = np.eye(3)
    q[:2, :2] = a / 0.9
    np.testing.assert_allclose(r["joints_3d"], s["joints_3d"] @ q.T, atol=1e-5)
    _check_lighting(s, r, q)
    if len(s["object_pose"]):
        mapped = _project(s["object_pose"][:, :3, 3], s["K"]) @ matrix[:, :2].T + matrix[:, 2]
        np.testing.assert_allclose(_project(r["object_pose"][:, :3, 3], r["K"]), mapped, atol=1e-3)
    # the object mask moves with the image: an object pixel lands on the same object id
    ys, xs = np.nonzero(s["object_mask"] >= 0)
    if len(ys):
        uv = np.stack([xs, ys], 1) @ matrix[:, :2].T + matrix[:, 2]
        iu, iv = np.rint(uv).astype(int).T
        inside = (iu >= 1) & (iu < w - 1) & (iv >= 1) & (iv < h - 1)
        agree = r["object_mask"][iv[inside], iu[inside]] == s["object_mask"][ys[inside], xs[inside]]
        assert agree.mean() > 0.95


def test_dropping_hands_reindexes_per_hand_extras(samples):
    s = samples["multi"]
    n = len(s["handedness"])
    assert n == 4
    s = dict(s, interaction_pairs=np.array([[0, 1], [1, 3], [2, 3]]))  # pairs to renumber
    keep = np.array([3, 1])
    d = select_hands(s, keep)
    np.testing.assert_array_equal(d["center"], s["center"][keep])
    np.testing.assert_array_equal(d["albedo"], s["albedo"][keep])
    np.testing.assert_array_equal(d["skin_tone"], s["skin_tone"][keep])
    assert d["interaction_pairs"].tolist() == [[0, 1]]  # old (1, 3) -> new (1, 0), sorted


def test_rotate_sh_is_exact_and_composes():
    rng = np.random.default_rng(1)
    sh = rng.normal(size=27).astype(np.float32)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    back = rotate_sh(rotate_sh(sh, q), q.T)
    np.testing.assert_allclose(back, sh, atol=1e-5)
    np.testing.assert_allclose(rotate_sh(sh, np.eye(3)), sh, atol=1e-6)
