"""Tests for hand_recon_core.models.single_stage (small inputs, tiny networks)."""

from __future__ import annotations

import copy
import csv
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.data.synthetic import build_synthetic_dataset
from hand_recon_core.geometry.cameras import project_points
from hand_recon_core.models.heads.center import cell_to_pixel, gather_cells
from hand_recon_core.models.registry import create_method
from hand_recon_core.models.single_stage import (
    NUM_PARAMS,
    NUM_SH,
    PARAM_SLICES,
    STRIDE,
    SingleStageExport,
    SingleStageMethod,
    cell_translation,
    fixed_intrinsics,
    soft_clamp,
)

SIZE = 64
SMALL = {"input_size": SIZE, "head_channels": 32, "fuse_channels": 32, "photometric_crop": 16}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The CI machine is shared: one intra-op thread keeps these small runs fast and steady."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _cfg(backbone: str = "resnet18") -> SimpleNamespace:
    return SimpleNamespace(backbone=SimpleNamespace(name=backbone, pretrained=None))


def _build(**kwargs):
    torch.manual_seed(0)
    method = SingleStageMethod(**{**SMALL, **kwargs})
    net = method.build(_cfg(), "open")
    return method, net


@pytest.fixture(scope="module")
def built():
    return _build()


@pytest.fixture(scope="module")
def multi_samples():
    ds = build_synthetic_dataset("multi", count=4, size=SIZE, seed=0, num_hands=(1, 2), extent_range=(0.3, 0.6))
    return [ds[i] for i in range(len(ds))]


@pytest.fixture(scope="module")
def single_sample():
    return build_synthetic_dataset("single", count=1, size=80, seed=0)[0]


# ---------------------------------------------------------------------------------------------- sizes
def test_code_sizes_follow_the_paper_and_the_hand_model(built):
    method, net = built
    assert NUM_PARAMS == 61 and NUM_SH == 27
    assert PARAM_SLICES["global_orient"] == (0, 3) and PARAM_SLICES["camera"] == (58, 61)
    v = net.hands.layers[RIGHT].num_vertices
    assert net.num_vertices == v == method.num_vertices
    assert net.texture_head.out_channels == 3 * v
    assert net.param_head.out_channels == 61 and net.light_head.out_channels == 27
    # the hand model is not part of the checkpoint
    assert not any(k.startswith("hands") or "v_template" in k for k in net.state_dict())


def test_registry_and_kwargs_validation():
    cls = create_method("single_stage", SMALL).__class__
    assert cls is SingleStageMethod
    with pytest.raises(ValueError, match="supervision"):
        SingleStageMethod(supervision="strong")
    with pytest.raises(ValueError, match="multiple of 32"):
        SingleStageMethod(input_size=100)
    with pytest.raises(ValueError, match="keypoint_branch"):
        SingleStageMethod(keypoint_branch=False)
    SingleStageMethod(keypoint_branch=False, w_keypoint_heatmap=0.0, w_consistency=0.0)
    with pytest.raises(ValueError, match="augment"):
        SingleStageMethod(augment={"no_such_field": 1})


# ---------------------------------------------------------------------------------------------- camera
def test_fixed_intrinsics():
    k = fixed_intrinsics(512, 1.0)
    assert k.tolist() == [[512.0, 0.0, 255.5], [0.0, 512.0, 255.5], [0.0, 0.0, 1.0]]


