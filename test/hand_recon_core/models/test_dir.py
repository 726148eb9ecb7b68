"""Tests of hand_recon_core.models.dir (DIR two-hand refiner): shapes, sampling / projection on hand-computed
cases, losses, crop <-> camera mappings, checkpoint size, ONNX parity and a short fit."""

from __future__ import annotations

import io
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.data.synthetic.engine import generate_sample
from hand_recon_core.geometry.cameras import normalized_to_pixels, weak_perspective_project
from hand_recon_core.models.dir import (
    DIRExportWrapper,
    DIRMethod,
    MultiPlaneProjection,
    crop_box_from_affine,
    crop_result_to_camera,
    export_onnx,
    feature_grid,
    sample_joint_features,
    splat_weights,
)
from hand_recon_core.models.registry import MethodKwargsError, create_method, get_method
from hand_recon_core.training import checkpoint as ckpt_io
from hand_recon_core.training.config import load_config

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
#: A tiny network (the architecture of the paper at toy widths) so tests stay fast.
TINY = dict(backbone="resnet18", image_size=64, decoder_channels=16, joint_channels=16, mfp_channels=8, gcn_layers=1,
            transformer_layers=1, transformer_heads=2, head_hidden=32)
CFG = SimpleNamespace(backbone=SimpleNamespace(name=None, pretrained=None))


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the test machines are shared, and oversubscribed thread pools crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _build(**kwargs):
    torch.manual_seed(0)
    method = DIRMethod(**{**TINY, **kwargs})
    return method, method.build(CFG, "open")


@pytest.fixture(scope="module")
def samples():
    """Four synthetic two-hand scenes (96 px) with the dense correspondence extra."""
    return [generate_sample("interacting", i, seed=3, size=96, extras=True) for i in range(4)]


def _gt_model_out(enc: dict, size: int) -> dict[str, torch.Tensor]:
    """A model output that reproduces the ground truth of one encoded crop exactly (1 estimate, batch 1)."""
    joints = torch.as_tensor(enc["dir_joints_3d"], dtype=torch.float64)
    verts = torch.as_tensor(enc["dir_vertices_3d"], dtype=torch.float64)
    K = torch.as_tensor(enc["K"], dtype=torch.float64)
    root = joints[:, 0]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    # inverse of crop_weak_perspective_to_full_translation for the crop itself (centre S/2, side S)
    cam = torch.stack([(fx + fy) / (root[:, 2] * size), root[:, 0] - (size / 2 - cx) * root[:, 2] / fx,
                       root[:, 1] - (size / 2 - cy) * root[:, 2] / fy], dim=-1)
    rel_j, rel_v = joints - root[:, None], verts - root[:, None]
    out = {"cam": cam, "offset": root[LEFT] - root[RIGHT], "joints": rel_j, "vertices": rel_v,
           "joints_2d": weak_perspective_project(rel_j, cam), "vertices_2d": weak_perspective_project(rel_v, cam)}
    return {k: v[None, None].float() for k, v in out.items()}


# ------------------------------------------------------------------------------------------------ registry
def test_registry_creates_dir_and_validates_kwargs():
    assert get_method("dir") is DIRMethod
    method = create_method("dir", {"num_stages": 3, "projection": "single_plane"})
    assert method.num_stages == 3 and method.net_kwargs["projection"] == "single_plane"
    with pytest.raises(MethodKwargsError):
        create_method("dir", {"stages": 2})
    with pytest.raises(ValueError):
        DIRMethod(num_stages=4)
    with pytest.raises(ValueError):
        DIRMethod(projection="heatmap")
    with pytest.raises(ValueError):
        DIRMethod(loss_weights={"nope": 1.0})


# ------------------------------------------------------------------------------------------------ network
@pytest.mark.parametrize("num_stages", [1, 2, 3])
def test_output_shapes_for_each_number_of_stages(num_stages):
    method, net = _build(num_stages=num_stages)
    v = net.hands.num_vertices
    with torch.no_grad():
        out = net.forward_image(torch.rand(2, 3, 64, 64))
    k, r = num_stages + 1, 8  # decoding resolution min(32, 64 / 8)
    assert out["params"].shape == (k, 2, 2, 109)
    assert out["cam"].shape == (k, 2, 2, 3) and out["offset"].shape == (k, 2, 3)
    assert out["joints"].shape == (k, 2, 2, 21, 3) and out["vertices"].shape == (k, 2, 2, v, 3)
    assert out["joints_2d"].shape == (k, 2, 2, 21, 2) and out["vertices_2d"].shape == (k, 2, 2, v, 2)
    assert out["seg"].shape == (num_stages, 2, 2, r, r) and out["dense"].shape == (num_stages, 2, 3, r, r)
    assert torch.allclose(out["joints"][:, :, :, 0], torch.zeros(())), "joints are wrist-relative"
    assert len(net.stages) == num_stages


