"""ACR (models.acr, models.heads.acr_attention): maps, attention, targets, decoding, cameras, ONNX, training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hand_recon_core.data.augment import warp_sample
from hand_recon_core.data.sample import LEFT, RIGHT, empty_hands
from hand_recon_core.geometry.cameras import normalized_to_pixels, project_points
from hand_recon_core.geometry.rotations import axis_angle_to_matrix
from hand_recon_core.hand_model.loader import load_hand_model
from hand_recon_core.models.acr import (
    MCP_INDICES,
    PARAM_DIM,
    PARAM_MAP_CHANNELS,
    ACRMethod,
    ACROnnxModule,
    encode_acr_targets,
    export_onnx,
    weak_perspective_to_camera,
)
from hand_recon_core.models.heads.acr_attention import (
    attention_pool,
    interaction_intensity,
    repel_centers,
    spatial_softmax,
)
from hand_recon_core.models.registry import create_method

TINY = {"input_size": 64, "feature_channels": 32, "head_channels": 32, "mlp_hidden": 64}
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    method = ACRMethod(**TINY)
    return method, method.build_network("resnet18").eval()


@pytest.fixture(scope="module")
def two_hand_sample():
    from hand_recon_core.data.synthetic.engine import generate_sample

    sample = generate_sample("interacting", 0, size=128)
    assert sorted(sample["handedness"].tolist()) == [RIGHT, LEFT] and sample["has_params"].all()
    return sample


# ---------------------------------------------------------------------------------------------- maps


@pytest.mark.parametrize("variant,has_part,has_prior", [("G", False, False), ("G+P", True, False),
                                                        ("G+C", False, True), ("G+C+P", True, True)])
def test_maps_shapes_and_channels(variant, has_part, has_prior):
    torch.manual_seed(0)
    net = ACRMethod(variant=variant, **TINY).build_network("resnet18").eval()
    assert PARAM_DIM == 16 * 6 + 10 + 3 == 109 and PARAM_MAP_CHANNELS == 218  # Sec. 3.2
    assert net.param_head.out.out_channels == 218 and net.center_head.out.out_channels == 2
    assert net.param_head.body[0].in_channels == 32 + 2  # CoordConv adds 2 channels
    assert (net.part_head is not None) == has_part and (net.prior_head is not None) == has_prior
    if has_part:
        assert net.part_head.out.out_channels == 33
    if has_prior:
        assert net.prior_head.out.out_channels == 218
    with torch.no_grad():
        out = net.forward_image(torch.randn(2, 3, 64, 64))
    assert out["center_logits"].shape == (2, 2, 8, 8)
    assert ("part_logits" in out) == has_part and (not has_part or out["part_logits"].shape == (2, 33, 8, 8))
    assert out["pose6d"].shape == (2, 2, 16, 6) and out["betas"].shape == (2, 2, 10)
    assert out["cam"].shape == (2, 2, 3) and bool((out["cam"][..., 0] > 0).all())
    assert out["scores"].shape == (2, 2) and out["lam"].shape == (2,)


def test_variant_kwargs_are_validated():
    assert isinstance(create_method("acr", {"variant": "G+P", **TINY}), ACRMethod)
    with pytest.raises(ValueError, match="variant"):
        ACRMethod(variant="P")
    with pytest.raises(ValueError, match="multiple of 32"):
        ACRMethod(input_size=100)


# ---------------------------------------------------------------------------------------------- attention


def test_attention_pool_is_the_hand_computed_weighted_mean():
    # Two attention channels over a 2 x 2 map; features hold 2 channels.
    logits = torch.tensor([[[[0.0, math.log(3.0)], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]])
    feats = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 0.0], [0.0, -10.0]]]])
    weights = spatial_softmax(logits)
    assert torch.allclose(weights.sum((-2, -1)), torch.ones(1, 2))
    pooled = attention_pool(weights, feats)  # (1, 2 attention maps, 2 features)
    w = np.array([1, 3, 1, 1]) / 6.0
    expected0 = [w @ [1, 2, 3, 4], w @ [10, 0, 0, -10]]
    expected1 = [np.mean([1, 2, 3, 4]), 0.0]
    assert torch.allclose(pooled, torch.tensor([[expected0, expected1]], dtype=torch.float32), atol=1e-6)


def test_part_attention_uses_each_hands_own_part_channels(tiny):
    """Eq. 3: slot 0 (right) pools with classes 1-16, slot 1 (left) with 17-32; background is left out."""
    _, net = tiny
    b, h = 1, 8
    part_logits = torch.full((b, 33, h, h), -30.0)
    part_logits[:, 0] = 30.0  # background everywhere: must not matter
    part_logits[:, 1 + 3, 2, 5] = 30.0  # right part 3 at cell (x=5, y=2)
    part_logits[:, 17 + 3, 6, 1] = 30.0  # left part 3 at cell (x=1, y=6)
    attn = spatial_softmax(part_logits[:, 1:]).reshape(b, 2, 16, h * h)
    pm = torch.arange(2 * PARAM_DIM * h * h, dtype=torch.float32).reshape(b, 2, PARAM_DIM, h * h)
    f_part = attn @ pm.transpose(-1, -2)  # as in ACRNet.forward_image
    assert torch.allclose(f_part[0, RIGHT, 3], pm[0, RIGHT, :, 2 * h + 5])
    assert torch.allclose(f_part[0, LEFT, 3], pm[0, LEFT, :, 6 * h + 1])


# ---------------------------------------------------------------------------------------------- repulsion / IF


def test_center_repulsion_pushes_overlapping_centres_apart_and_leaves_distant_ones():
    c_l, c_r = torch.tensor([10.0, 10.0]), torch.tensor([11.0, 10.0])
    k_l, k_r = torch.tensor(2.0), torch.tensor(3.0)
    new_l, new_r = repel_centers(c_l, c_r, k_l, k_r, alpha=0.5)
    # R = (2 + 3 + 1 - 1) / 1 * (C_L - C_R) = (-5, 0): C_L' = (7.5, 10), C_R' = (13.5, 10); distance = k_L + k_R + 1.
    assert torch.allclose(new_l, torch.tensor([7.5, 10.0])) and torch.allclose(new_r, torch.tensor([13.5, 10.0]))
    assert float(torch.linalg.vector_norm(new_l - new_r)) == pytest.approx(6.0)
    new_l, new_r = repel_centers(c_l, c_r, k_l, k_r, alpha=0.25)  # distance grows by 2 alpha (6 - d)
    assert float(torch.linalg.vector_norm(new_l - new_r)) == pytest.approx(1.0 + 2 * 0.25 * 5.0)
    far_l, far_r = torch.tensor([0.0, 0.0]), torch.tensor([6.0, 8.0])  # d = 10 > 6
    out_l, out_r = repel_centers(far_l, far_r, k_l, k_r)
    assert torch.equal(out_l, far_l) and torch.equal(out_r, far_r)
    same_l, same_r = repel_centers(c_l, c_l.clone(), k_l, k_r)  # coincident: split along x, left towards +x
    assert same_l[0] > same_r[0] and float(torch.linalg.vector_norm(same_l - same_r)) == pytest.approx(6.0, abs=1e-4)
    kept_l, _ = repel_centers(c_l, c_r, k_l, k_r, valid=torch.tensor(False))
    assert torch.equal(kept_l, c_l)


def _two_hand_sample(size: int, centre_right, centre_left, box_side: float) -> dict:
    """A minimal sample with a right and a left hand whose MCP joints sit at the given centres (pixels)."""
    hands = empty_hands(2)
    hands["handedness"][:] = [RIGHT, LEFT]
    for i, c in enumerate((centre_right, centre_left)):
        hands["keypoints_2d"][i] = np.asarray(c, np.float32)
        hands["joint_valid"][i] = 1.0
        hands["joint_visible"][i] = 1.0
        hands["bbox"][i] = [c[0] - box_side / 2, c[1] - box_side / 2, c[0] + box_side / 2, c[1] + box_side / 2]
    return {"image": np.zeros((size, size, 3), np.uint8), "K": np.eye(3, dtype=np.float32), **hands,
            "dataset": "test", "sample_id": "x", "hand_model_id": "open"}


def test_encoded_centre_maps_repel_overlapping_hands():
    size, stride = 256, 8
    close = encode_acr_targets(_two_hand_sample(size, (124.0, 124.0), (131.0, 124.0), 96.0), size)
    k = close["acr_radius"]
    assert k[RIGHT] == k[LEFT] and k[RIGHT] >= 1
    peaks = [np.unravel_index(np.argmax(close["acr_heatmap"][c]), close["acr_heatmap"][c].shape) for c in (0, 1)]
    (yr, xr), (yl, xl) = peaks
    assert yr == yl and xl > xr  # pushed apart along the line joining them (left hand was to the right)
    # unrepelled: both centres fall in the same or neighbouring cells; repelled: k_L + k_R + 1 apart (floored)
    assert abs(np.floor((131.0 + 0.5) / stride) - np.floor((124.0 + 0.5) / stride)) <= 1
    assert xl - xr >= 2 * k[RIGHT]
    assert np.allclose(close["acr_center_cells"][RIGHT], [(124.5 / stride) - 0.5, (124.5 / stride) - 0.5])
    # Distant hands: the peaks sit at their own cells.
    far = encode_acr_targets(_two_hand_sample(size, (40.0, 40.0), (200.0, 200.0), 64.0), size)
    assert np.unravel_index(np.argmax(far["acr_heatmap"][RIGHT]), (32, 32)) == (5, 5)
    assert np.unravel_index(np.argmax(far["acr_heatmap"][LEFT]), (32, 32)) == (25, 25)
    assert far["acr_present"].tolist() == [1.0, 1.0] and far["acr_part_seg"].min() == -1  # no part_seg: ignored


def test_centre_is_the_mean_of_the_visible_mcp_joints():
    sample = _two_hand_sample(128, (40.0, 40.0), (90.0, 90.0), 40.0)
    sample["keypoints_2d"][0, list(MCP_INDICES)] = [[30, 30], [34, 30], [38, 30], [42, 30], [46, 30]]
    sample["joint_visible"][0, MCP_INDICES[-1]] = 0.0  # an occluded MCP does not count
    out = encode_acr_targets(sample, 128)
    assert np.allclose(out["acr_center_cells"][RIGHT], (np.array([36.0, 30.0]) + 0.5) / 8 - 0.5)


def test_part_segmentation_target_is_the_block_majority():
    sample = _two_hand_sample(64, (20.0, 20.0), (40.0, 40.0), 20.0)
    seg = np.zeros((64, 64), np.uint8)
    seg[0:8, 0:5] = 3  # 40 of 64 pixels of cell (0, 0)
    seg[8:16, 8:11] = 20  # 24 of 64 pixels of cell (1, 1): background wins
    sample["part_seg"] = seg
    part = encode_acr_targets(sample, 64)["acr_part_seg"]
    assert part.shape == (8, 8) and part[0, 0] == 3 and part[1, 1] == 0 and part.sum() == 3


def test_interaction_field_is_zero_for_distant_or_single_hands():
    k = torch.tensor(2.0)
    # IF = gamma (k_L + k_R + 1) = 2 * 5 = 10 cells.
    far = interaction_intensity(torch.tensor([0.0, 0.0]), torch.tensor([8.0, 6.0001]), k, k, gamma=2.0)
    assert float(far) == 0.0
    near = interaction_intensity(torch.tensor([0.0, 0.0]), torch.tensor([3.0, 4.0]), k, k, gamma=2.0)
    assert float(near) == pytest.approx((10.0 - 5.0) / 5.0 * 7.0)  # (IF - d) / d * |C_L - C_R|_1
    edge = interaction_intensity(torch.tensor([0.0, 0.0]), torch.tensor([6.0, 8.0]), k, k, gamma=2.0)
    assert float(edge) == pytest.approx(0.0, abs=1e-6)  # continuous at d = IF
    alone = interaction_intensity(torch.tensor([0.0, 0.0]), torch.tensor([3.0, 4.0]), k, k, gamma=2.0,
                                  present=torch.tensor([True, False]))
    assert float(alone) == 0.0


def test_network_interaction_uses_the_given_centres(tiny):
    _, net = tiny
    if not net.use_cross:
        pytest.skip("variant without C")
    centres = torch.tensor([[[3.0, 3.0], [30.0, 30.0]], [[3.0, 3.0], [4.0, 3.0]]])  # (B, slot, xy)
    radii = torch.full((2, 2), 1.0)
    present = torch.ones(2, 2, dtype=torch.bool)
    with torch.no_grad():
        out = net.forward_image(torch.randn(2, 3, 64, 64), (centres, radii, present))
    assert float(out["lam"][0]) == 0.0 and float(out["lam"][1]) == pytest.approx((6.0 - 1.0) / 1.0 * 1.0)


# ---------------------------------------------------------------------------------------------- decoding


def _fake_model_out(center_probs: torch.Tensor, v: int = 5) -> dict:
    b = center_probs.shape[0]
    p = center_probs.clamp(1e-6, 1 - 1e-6)
    ident = torch.tensor([1.0, 0, 0, 0, 1, 0]).expand(b, 2, 16, 6)
    return {"center_logits": torch.log(p / (1 - p)), "cam": torch.tensor([4.0, 0.0, 0.0]).expand(b, 2, 3),
            "joints_rel": torch.zeros(b, 2, 21, 3), "vertices_rel": torch.randn(b, 2, v, 3) * 0.05,
            "pose6d": ident.clone(), "betas": torch.zeros(b, 2, 10), "rest_root": torch.zeros(b, 2, 3),
            "lam": torch.zeros(b)}


def _fake_batch(b: int, size: int = 64) -> dict:
    return {"K": torch.tensor([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]]).expand(b, 3, 3),
            "acr_affine": torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(b, 2, 3),
            "acr_raw_size": torch.tensor([float(size), float(size)]).expand(b, 2)}


def test_decoding_respects_the_threshold_and_one_hand_per_side():
    method = ACRMethod(**TINY)
    probs = torch.full((3, 2, 8, 8), 0.01)
    probs[0, RIGHT, 1, 1], probs[0, RIGHT, 5, 5], probs[0, LEFT, 3, 3] = 0.9, 0.8, 0.2  # two right peaks
    probs[1, RIGHT, 2, 2], probs[1, LEFT, 6, 6] = 0.3, 0.26
    probs[2, LEFT, 4, 4] = 0.24  # below 0.25
    preds = method.predict(_fake_model_out(probs), _fake_batch(3))
    assert preds[0]["handedness"].tolist() == [RIGHT] and preds[0]["score"] == pytest.approx([0.9])
    assert preds[1]["handedness"].tolist() == [RIGHT, LEFT]
    assert preds[1]["score"] == pytest.approx([0.3, 0.26])
    assert preds[2]["handedness"].shape == (0,) and preds[2]["joints_3d"].shape == (0, 21, 3)
    for key, shape in {"bbox": (4,), "keypoints_2d": (21, 2), "joints_3d": (21, 3), "vertices_3d": (5, 3),
                       "hand_pose": (48,), "betas": (10,), "transl": (3,)}.items():
        assert preds[1][key].shape == (2, *shape), key


# ---------------------------------------------------------------------------------------------- cameras / poses


def test_weak_perspective_translation_projects_the_root_where_expected():
    size = 256
    K = torch.tensor([[600.0, 0.0, 120.0], [0.0, 600.0, 140.0], [0.0, 0.0, 1.0]])  # off-centre principal point
    cam = torch.tensor([[3.0, 0.2, -0.35], [7.5, -0.6, 0.1]])  # (s, t_x, t_y): wrist at x_n = t
    wrist = weak_perspective_to_camera(cam, K, size)
    assert wrist[:, 2].tolist() == pytest.approx([1200 / (3.0 * size), 1200 / (7.5 * size)])
    expected = normalized_to_pixels(cam[:, 1:], size)  # (t + 1) S / 2
    assert torch.allclose(project_points(wrist[:, None], K)[:, 0], expected, atol=1e-3)
    # Non-square pixels: mean focal length for depth, pixel error (u - S/2)(fx - fy)/(fx + fy) (documented).
    K2 = torch.tensor([[600.0, 0.0, 120.0], [0.0, 580.0, 140.0], [0.0, 0.0, 1.0]])
    uv2 = project_points(weak_perspective_to_camera(cam, K2, size)[:, None], K2)[:, 0]
    bound = (expected - size / 2).abs() * 20.0 / 1180.0 + 1e-3
    assert bool(((uv2 - expected).abs() <= bound).all())
    # Reference depth at the mean depth of the hand's points: the wrist slides along its ray.
    points = torch.tensor([[0.0, 0.0, 0.0], [0.05, 0.0, 0.04], [0.0, 0.08, 0.02]]).expand(2, 3, 3)
    moved = weak_perspective_to_camera(cam, K, size, points)
    assert moved[:, 2].tolist() == pytest.approx((wrist[:, 2] - 0.02).tolist())
    assert torch.allclose(project_points(moved[:, None], K)[:, 0], expected, atol=1e-3)


def _perfect_model_out(net, targets: dict, K: torch.Tensor, joints_3d: np.ndarray, handedness: np.ndarray,
                       size: int) -> dict:
    """Model output holding the ground-truth parameters and a camera that puts each wrist where it really is."""
    pose6d = torch.from_numpy(targets["acr_pose6d"])[None]
    betas = torch.from_numpy(targets["acr_betas"])[None]
    out = net.pose_hands(pose6d, betas)
    cam = torch.zeros(1, 2, 3)
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    for i, code in enumerate(handedness):
        wrist = joints_3d[i, 0].astype(np.float64)
        ref = wrist * (wrist[2] + (joints_3d[i, :, 2] - wrist[2]).mean()) / wrist[2]  # mean joint depth, same ray
        tx, ty, tz = ref
        s = (fx + fy) / (tz * size)  # inverse of weak_perspective_to_camera
        cam[0, code] = torch.tensor([s, s * (tx - (size / 2 - cx) * tz / fx), s * (ty - (size / 2 - cy) * tz / fy)])
    logits = torch.full((1, 2, size // 8, size // 8), -5.0)
    logits[:, :, 3, 3] = 5.0
    out.update(pose6d=pose6d, betas=betas, cam=cam, center_logits=logits, lam=torch.zeros(1))
    return out


def test_6d_pose_round_trip_through_the_layer(tiny, two_hand_sample):
    method = ACRMethod(**{**TINY, "input_size": 128})
    _, net = tiny
    enc = method.encode_targets(two_hand_sample)
    out = _perfect_model_out(net, enc, torch.from_numpy(enc["K"]), enc["joints_3d"], enc["handedness"], 128)
    for i, code in enumerate(enc["handedness"]):  # 6D -> layer joints equal the axis-angle layer's joints
        gt = two_hand_sample["joints_3d"][i]
        assert np.allclose(out["joints_rel"][0, code].numpy(), gt - gt[0], atol=1e-5)
        layer = load_hand_model("open", side=("right", "left")[code], pose_repr="axis_angle", flat_hand_mean=True)
        hp = torch.from_numpy(two_hand_sample["hand_pose"][i : i + 1])
        ref = layer(global_orient=hp[:, :3], hand_pose=hp[:, 3:], betas=torch.from_numpy(enc["betas"][i : i + 1]))
        assert torch.allclose(out["vertices_rel"][0, code], (ref.vertices - ref.joints[:, :1])[0], atol=1e-5)
    pred = method.predict(out, method.collate([enc]))[0]
    assert sorted(pred["handedness"].tolist()) == [RIGHT, LEFT]
    for j, code in enumerate(pred["handedness"]):
        i = int(np.flatnonzero(two_hand_sample["handedness"] == code)[0])
        assert np.allclose(pred["joints_3d"][j], two_hand_sample["joints_3d"][i], atol=1e-5)
        assert np.allclose(pred["vertices_3d"][j], two_hand_sample["vertices_3d"][i], atol=1e-5)
        assert np.allclose(pred["transl"][j], two_hand_sample["transl"][i], atol=1e-5)  # sample convention
        assert np.allclose(pred["betas"][j], two_hand_sample["betas"][i], atol=1e-6)
        rot_pred = axis_angle_to_matrix(torch.from_numpy(pred["hand_pose"][j]).reshape(16, 3))
        rot_gt = axis_angle_to_matrix(torch.from_numpy(two_hand_sample["hand_pose"][i]).reshape(16, 3))
        assert torch.allclose(rot_pred, rot_gt, atol=1e-5)
        assert np.allclose(pred["keypoints_2d"][j, 0], two_hand_sample["keypoints_2d"][i, 0], atol=1e-2)


def test_letterboxed_predictions_map_back_to_the_original_image(tiny, two_hand_sample):
    """A 160 x 128 image is letterboxed to 96 x 96: 3D stays in the camera frame, 2D returns to raw pixels."""
    raw = warp_sample(two_hand_sample, np.array([[1.0, 0.0, 16.0], [0.0, 1.0, 0.0]]), (160, 128))
    method = ACRMethod(**{**TINY, "input_size": 96})
    _, net = tiny
    enc = method.encode_targets(raw)
    assert enc["image"].shape == (96, 96, 3) and enc["acr_affine"][0, 0] == pytest.approx(0.6)
    assert enc["acr_heatmap"].shape == (2, 12, 12) and enc["acr_present"].tolist() == [1.0, 1.0]
    out = _perfect_model_out(net, enc, torch.from_numpy(enc["K"]), enc["joints_3d"], enc["handedness"], 96)
    pred = method.predict(out, method.collate([enc]))[0]
    for j, code in enumerate(pred["handedness"]):
        i = int(np.flatnonzero(raw["handedness"] == code)[0])
        assert np.allclose(pred["joints_3d"][j], raw["joints_3d"][i], atol=1e-5)
        assert np.allclose(pred["keypoints_2d"][j, 0], raw["keypoints_2d"][i, 0], atol=1e-2)
        # other joints: weak perspective vs. the true perspective projection of this close-range scene
        assert np.abs(pred["keypoints_2d"][j] - raw["keypoints_2d"][i]).max() < 0.08 * 160
        box = pred["bbox"][j]
        assert 0 <= box[0] <= box[2] <= 159 and 0 <= box[1] <= box[3] <= 127


# ---------------------------------------------------------------------------------------------- export


def test_onnx_export_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    net = ACRMethod(**TINY).build_network("resnet18").eval()
    with torch.no_grad():  # exercise every branch: hands present (lambda > 0), non-trivial MLP outputs
        net.center_head.out.bias.fill_(1.0)
        net.f_out.fc2.weight.normal_(std=0.01)
        net.f_g.fc2.weight.normal_(std=0.01)
    path = tmp_path / "acr.onnx"
    names = export_onnx(net, path, batch_size=1)
    assert names == ["center_logits", "part_logits", "pose6d", "betas", "cam", "scores", "lam"]
    image = torch.rand(2, 3, 64, 64) * 255.0  # batch 2: the batch axis is dynamic
    with torch.no_grad():
        ref = ACROnnxModule(net)(image)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": image.numpy()})
    assert float(ref[-1].min()) > 0  # the interaction field was active
    for name, r, g in zip(names, ref, got):
        assert g.shape == tuple(r.shape), name
        assert np.abs(r.numpy() - g).max() <= 1e-4, name


# ---------------------------------------------------------------------------------------------- training


def test_loss_falls_on_a_handful_of_synthetic_samples(optimise):
    """30 Adam steps on 4 two-hand images; the ResNet is frozen to keep this fast (the slow engine test trains all)."""
    from hand_recon_core.data.synthetic.engine import generate_sample

    torch.manual_seed(0)
    method = ACRMethod(**TINY, init_cam_scale=6.0)
    net = method.build_network("resnet18").train()
    net.backbone.requires_grad_(False)
    batch = method.collate([method.encode_targets(generate_sample("interacting", i, size=64)) for i in range(4)])
    history: list[dict] = []
    losses = optimise(method, net, batch, 30, torch.optim.Adam([p for p in net.parameters() if p.requires_grad],
                                                               lr=2e-3), history)
    assert all(math.isfinite(float(v)) for parts in history for v in parts.values())
    assert {"center", "seg", "pose", "shape", "j3d", "pa3d", "pj2d", "bone"} <= set(history[-1])
    assert np.mean(losses[-5:]) < 0.5 * losses[0]
    assert int(net.train_steps) == 30


def test_seg_supervision_stops_after_the_configured_steps():
    method = ACRMethod(**TINY, seg_supervision_steps=2)
    torch.manual_seed(0)
    net = method.build_network("resnet18").train()
    sample = encode_acr_targets(_two_hand_sample(64, (20.0, 20.0), (44.0, 44.0), 20.0), 64)
    sample["acr_part_seg"][:] = 0
    batch = {k: torch.from_numpy(np.asarray(v))[None] for k, v in sample.items()}
    batch["image"] = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    segs = [float(method.loss(net(batch), batch)[1]["seg"]) for _ in range(3)]
    assert segs[0] > 0 and segs[1] > 0 and segs[2] == 0.0


@pytest.mark.slow
def test_smoke_config_trains_through_the_engine(tmp_path):
    import csv

    from hand_recon_core.training.config import load_config
    from hand_recon_core.training.engine import Trainer

    cfg = load_config(REPO / "config" / "acr_smoke.yaml", overrides=[f"output_dir={tmp_path / 'run'}"])
    Trainer(cfg).fit()
    with (tmp_path / "run" / "logs" / "train.csv").open() as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert len(losses) == 5 and losses[-1] < 0.7 * losses[0]


# ---------------------------------------------------------------------------------------------- keypoint lifter


def test_soft_argmax_keypoints_lands_on_the_peak_cell_centre():
    from hand_recon_core.models.heads.keypoint_lifter import keypoint_frame, soft_argmax_keypoints

    logits = torch.full((1, 2, 16, 16), -30.0)
    logits[0, 0, 3, 10] = 30.0  # row 3, column 10
    logits[0, 1, 12, 1] = 30.0
    kp = soft_argmax_keypoints(logits, stride=4)
    assert torch.allclose(kp[0], torch.tensor([[10 * 4 + 1.5, 3 * 4 + 1.5], [1 * 4 + 1.5, 12 * 4 + 1.5]]), atol=1e-3)
    centre, extent = keypoint_frame(kp, min_extent=8.0)
    assert torch.allclose(centre[0], kp[0].mean(0)) and float(extent[0]) == pytest.approx(36.0, abs=1e-3)
    _, collapsed = keypoint_frame(torch.zeros(1, 21, 2), min_extent=8.0)
    assert float(collapsed[0]) == 8.0


def test_keypoint_targets_are_drawn_on_each_slots_own_channels(two_hand_sample):
    from hand_recon_core.models.acr import KEYPOINT_STRIDE

    enc = encode_acr_targets(two_hand_sample, 128, keypoint_heatmaps=True)
    hm = enc["acr_kp_hm"]
    assert hm.shape == (42, 32, 32)
    assert encode_acr_targets(two_hand_sample, 128)["acr_kp_hm"].shape == (0, 1, 1)  # off: nothing drawn
    handed = np.asarray(two_hand_sample["handedness"])
    for slot in (RIGHT, LEFT):
        i = int(np.flatnonzero(handed == slot)[0])
        kp = np.asarray(two_hand_sample["keypoints_2d"][i])
        vis = np.asarray(two_hand_sample["joint_visible"][i]) > 0
        vis &= np.asarray(two_hand_sample["joint_valid"][i]) > 0
        inside = ((kp >= 0) & (kp < 128)).all(axis=1)
        for j in np.flatnonzero(vis & inside):
            channel = hm[21 * slot + j]
            peak_y, peak_x = np.unravel_index(int(np.argmax(channel)), channel.shape)
            centre = (kp[j] - (KEYPOINT_STRIDE - 1) / 2.0) / KEYPOINT_STRIDE  # continuous cell coordinates
            assert channel.max() == 1.0 and np.abs(np.array([peak_x, peak_y]) - centre).max() <= 1.0
        for j in np.flatnonzero(~vis):
            assert hm[21 * slot + j].max() == 0.0  # occluded joints are not drawn


def test_keypoint_lifter_starts_as_plain_acr_and_then_corrects_the_code():
    torch.manual_seed(0)
    method = ACRMethod(**TINY, keypoint_lifter=True)
    net = method.build_network("resnet18").eval()
    x = torch.rand(2, 3, 64, 64) * 255.0
    with torch.no_grad():
        out = net.forward_image(net.normalize(x))
        assert out["keypoint_logits"].shape == (2, 42, 16, 16) and out["keypoints"].shape == (2, 2, 21, 2)
        lifted = net._lift(out["keypoint_logits"], {"centers": out["centers"]})
        assert torch.equal(lifted, torch.zeros(2, 2, PARAM_DIM))  # zero at init
        net.lifter.out.bias[:6].fill_(0.5)  # a correction of the global orientation
        moved = net.forward_image(net.normalize(x))
    assert torch.allclose(moved["pose6d"][:, :, 0] - out["pose6d"][:, :, 0], torch.full((2, 2, 6), 0.5), atol=1e-5)
    assert torch.allclose(moved["pose6d"][:, :, 1:], out["pose6d"][:, :, 1:])


def test_keypoint_lifter_trains_its_heatmaps_and_exports(tmp_path, optimise):
    """The heatmap focal loss is in the total and falls; the exported graph (with the lifter) matches PyTorch."""
    from hand_recon_core.data.synthetic.engine import generate_sample

    torch.manual_seed(0)
    method = ACRMethod(**TINY, keypoint_lifter=True)
    net = method.build_network("resnet18").train()
    batch = method.collate([method.encode_targets(generate_sample("interacting", i, size=64)) for i in range(4)])
    assert batch["acr_kp_hm"].shape == (4, 42, 16, 16)
    history: list[dict] = []
    optimise(method, net, batch, 15, torch.optim.Adam(net.parameters(), lr=2e-3), history)
    kp_losses = [float(parts["keypoints"]) for parts in history]
    assert float(net.lifter.out.weight.abs().sum()) > 0  # the 3D losses reach the lifter
    assert np.mean(kp_losses[-3:]) < 0.9 * kp_losses[0] and kp_losses[-1] < kp_losses[5]

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net.eval()
    path = tmp_path / "acr_lifter.onnx"
    names = export_onnx(net, path, batch_size=1)
    image = torch.rand(2, 3, 64, 64) * 255.0
    with torch.no_grad():
        ref = ACROnnxModule(net)(image)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": image.numpy()})
    for name, r, g in zip(names, ref, got):
        assert np.abs(r.numpy() - g).max() <= 1e-4, name