def test_cell_translation_projects_the_root_to_the_cell():
    m = 5
    g = torch.Generator().manual_seed(0)
    cells = torch.randint(0, 8, (m, 2), generator=g)
    k = fixed_intrinsics(SIZE).expand(m, 3, 3)
    cam = torch.zeros(m, 3)
    cam[:, 2] = torch.linspace(-1, 2, m)
    j0 = torch.randn(m, 3, generator=g) * 0.05
    transl, root = cell_translation(cam, cells, k, j0, SIZE, STRIDE, depth_scale=0.4, offset_unit=0.1)
    assert torch.allclose(transl + j0, root)
    uv = project_points(root[:, None], k)[:, 0]
    assert torch.allclose(uv, cell_to_pixel(cells, STRIDE), atol=1e-4)
    assert torch.allclose(root[:, 2], 0.4 * torch.exp(soft_clamp(cam[:, 2], -2.0, 4.0)), rtol=1e-6)  # f / S = 1
    # the lateral code moves the wrist by offset_unit metres per unit at the same depth
    cam2 = cam.clone()
    cam2[:, :2] = torch.tensor([0.5, -1.0])
    _, root2 = cell_translation(cam2, cells, k, j0, SIZE, STRIDE, depth_scale=0.4, offset_unit=0.1)
    assert torch.allclose(root2 - root, torch.tensor([0.05, -0.1, 0.0]).expand(m, 3), atol=1e-6)


def test_soft_clamp_bounds_smoothly_and_never_kills_the_gradient():
    x = torch.linspace(-50, 50, 201, requires_grad=True)
    y = soft_clamp(x, -2.0, 4.0)
    assert bool((y >= -2.0).all() and (y <= 4.0).all()) and bool((y[1:] >= y[:-1]).all())
    assert abs(float(soft_clamp(torch.tensor(1.0), -2.0, 4.0)) - 1.0) < 1e-7  # the centre is a fixed point
    assert abs(float(soft_clamp(torch.tensor(0.0), -2.0, 4.0))) < 0.05  # near the identity around 0
    y.sum().backward()
    assert bool((x.grad[100:105] > 0.85).all())  # ~ slope 1 around the centre (x in [0, 2])
    t = torch.tensor(6.0, requires_grad=True)
    soft_clamp(t, -2.0, 4.0).backward()
    assert t.grad > 0  # a hard clamp would have zero gradient here


@pytest.mark.parametrize("side", [RIGHT, LEFT])
def test_reconstructed_wrist_projects_to_its_cell(built, side):
    _, net = built
    m = 3
    g = torch.Generator().manual_seed(side)
    params = torch.randn(m, NUM_PARAMS, generator=g) * 0.3
    params[:, 58:60] = 0.0  # du = dv = 0
    cells = torch.tensor([[1, 2], [7, 0], [4, 4]])
    k = torch.tensor([[90.0, 0.0, 30.0], [0.0, 90.0, 33.0], [0.0, 0.0, 1.0]]).expand(m, 3, 3)
    hands = net.reconstruct(params, torch.zeros(m, NUM_SH), None, cells, torch.full((m,), side), k)
    assert torch.allclose(hands["keypoints_2d"][:, 0], cell_to_pixel(cells, STRIDE), atol=1e-3)
    assert torch.allclose(hands["joints"][:, 0], hands["root"], atol=1e-5)
    layer = net.hands.layers[side]
    assert torch.allclose(hands["betas"], soft_clamp(params[:, 48:58], -3.0, 3.0))  # bounded shape
    ref = layer(global_orient=params[:, :3], hand_pose=params[:, 3:48], betas=hands["betas"], transl=hands["transl"])
    assert torch.allclose(ref.vertices, hands["vertices"], atol=1e-6)


# ---------------------------------------------------------------------------------------------- targets
def test_encode_targets_centres_heatmaps_and_letterbox(built, single_sample):
    method, _ = built
    enc = method.encode_targets(single_sample)
    a = enc["net_from_image"]
    assert np.allclose(a, [[0.8, 0.0, -0.1], [0.0, 0.8, -0.1]], atol=1e-5)  # 80 -> 64 letterbox: u = 0.8 u - 0.1
    assert enc["net_image"].shape == (SIZE, SIZE, 3) and enc["center_hm"].shape == (1, 8, 8)
    assert enc["hand_hm"].shape == (2, 8, 8) and enc["kp_hm"].shape == (21, 16, 16)
    assert len(enc["handedness"]) == 1
    kp = single_sample["keypoints_2d"][0] * 0.8 - 0.1
    vis = (single_sample["joint_visible"][0] > 0) & (single_sample["joint_valid"][0] > 0)
    centre = kp[vis].mean(axis=0)  # the paper's centre: mean of the visible keypoints
    cell = np.floor((centre + 0.5) / STRIDE).astype(int)
    assert enc["cells"][0].tolist() == cell.tolist()
    assert enc["center_hm"][0, cell[1], cell[0]] == 1.0 and (enc["center_hm"] == 1.0).sum() == 1
    side = int(single_sample["handedness"][0])
    assert enc["hand_hm"][side, cell[1], cell[0]] == 1.0 and enc["hand_hm"][1 - side].max() == 0.0
    assert np.allclose(enc["keypoints_2d"][0], kp, atol=1e-4)
    assert (enc["kp_hm"].reshape(21, -1).max(axis=1) == 1.0).sum() == vis.sum()