@pytest.mark.parametrize("switches", [dict(projection="single_plane"), dict(gcn_layers=0),
                                      dict(transformer_layers=0), dict(gcn_layers=0, transformer_layers=0)])
def test_ablation_variants_build_and_run(switches):
    _, net = _build(num_stages=1, **switches)
    assert (net.stages[0].gcn is None) == (switches.get("gcn_layers") == 0)
    assert (net.stages[0].transformer is None) == (switches.get("transformer_layers") == 0)
    assert net.stages[0].project.multi_plane == (switches.get("projection", "multi_plane") == "multi_plane")
    with torch.no_grad():
        out = net.forward_image(torch.rand(1, 3, 64, 64))
    assert out["joints"].shape == (2, 1, 2, 21, 3) and torch.isfinite(out["vertices"]).all()


def test_bilinear_joint_sampling_matches_a_hand_computed_value():
    fmap = torch.tensor([[0.0, 1.0, 4.0, 9.0], [1.0, 0.0, 2.0, 8.0], [5.0, 3.0, 7.0, 6.0]])[None, None]  # 3 x 4
    # feature cell (x, y) = (1.25, 0.5): between values 1, 4 (row 0) and 0, 2 (row 1)
    expected = 0.5 * (0.75 * 1.0 + 0.25 * 4.0) + 0.5 * (0.75 * 0.0 + 0.25 * 2.0)
    assert expected == 1.125
    grid = torch.tensor([[[(2 * 1.25 + 1) / 4 - 1, (2 * 0.5 + 1) / 3 - 1]]])
    assert sample_joint_features(fmap, grid).item() == pytest.approx(1.125, abs=1e-6)
    # through the crop convention: a 16 px crop, stride 4 (4 cells wide); cell x = 1.25 <=> crop pixel
    # u = 4 (1.25 + 0.5) - 0.5 = 6.5, i.e. x_n = 2 u / 16 - 1; a 12 px tall map (3 cells) likewise for y
    xy_n = torch.tensor([[[2 * 6.5 / 16 - 1, 2 * 3.5 / 12 - 1]]])  # v = 4 (0.5 + 0.5) - 0.5
    grid = torch.stack([feature_grid(xy_n[..., 0], 16), feature_grid(xy_n[..., 1], 12)], -1)
    assert sample_joint_features(fmap, grid).item() == pytest.approx(1.125, abs=1e-6)
    far = torch.tensor([[[-1.5, 0.0]]])  # outside the map: zero padding
    assert sample_joint_features(fmap, far).item() == 0.0


def test_splatting_is_the_adjoint_of_bilinear_sampling():
    torch.manual_seed(0)
    fmap = torch.randn(2, 5, 6, 7)
    grid = torch.rand(2, 9, 2) * 1.8 - 0.9
    feats = torch.randn(2, 9, 5)
    lhs = (sample_joint_features(fmap, grid) * feats).sum()
    weights = splat_weights(grid, 6, 7)  # (B, N, H, W)
    rhs = (fmap[:, None] * weights[:, :, None] * feats[..., None, None]).sum()
    assert torch.allclose(lhs, rhs, atol=1e-4)


def test_multi_plane_projection_scatters_each_joint_into_its_own_plane():
    h = w = 4
    cells = [(1, 2), (3, 0), (1, 2)]  # (x, y) cells; joints 0 and 2 share a location
    grid = torch.tensor([[[(2 * x + 1) / w - 1, (2 * y + 1) / h - 1] for x, y in cells]])
    weights = splat_weights(grid, h, w)
    feats = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    mfp = MultiPlaneProjection(3, 2, 1, multi_plane=True)
    planes = mfp.planes(feats, weights)
    assert planes.shape == (1, 6, h, w)
    expected = torch.zeros(1, 6, h, w)
    for n, (x, y) in enumerate(cells):
        expected[0, 2 * n : 2 * n + 2, y, x] = feats[0, n]
    assert torch.equal(planes, expected)
    sfp = MultiPlaneProjection(3, 2, 1, multi_plane=False)
    single = sfp.planes(feats, weights)
    assert single.shape == (1, 2, h, w)
    assert torch.equal(single[0, :, 2, 1], feats[0, 0] + feats[0, 2])  # the SFP confusion of shared pixels
    assert torch.equal(single[0, :, 0, 3], feats[0, 1])


@pytest.mark.parametrize("multi_plane", [True, False])
def test_factorised_projection_equals_a_1x1_convolution_of_the_planes(multi_plane):
    torch.manual_seed(0)
    proj = MultiPlaneProjection(42, 8, 5, multi_plane=multi_plane)
    with torch.no_grad():
        proj.bias.normal_()
    feats = torch.randn(2, 42, 8)
    weights = splat_weights(torch.rand(2, 42, 2) * 2 - 1, 6, 6, radius=1.5)
    direct = F.conv2d(proj.planes(feats, weights), proj.conv_weight(), proj.bias)
    assert torch.allclose(proj(feats, weights), direct, atol=1e-5)


# ------------------------------------------------------------------------------------------------ losses
@pytest.mark.parametrize("num_stages", [1, 2, 3])
def test_per_stage_loss_list_length_equals_num_stages(samples, num_stages):
    method, net = _build(num_stages=num_stages)
    batch = method.collate([method.encode_targets(s) for s in samples[:2]])
    out = net(batch)
    stages = method.stage_losses(out, batch)
    assert len(stages) == num_stages
    assert len(method.stage_losses(out, batch, include_initial=True)) == num_stages + 1
    names = {"joints_3d", "joints_2d", "mesh_3d", "mesh_2d", "normal", "edge", "offset", "seg", "dense", "total"}
    assert all(set(s) == names for s in stages)
    assert all(torch.isfinite(v) for s in stages for v in s.values())
    total, parts = method.loss(out, batch)
    assert total.requires_grad and torch.isfinite(total)
    assert {f"stage{k}" for k in range(1, num_stages + 1)} | {"initial", "mpjpe_mm"} <= set(parts)
    expected = method.w_initial * parts["initial"] + sum(parts[f"stage{k}"] for k in range(1, num_stages + 1))
    assert torch.allclose(total.detach(), expected)


def test_perfect_prediction_has_zero_geometric_loss(samples):
    method, net = _build(num_stages=1)
    enc = method.encode_targets(samples[0])
    batch = method.collate([enc])
    out = {k: v.expand(2, *v.shape[1:]) for k, v in _gt_model_out(enc, method.image_size).items()}
    out["seg"], out["dense"] = batch["dir_seg"][None], batch["dir_dense"][None]
    terms = method.stage_losses(out, batch)[0]
    for name in ("joints_3d", "offset", "mesh_3d", "normal", "edge", "seg", "dense"):
        assert terms[name].item() == pytest.approx(0.0, abs=1e-4), name
    # 2D terms keep only the weak- vs full-perspective difference (a few pixels of the 64 px crop)
    assert 0.0 < terms["joints_2d"].item() < 0.05 * method.image_size


# ------------------------------------------------------------------------------------------------ frames
def test_crop_result_to_camera_round_trip():
    torch.manual_seed(0)
    K = torch.tensor([[600.0, 0.0, 321.5], [0.0, 590.0, 243.25], [0.0, 0.0, 1.0]])
    center, size = torch.tensor([402.0, 180.5]), 173.0
    roots = torch.tensor([[0.05, -0.02, 0.55], [-0.03, 0.01, 0.58]])
    rel = torch.randn(2, 30, 3) * 0.03
    rel[:, 0] = 0.0
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    cam = torch.stack([(fx + fy) / (roots[:, 2] * size), roots[:, 0] - (center[0] - cx) * roots[:, 2] / fx,
                       roots[:, 1] - (center[1] - cy) * roots[:, 2] / fy], dim=-1)
    pts = crop_result_to_camera(cam, rel, center, size, K)
    assert torch.allclose(pts, rel + roots[:, None], atol=1e-6)
    placed = crop_result_to_camera(cam, rel, center, size, K, offset=roots[1] - roots[0])
    assert torch.allclose(placed, pts, atol=1e-6)
    # with a different offset the pair keeps its mean position and gets exactly that offset
    moved = crop_result_to_camera(cam, rel, center, size, K, offset=torch.tensor([0.1, 0.0, 0.0]))
    assert torch.allclose(moved[1, 0] - moved[0, 0], torch.tensor([0.1, 0.0, 0.0]), atol=1e-6)
    assert torch.allclose(moved[:, 0].mean(0), roots.mean(0), atol=1e-6)