# ---------------------------------------------------------------------------------------------- forward / predict
@pytest.mark.parametrize("which", ["single", "multi"])
def test_output_shapes_for_one_and_several_hands(built, which, single_sample, multi_samples):
    method, net = built
    samples = [single_sample] if which == "single" else multi_samples
    batch = method.collate([method.encode_targets(s) for s in samples])
    b, m, v = len(samples), int(batch["hand_batch"].numel()), net.num_vertices
    assert m == (1 if which == "single" else sum(len(s["handedness"]) for s in samples))
    net.train()
    out = net(batch)
    maps = out["maps"]
    assert maps["center"].shape == (b, 1, 8, 8) and maps["handedness"].shape == (b, 2, 8, 8)
    assert maps["params"].shape == (b, 61, 8, 8) and maps["light"].shape == (b, 27, 8, 8)
    assert maps["keypoints"].shape == (b, 21, 16, 16)
    hands = out["hands"]
    assert hands["joints"].shape == (m, 21, 3) and hands["vertices"].shape == (m, v, 3)
    assert hands["keypoints_2d"].shape == (m, 21, 2) and hands["albedo"].shape == (m, v, 3)
    assert "detections" not in out
    total, parts = method.loss(out, batch)
    expected = {"center", "handedness", "keypoint_heatmap", "reprojection", "bone", "pose_prior", "shape_prior",
                "photometric", "consistency"}
    assert set(parts) == expected
    assert torch.isfinite(total) and all(torch.isfinite(p) for p in parts.values())
    total.backward()
    net.zero_grad(set_to_none=True)
    net.eval()
    with torch.no_grad():
        out = net(batch)
    preds = method.predict(out, batch)
    assert len(preds) == b
    for pred in preds:
        n = len(pred["handedness"])
        assert pred["score"].shape == (n,) and pred["bbox"].shape == (n, 4)
        assert pred["keypoints_2d"].shape == (n, 21, 2) and pred["joints_3d"].shape == (n, 21, 3)
        assert pred["vertices_3d"].shape == (n, v, 3) and pred["hand_pose"].shape == (n, 48)
        assert pred["betas"].shape == (n, 10) and pred["transl"].shape == (n, 3)
        assert pred["handedness"].dtype == np.int64


def test_images_without_hands(built, multi_samples):
    from hand_recon_core.data.augment import select_hands

    method, net = built
    empty = select_hands(multi_samples[0], np.zeros(len(multi_samples[0]["handedness"]), dtype=bool))
    enc = method.encode_targets(empty)
    assert enc["center_hm"].max() == 0.0 and len(enc["cells"]) == 0
    batch = method.collate([enc, method.encode_targets(multi_samples[1])])
    assert batch["hand_batch"].tolist() == [1] * len(multi_samples[1]["handedness"])
    net.train()
    total, parts = method.loss(net(batch), batch)
    assert torch.isfinite(total)
    total.backward()
    # every parameter receives a gradient (zero where unused), as DistributedDataParallel requires
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=True)
    only_empty = method.collate([enc])
    total, parts = method.loss(net(only_empty), only_empty)
    assert set(parts) == {"center", "handedness", "keypoint_heatmap"} and torch.isfinite(total)
    net.eval()
    with torch.no_grad():
        preds = method.predict(net(only_empty), only_empty)
    assert preds[0]["joints_3d"].shape[1:] == (21, 3)