def test_crop_box_from_affine_agrees_with_the_weak_perspective_convention():
    K = np.array([[500.0, 0.0, 320.3], [0.0, 500.0, 240.7], [0.0, 0.0, 1.0]])
    size, zoom = 128, 0.61
    matrix = np.array([[zoom, 0.0, -151.2], [0.0, zoom, -80.45]])  # full pixels -> crop pixels
    center, side = crop_box_from_affine(matrix, size)
    assert side == pytest.approx(size / zoom)
    root = np.array([0.07, -0.04, 0.6])
    uv = (K @ root)[:2] / root[2]
    uv_crop = matrix[:, :2] @ uv + matrix[:, 2]
    # the camera whose translation is `root` under this crop, then its projection of the root
    s = (K[0, 0] + K[1, 1]) / (root[2] * side)
    t = root[:2] - (center - K[:2, 2]) * root[2] / np.diag(K)[:2]
    assert normalized_to_pixels(torch.tensor(s * t), size).numpy() == pytest.approx(uv_crop, abs=1e-6)
    with pytest.raises(ValueError):
        crop_box_from_affine(np.array([[0.5, 0.1, 0.0], [-0.1, 0.5, 0.0]]), size)


@pytest.mark.parametrize("seed", range(4))
def test_encode_then_predict_maps_a_perfect_estimate_back_to_the_sample(samples, seed):
    method = DIRMethod(**TINY, augment=True)  # random zoom, rotation, shift, flip
    np.random.seed(seed)  # noqa: NPY002 (encode_targets draws from the global generator, like the engine's workers)
    sample = samples[seed]
    assert method.encode_targets(sample)["dir_flipped"] == 0  # evaluation: never augmented
    enc = method.encode_targets(sample, train=True)
    size = method.image_size
    assert enc["image"].shape == (size, size, 3) and abs(np.linalg.det(enc["dir_rotation"])) == pytest.approx(1.0)
    K = enc["K"].astype(np.float64)
    uvw = enc["dir_joints_3d"].astype(np.float64) @ K.T
    assert uvw[..., :2] / uvw[..., 2:] == pytest.approx(enc["dir_keypoints_2d"], abs=1e-3)
    assert enc["dir_has_seg"] == 1 and enc["dir_has_dense"] == 1 and enc["dir_seg"].max() > 0.5
    batch = method.collate([enc])
    pred = method.predict(_gt_model_out(enc, size), batch)[0]
    for i, code in enumerate(pred["handedness"]):
        raw = int(np.flatnonzero(sample["handedness"] == code)[0])
        assert pred["joints_3d"][i] == pytest.approx(sample["joints_3d"][raw], abs=2e-5)
        assert pred["vertices_3d"][i] == pytest.approx(sample["vertices_3d"][raw], abs=2e-5)
        assert pred["keypoints_2d"][i, 0] == pytest.approx(sample["keypoints_2d"][raw, 0], abs=1e-2)
        box = pred["bbox"][i]
        assert box[0] <= pred["keypoints_2d"][i, 0, 0] <= box[2] and box[1] <= pred["keypoints_2d"][i, 0, 1] <= box[3]
    assert sorted(pred["handedness"].tolist()) == [RIGHT, LEFT]


def test_predict_stage_selects_the_initial_or_the_refined_estimate(samples):
    method, net = _build(num_stages=2)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # non-zero refinement updates
    batch = method.collate([method.encode_targets(samples[0])])
    with torch.no_grad():
        out = net.eval()(batch)
    last = method.predict(out, batch)[0]
    method.predict_stage = 0
    first = method.predict(out, batch)[0]
    assert not np.allclose(first["joints_3d"], last["joints_3d"])
    method.predict_stage = 2
    assert np.array_equal(method.predict(out, batch)[0]["joints_3d"], last["joints_3d"])


# ------------------------------------------------------------------------------------------------ weights / export
def test_hand_model_stays_out_of_the_weights_and_loading_is_strict():
    _, net = _build()
    state = net.state_dict()
    assert not any(k.startswith("hands.") for k in state)
    _, other = _build(num_stages=2)
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    ckpt_io.load_model_state(other, state)
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), state.values()))
    assert other.hands.layers[0].v_template.abs().sum() > 0  # the hand model is still there