def test_method_pickles_without_the_network(built):
    import pickle

    method, _ = built
    clone = pickle.loads(pickle.dumps(method))
    assert clone.net is None and method.net is not None and clone.num_vertices == method.num_vertices


def _planted_maps(net, planted, b=2, h=8):
    maps = {"center": torch.full((b, 1, h, h), -10.0), "handedness": torch.full((b, 2, h, h), -10.0),
            "params": torch.zeros(b, NUM_PARAMS, h, h), "light": torch.zeros(b, NUM_SH, h, h),
            "features": torch.zeros(b, net.encoder[-1][0].out_channels, h, h)}
    for bi, x, y, side, logit in planted:
        maps["center"][bi, 0, y, x] = logit
        maps["handedness"][bi, side, y, x] = 2.0
    return maps


def test_decoding_finds_exactly_the_planted_hands(built):
    _, net = built
    planted = [(0, 1, 2, RIGHT, 3.0), (0, 6, 5, LEFT, 2.0), (0, 3, 7, RIGHT, 1.0), (1, 4, 4, LEFT, 4.0)]
    maps = _planted_maps(net, planted)
    maps["center"][0, 0, 2, 2] = 2.5  # a weaker neighbour of the first peak: suppressed by the 3x3 NMS
    k = fixed_intrinsics(SIZE).expand(2, 3, 3)
    det = net.decode(maps, k)
    got = sorted(zip(det["batch"].tolist(), det["cells"][:, 0].tolist(), det["cells"][:, 1].tolist(),
                     det["handedness"].tolist()))
    assert got == sorted((bi, x, y, side) for bi, x, y, side, _ in planted)
    assert det["score"].tolist() == pytest.approx([torch.sigmoid(torch.tensor(v)).item() for v in (3.0, 2.0, 1.0, 4.0)])
    assert torch.allclose(det["keypoints_2d"][:, 0], cell_to_pixel(det["cells"], STRIDE), atol=1e-3)
    assert det["vertices"].shape == (4, net.num_vertices, 3) and det["albedo"].shape == (4, net.num_vertices, 3)
    # threshold: 0.3 keeps sigmoid(1) = 0.73; raising it drops that hand
    net.score_threshold = 0.8
    try:
        assert net.decode(maps, k)["batch"].numel() == 3
    finally:
        net.score_threshold = 0.3
    empty = net.decode(_planted_maps(net, []), k)
    assert empty["batch"].numel() == 0 and empty["joints"].shape == (0, 21, 3)


def test_predict_maps_the_fixed_camera_back_to_the_image(built, single_sample):
    method, net = built
    batch = method.collate([method.encode_targets(single_sample)])
    k_cam, k_net, k_raw = batch["K_cam"][0], batch["K_net"][0], batch["K_raw"][0]
    maps = _planted_maps(net, [(0, 3, 4, RIGHT, 3.0)], b=1)
    maps["params"][0, 58:61, 4, 3] = torch.tensor([0.3, -0.2, 0.5])
    maps["params"][0, 0:3, 4, 3] = torch.tensor([0.2, 1.0, -0.3])
    det = net.decode(maps, batch["K_cam"])
    pred = method.predict({"detections": det}, batch)[0]
    wrist_v = det["joints"][0, 0]
    uv_net = project_points(wrist_v[None, None], k_cam)[0, 0]  # where the network sees the wrist
    a = batch["net_from_image"][0].double()
    uv_raw = torch.linalg.solve(a[:, :2], uv_net.double() - a[:, 2])
    assert np.allclose(pred["keypoints_2d"][0, 0], uv_raw.numpy(), atol=1e-3)
    assert pred["joints_3d"][0, 0, 2] == pytest.approx(float(wrist_v[2] * k_net[0, 0] / k_cam[0, 0]), rel=1e-5)
    rel_pred = pred["joints_3d"][0] - pred["joints_3d"][0, :1]
    rel_net = (det["joints"][0] - det["joints"][0, :1]).numpy()
    assert np.allclose(rel_pred, rel_net, atol=1e-6)  # the 3D shape is unchanged
    assert np.allclose(project_points(torch.from_numpy(pred["joints_3d"][0])[None], k_raw)[0].numpy(),
                       pred["keypoints_2d"][0], atol=1e-3)
    # hand_pose / betas / transl reproduce the vertices with the sample conventions
    layer = net.hands.layers[RIGHT]
    t = torch.from_numpy
    out = layer(global_orient=t(pred["hand_pose"][:, :3]), hand_pose=t(pred["hand_pose"][:, 3:]),
                betas=t(pred["betas"]), transl=t(pred["transl"]))
    assert np.allclose(out.vertices.numpy(), pred["vertices_3d"], atol=1e-5)
    x1, y1, x2, y2 = pred["bbox"][0]
    assert 0 <= x1 <= x2 <= 79 and 0 <= y1 <= y2 <= 79


def test_full_supervision_adds_the_3d_terms(multi_samples):
    method, net = _build(supervision="full")
    batch = method.collate([method.encode_targets(s) for s in multi_samples[:2]])
    total, parts = method.loss(net(batch), batch)
    assert {"joints_3d", "vertices_3d", "pose_3d", "betas_3d"} <= set(parts)
    assert "root_3d" not in parts  # only with intrinsics="sample"
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    method2, net2 = _build(supervision="full", intrinsics="sample")
    batch2 = method2.collate([method2.encode_targets(s) for s in multi_samples[:2]])
    assert torch.allclose(batch2["K_cam"], batch2["K_net"])
    _, parts2 = method2.loss(net2(batch2), batch2)
    assert "root_3d" in parts2
    assert "orient_3d" not in parts  # off by default


def test_orientation_term_is_the_squared_frobenius_distance_of_the_global_rotation(multi_samples):
    from hand_recon_core.geometry.rotations import axis_angle_to_matrix

    method, net = _build(supervision="full", w_orient_3d=2.0, orient_repr="6d")
    batch = method.collate([method.encode_targets(s) for s in multi_samples[:2]])
    out = net(batch)
    total, parts = method.loss(out, batch)
    hp = batch["has_params"]
    gt = axis_angle_to_matrix(batch["hand_pose"][hp, :3].float())
    expected = ((out["hands"]["orient_matrix"][hp] - gt) ** 2).sum(dim=(-1, -2)).mean()
    assert torch.allclose(parts["orient_3d"], expected.detach()) and 0.0 <= float(expected) <= 8.0
    total.backward()
    assert net.param_head.out.weight.grad.abs().sum() > 0


def test_stage_one_weights_switch_the_localisation_terms_off(single_sample):
    method, net = _build(w_center=0.0, w_handedness=0.0, w_keypoint_heatmap=0.0, w_consistency=0.0,
                         input_crop="hands")
    batch = method.collate([method.encode_targets(single_sample)])
    total, parts = method.loss(net(batch), batch)
    assert not {"center", "handedness", "keypoint_heatmap", "consistency"} & set(parts)
    total.backward()
    assert float(net.center_head.out.weight.grad.abs().sum()) == 0.0  # in the graph (DDP), but untrained


def test_augment_runs_in_encode_targets(multi_samples):
    method, _ = _build(augment={"rotation_range": [-30, 30], "flip_prob": 0.5})
    np.random.seed(0)  # noqa: NPY002 (encode_targets draws from the global generator, as the engine seeds it)
    enc = method.encode_targets(multi_samples[0])
    assert enc["net_image"].shape == (SIZE, SIZE, 3) and enc["center_hm"].shape == (1, 8, 8)