def test_lite_config_weights_fit_25_mb_in_fp16():
    cfg = load_config(CONFIG_DIR / "dir_lite.yaml")
    method = create_method(cfg.method.name, cfg.method.kwargs)
    net = method.build(cfg, cfg.hand_model)
    assert cfg.backbone.name in ("resnet18", "resnet34") and method.image_size == 256 and method.num_stages == 2
    buf = io.BytesIO()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}, buf)
    assert buf.tell() <= 25e6


def test_ablation_configs_set_their_switches():
    for t in (1, 2, 3):
        assert load_config(CONFIG_DIR / f"dir_lite_t{t}.yaml").method.kwargs["num_stages"] == t
    assert load_config(CONFIG_DIR / "dir_lite_single_plane.yaml").method.kwargs["projection"] == "single_plane"
    paper = load_config(CONFIG_DIR / "dir_paper.yaml")
    assert paper.backbone.name == "resnet50" and paper.optim.lr == pytest.approx(3e-4)
    assert paper.optim.name == "adamw" and paper.data.batch_size == 64 and paper.train.epochs == 50


def test_onnx_export_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    _, net = _build(num_stages=2)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # exercise the (zero-initialised) refinement updates too
    net.eval()
    path = export_onnx(net, tmp_path / "dir.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    got = session.run(None, {"pixels": x.numpy()})
    with torch.no_grad():
        ref = DIRExportWrapper(net)(x)
    assert [o.name for o in session.get_outputs()] == list(DIRExportWrapper.OUTPUT_NAMES)
    for name, a, b in zip(DIRExportWrapper.OUTPUT_NAMES, got, ref):
        assert a.shape == tuple(b.shape), name
        assert np.abs(a - b.numpy()).max() <= 1e-4, name


# ------------------------------------------------------------------------------------------------ learning
def test_loss_falls_over_30_steps(samples, optimise):
    method, net = _build(num_stages=2)
    batch = method.collate([method.encode_targets(s) for s in samples[:2]])
    losses = optimise(method, net, batch, 30, torch.optim.AdamW(net.parameters(), lr=1e-3))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


@pytest.mark.slow
def test_smoke_config_trains_through_the_engine(tmp_path):
    from hand_recon_core.training.engine import Trainer
    from hand_recon_core.training.evaluation import evaluate_checkpoint
    from hand_recon_core.training.logs import read_csv_rows

    cfg = load_config(CONFIG_DIR / "dir_smoke.yaml")
    cfg.output_dir = str(tmp_path / "run")
    Trainer(cfg).fit()
    rows = read_csv_rows(tmp_path / "run" / "logs" / "train.csv")
    losses = [r["loss"] for r in rows]
    assert len(losses) == 10 and all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    ckpt = ckpt_io.find_latest_checkpoint(tmp_path / "run" / "checkpoints")
    data = {"name": "synthetic-interacting", "kwargs": {"count": 4, "size": 128, "seed": 9}}
    result = evaluate_checkpoint(ckpt, data, tmp_path / "eval", device="cpu", batch_size=2)
    assert result["num_gt_hands"] == 8 and result["num_pred_hands"] == 8  # predict: both hands of every pair
    assert (tmp_path / "eval" / "metrics.json").is_file()


# ------------------------------------------------------------------------------------------------ keypoint lifter
def test_keypoint_lifter_targets_and_its_correction_of_the_initial_estimate(samples):
    method, net = _build(num_stages=1, keypoint_lifter=True)
    net.eval()
    enc = method.encode_targets(samples[0])
    hm = enc["dir_kp_hm"]
    assert hm.shape == (42, 16, 16)
    valid = enc["dir_joint_valid"] > 0
    inside = ((enc["dir_keypoints_2d"] >= -0.5) & (enc["dir_keypoints_2d"] < 63.5)).all(-1)
    assert np.array_equal(hm.reshape(42, -1).max(1) == 1.0, (valid & inside).reshape(-1))  # occluded joints too
    batch = method.collate([enc])
    with torch.no_grad():
        out = net(batch)
        assert out["keypoint_logits"].shape == (1, 42, 16, 16) and out["keypoints"].shape == (1, 2, 21, 2)
        net.lifter.out.bias.fill_(0.25)  # the correction is added to the initial parameters, camera included
        moved = net(batch)
    assert torch.allclose(moved["params"][0] - out["params"][0], torch.full((1, 2, 109), 0.25), atol=1e-5)


def test_slot_lifter_reads_the_hand_centre_and_size_as_extra_inputs():
    from hand_recon_core.models.heads.keypoint_lifter import KeypointLifter, lift_slot_keypoints

    seen = {}

    class Recording(KeypointLifter):
        def forward(self, keypoints, centre, extent, handedness, extra=None):
            seen.update(centre=centre, extent=extent, handedness=handedness, extra=extra)
            return super().forward(keypoints, centre, extent, handedness, extra)

    logits = torch.full((1, 42, 16, 16), -30.0)
    logits[0, :21, 2, 4] = 30.0  # right slot: every joint in cell (x 4, y 2)
    logits[0, 0, 2, 4], logits[0, 0, 2, 10] = -30.0, 30.0  # ... but its wrist in cell (x 10, y 2): 24 px wide
    logits[0, 21:, 12, 12] = 30.0  # left slot: every joint in one cell
    correction, kp = lift_slot_keypoints(Recording(109, 21, extra_inputs=3), logits, 64)
    assert correction.shape == (1, 2, 109) and kp.shape == (1, 2, 21, 2)
    assert seen["handedness"].tolist() == [0, 1]
    assert torch.allclose(seen["extent"], torch.tensor([24.0, 8.0]), atol=1e-3)  # the left one floored at 2 cells
    right_x = (20 * 17.5 + 41.5) / 21  # mean of the keypoints' x (cell centres 4 * 4 + 1.5, 10 * 4 + 1.5)
    expected = torch.tensor([[right_x / 32 - 1, 9.5 / 32 - 1, math.log(24 / 64)],
                             [49.5 / 32 - 1, 49.5 / 32 - 1, math.log(8 / 64)]])
    assert torch.allclose(seen["extra"], expected, atol=1e-4)


def test_keypoint_lifter_trains_and_exports(samples, tmp_path):
    method, net = _build(num_stages=1, keypoint_lifter=True)
    batch = method.collate([method.encode_targets(s) for s in samples[:2]])
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    heat, attention = [], []
    for _ in range(20):
        total, parts = method.loss(net(batch), batch)
        heat.append(float(parts["keypoints"]))
        attention.append(float(parts["attention"]))
        opt.zero_grad()
        total.backward()
        opt.step()
    assert heat[-1] < 0.9 * heat[0] and float(net.lifter.out.weight.abs().sum()) > 0  # both parts train
    assert attention[-1] < attention[0]  # the hand attention maps learn where their hand is

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net.eval()
    path = export_onnx(net, tmp_path / "dir_lifter.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = DIRExportWrapper(net)(x)
    for name, a, b in zip(DIRExportWrapper.OUTPUT_NAMES, session.run(None, {"pixels": x.numpy()}), ref):
        assert np.abs(a - b.numpy()).max() <= 1e-4, name


def test_attention_centres_and_the_windowed_slot_read():
    from hand_recon_core.models.dir import attention_centres
    from hand_recon_core.models.heads.keypoint_lifter import KeypointLifter, lift_slot_keypoints

    attn = torch.zeros(1, 2, 4, 4)
    attn[0, 0, 1, 0] = 1.0  # right hand: cell (x 0, y 1) of a stride-16 map over 64 px
    attn[0, 1, 2, 3] = attn[0, 1, 3, 3] = 0.5  # left hand: between cells (3, 2) and (3, 3)
    centres = attention_centres(attn, 64)
    assert torch.allclose(centres[0], torch.tensor([[7.5, 23.5], [55.5, 47.5]]))
    logits = torch.full((1, 42, 16, 16), -30.0)
    logits[0, :, 5, 1] = 30.0  # every channel of both slots fires on both hands (the heatmaps cannot tell them yet)
    logits[0, :, 12, 14] = 30.0
    _, global_kp = lift_slot_keypoints(KeypointLifter(109, 21, extra_inputs=3), logits, 64)
    _, windowed = lift_slot_keypoints(KeypointLifter(109, 21, extra_inputs=3), logits, 64, centres)
    assert torch.allclose(global_kp[0, 0, 0], global_kp[0, 1, 0])  # without a window: both slots read the average
    assert torch.allclose(windowed[0, 0, 0], torch.tensor([5.5, 21.5]), atol=0.5)  # each slot reads its own hand
    assert torch.allclose(windowed[0, 1, 0], torch.tensor([57.5, 49.5]), atol=0.5)