def test_init_weights_loads_a_checkpoint(tmp_path, built):
    from hand_recon_core.training import checkpoint as ckpt_io

    method, net = built
    state = {k: v + 1.0 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    payload = {"format": ckpt_io.CHECKPOINT_FORMAT, "method": "single_stage", "hand_model": "open", "model": state,
               "config": {}, "step": 1, "epoch": 0, "optimizer": {}, "scheduler": {}}
    missing = [k for k in getattr(ckpt_io, "_REQUIRED", ()) if k not in payload]
    payload.update({k: None for k in missing})
    path = ckpt_io.save_checkpoint(tmp_path / "stage1.pt", payload)
    m2, net2 = _build(init_weights=str(path))
    for k, v in net2.state_dict().items():
        assert torch.equal(v, state[k]), k
    m3, _ = _build(init_weights=str(tmp_path / "missing.pt"))  # a warning, not an error (evaluation path)
    # a 6D-orientation network from the axis-angle checkpoint: strict refuses, init_strict=false keeps the rest
    with pytest.raises(ckpt_io.CheckpointMismatchError, match="param_head"):
        _build(init_weights=str(path), orient_repr="6d")
    _, net4 = _build(init_weights=str(path), orient_repr="6d", init_strict=False)
    fresh = _build(orient_repr="6d")[1].state_dict()
    for k, v in net4.state_dict().items():
        expected = fresh[k] if tuple(v.shape) != tuple(state[k].shape) else state[k]
        assert torch.equal(v, expected), k
    assert net4.param_head.out_channels == 64


def test_6d_orientation_code_gives_the_same_hand_as_axis_angle():
    from hand_recon_core.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d

    _, net = _build(orient_repr="6d")
    m = 4
    g = torch.Generator().manual_seed(3)
    aa = torch.randn(m, NUM_PARAMS, generator=g) * 0.3
    aa[:, :3] = torch.randn(m, 3, generator=g) * 1.5  # orientations far from the identity
    code = torch.cat([matrix_to_rot6d(axis_angle_to_matrix(aa[:, :3])) - torch.tensor([1.0, 0, 0, 0, 1, 0]),
                      aa[:, 3:]], dim=1)
    assert code.shape == (m, 64)
    cells = torch.tensor([[1, 2], [7, 0], [4, 4], [3, 3]])
    k = fixed_intrinsics(SIZE).expand(m, 3, 3)
    side = torch.tensor([RIGHT, LEFT, RIGHT, LEFT])
    hands = net.reconstruct(code, torch.zeros(m, NUM_SH), None, cells, side, k)
    _, ref_net = _build()
    ref = ref_net.reconstruct(aa, torch.zeros(m, NUM_SH), None, cells, side, k)
    assert torch.allclose(hands["orient_matrix"], axis_angle_to_matrix(aa[:, :3]), atol=1e-5)
    assert torch.allclose(hands["joints"], ref["joints"], atol=1e-5)
    zero = net.reconstruct(torch.zeros(1, 64), torch.zeros(1, NUM_SH), None, cells[:1], side[:1], k[:1])
    assert torch.allclose(zero["orient_matrix"][0], torch.eye(3))  # a zero code is the identity
    with pytest.raises(ValueError, match="orient_repr"):
        SingleStageMethod(orient_repr="quaternion")


# ---------------------------------------------------------------------------------------------- ONNX
@pytest.mark.parametrize("opset", [17, 20])
def test_onnx_export_matches_pytorch(built, tmp_path, opset):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    method, net = built
    net = copy.deepcopy(net).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-trivial head outputs (the initial last layers are ~0)
        for head in (net.center_head, net.handedness_head, net.param_head, net.light_head, net.texture_head):
            head.out.weight.copy_(torch.randn(head.out.weight.shape, generator=g) * 0.05)
    path = tmp_path / "single_stage.onnx"
    names = method.export_onnx(net, str(path), texture=True, opset=opset)
    assert names == ["center", "handedness", "params", "light", "keypoints", "texture"]
    x = torch.randn(2, 3, SIZE, SIZE, generator=g)
    with torch.no_grad():
        ref = SingleStageExport(net, texture=True)(x)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"image": x.numpy()})
    for name, got, want in zip(names, outs, ref):
        assert got.shape == tuple(want.shape), name
        assert np.abs(got - want.numpy()).max() <= 1e-4, name
        assert np.abs(want.numpy()).max() > 1e-3, name  # the comparison is not between zeros


# ---------------------------------------------------------------------------------------------- training
def test_loss_falls_on_a_handful_of_synthetic_samples(multi_samples, optimise):
    method, net = _build()
    batch = method.collate([method.encode_targets(s) for s in multi_samples[:3]])
    losses = optimise(method, net, batch, 30, torch.optim.Adam(net.parameters(), lr=2e-3))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


@pytest.mark.slow
def test_smoke_config_trains_through_the_engine(tmp_path):
    from hand_recon_core.training.config import load_config
    from hand_recon_core.training.engine import Trainer

    root = Path(__file__).resolve().parents[3]
    cfg = load_config(root / "config" / "single_stage_smoke.yaml")
    cfg.output_dir = str(tmp_path / "run")
    cfg.log.tensorboard = False
    cfg.log.progress = False
    cfg.log.curves = False
    torch.set_num_threads(1)
    Trainer(cfg).fit()
    with open(tmp_path / "run" / "logs" / "train.csv") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert len(losses) >= 3 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0]


def test_eval_at_ground_truth_centres(built, multi_samples):
    """``eval_centres="ground_truth"``: one prediction per ground-truth hand, read at its centre cell, with its
    handedness (the first-stage protocol); images without hands give none."""
    from hand_recon_core.data.augment import select_hands

    method, net = built
    gt_method = copy.copy(method)
    gt_method.eval_centres = "ground_truth"
    empty = select_hands(multi_samples[0], np.zeros(len(multi_samples[0]["handedness"]), dtype=bool))
    encs = [method.encode_targets(s) for s in (multi_samples[1], empty, multi_samples[2])]
    batch = method.collate(encs)
    net.eval()
    with torch.no_grad():
        out = net(batch)
    preds = gt_method.predict(out, batch)
    for pred, sample in zip(preds, (multi_samples[1], empty, multi_samples[2])):
        assert pred["handedness"].tolist() == list(sample["handedness"])
        assert np.all(pred["score"] == 1.0) and pred["joints_3d"].shape == (len(sample["handedness"]), 21, 3)
    hb = batch["hand_batch"]
    first = (hb == 0).nonzero().flatten()
    np.testing.assert_allclose(preds[0]["joints_3d"] - preds[0]["joints_3d"][:, :1],
                               (out["hands"]["joints"][first] - out["hands"]["joints"][first, :1]).numpy(), atol=1e-5)
    with torch.no_grad():
        only_empty = method.collate([encs[1]])
        assert len(gt_method.predict(net(only_empty), only_empty)[0]["handedness"]) == 0
    with pytest.raises(ValueError, match="eval_centres"):
        SingleStageMethod(eval_centres="oracle")


def test_keypoint_lifter_trains_decodes_and_exports(multi_samples, tmp_path):
    method, net = _build(supervision="full", keypoint_lifter=True, orient_repr="6d")
    assert net.extent_head is not None and net.lifter is not None
    batch = method.collate([method.encode_targets(s) for s in multi_samples[:2]])
    net.train()
    out = net(batch)
    hb = batch["hand_batch"]
    cells = batch["hand_cells"]
    plain = net.reconstruct(gather_cells(out["maps"]["params"], hb, cells[:, 1], cells[:, 0]),
                            torch.zeros(len(hb), NUM_SH), None, cells, batch["handedness"], batch["K_cam"][hb])
    assert torch.allclose(out["hands"]["joints"], plain["joints"], atol=1e-6)  # zero correction at the start
    total, parts = method.loss(out, batch)
    assert "extent" in parts and torch.isfinite(total)
    total.backward()
    assert net.lifter.out.weight.grad.abs().sum() > 0 and net.extent_head.out.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters())  # DDP needs every gradient
    net.eval()
    with torch.no_grad():
        preds = method.predict(net(batch), batch)
    assert len(preds) == 2
    names = method.export_onnx(copy.deepcopy(net), str(tmp_path / "lifter.onnx"), opset=17)
    assert names[-1] == "extent"
    with pytest.raises(ValueError, match="keypoint_branch"):
        SingleStageMethod(keypoint_lifter=True, keypoint_branch=False, w_keypoint_heatmap=0, w_consistency=0)
