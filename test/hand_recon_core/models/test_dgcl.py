"""Tests of hand_recon_core.models.dgcl (HandDGCL): losses, queue, crops, inference module, ONNX, training."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hand_recon_core.data.sample import LEFT, RIGHT
from hand_recon_core.data.synthetic.engine import generate_sample
from hand_recon_core.models.blocks.mesh_graph import normalized_laplacian, scaled_laplacian
from hand_recon_core.models.dgcl import (
    PAPER_LOSS_WEIGHTS,
    DGCLInferenceNet,
    DGCLMethod,
    FeaturePoseQueue,
    crop_pixels_to_image,
    crop_to_camera,
    export_onnx,
    info_nce,
    scaled_laplacian_torch,
    similarity_distinguish_loss,
)
from hand_recon_core.models.registry import MethodKwargsError, create_method, get_method
from hand_recon_core.training.config import load_config

REPO = Path(__file__).resolve().parents[3]
#: A tiny network for the fast tests (32-pixel crops, ResNet-18, narrow graph layers).
TINY = {"input_size": 32, "backbone": "resnet18", "feature_dim": 16, "mlp_hidden": 32, "graph_channels": 8,
        "gcn_channels": [8, 8, 8], "unet_hidden": 8, "queue_size": 8}
NO_BACKBONE_CFG = SimpleNamespace(backbone=SimpleNamespace(name=None, pretrained=None))


@pytest.fixture(scope="module")
def raw_samples():
    torch.set_num_threads(1)
    return [generate_sample("interacting", i, seed=3, size=96) for i in range(4)]


@pytest.fixture(scope="module")
def tiny(raw_samples):
    torch.manual_seed(0)
    method = create_method("dgcl", TINY)
    model = method.build(NO_BACKBONE_CFG, "open")
    batch = method.collate([method.encode_targets(s) for s in raw_samples])
    return method, model, batch


# ------------------------------------------------------------------------------------------------ contrastive
def test_info_nce_by_hand():
    tau = 0.5
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # positives identical to the queries: logits [[1, 0], [0, 1]] / tau
    expected = math.log(1.0 + math.exp(-1.0 / tau))
    assert float(info_nce(q, q, None, tau)) == pytest.approx(expected, rel=1e-6)
    # a queue key adds one negative term per row: q . k = 0 for both rows with k = (-1, 1)/sqrt(2)... use (0, -1)
    neg = torch.tensor([[0.0, -1.0]])
    row0 = math.log(math.exp(1 / tau) + math.exp(0.0) + math.exp(0.0)) - 1 / tau
    row1 = math.log(math.exp(0.0) + math.exp(1 / tau) + math.exp(-1 / tau)) - 1 / tau
    assert float(info_nce(q, q, neg, tau)) == pytest.approx((row0 + row1) / 2, rel=1e-6)
    # positives close -> lower loss than positives far
    far = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    near = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2], [0.2, 1.0]]), dim=1)
    assert info_nce(q, near, None, tau) < info_nce(q, far, None, tau)
    assert float(info_nce(q[:0], q[:0], None, tau)) == 0.0


def test_similarity_distinguish_by_hand():
    q = torch.tensor([[1.0, 0.0]])
    pool = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # S_p = [1, 0]
    qp = torch.tensor([[1.0, 0.0]])
    pp = torch.tensor([[0.6, 0.8], [-1.0, 0.0]])  # S_g = [0.6, -1 -> clipped 0]
    expected = math.sqrt(((1.0 - 0.6) ** 2 + 0.0) / 2)
    assert float(similarity_distinguish_loss(q, qp, pool, pp, eps=0.0)) == pytest.approx(expected, rel=1e-6)
    # features whose similarities follow the poses give a lower loss
    assert similarity_distinguish_loss(q, qp, pp.clamp(min=0), pp) < similarity_distinguish_loss(q, qp, pool, pp)


def test_queue_wraps_around():
    queue = FeaturePoseQueue(4, key_dim=1, pose_dim=1)
    assert queue.valid()[0].shape == (0, 1)
    queue.enqueue(torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[10.0], [20.0], [30.0]]))
    assert int(queue.ptr) == 3 and int(queue.count) == 3
    queue.enqueue(torch.tensor([[4.0], [5.0], [6.0]]), torch.tensor([[40.0], [50.0], [60.0]]))
    assert int(queue.ptr) == 2 and int(queue.count) == 4
    assert queue.keys.flatten().tolist() == [5.0, 6.0, 3.0, 4.0]  # oldest (1, 2) overwritten first
    assert queue.poses.flatten().tolist() == [50.0, 60.0, 30.0, 40.0]
    keys, _ = queue.valid()
    keys += 100.0  # valid() returns copies
    assert queue.keys.flatten().tolist() == [5.0, 6.0, 3.0, 4.0]
    queue.enqueue(torch.arange(6.0)[:, None], torch.zeros(6, 1))  # more than the capacity: newest 4 kept
    assert sorted(queue.keys.flatten().tolist()) == [2.0, 3.0, 4.0, 5.0]
    assert "queue.keys" in {f"queue.{k}" for k in queue.state_dict()}


def test_momentum_update_moves_key_weights_by_the_right_fraction(tiny):
    _, model, _ = tiny
    dgcl = model.dgcl
    online = model.net.gcn
    keys_before = [p.detach().clone() for p in dgcl.key_gcn.parameters()]
    with torch.no_grad():  # make online and key weights differ
        for p in online.parameters():
            p.add_(0.5)
    dgcl.momentum_update(online)
    m = dgcl.momentum
    assert m == pytest.approx(0.999)
    for k0, k1, q in zip(keys_before, dgcl.key_gcn.parameters(), online.parameters()):
        torch.testing.assert_close(k1 - k0, (1 - m) * (q - k0), rtol=1e-4, atol=1e-6)
        assert not k1.requires_grad
    with torch.no_grad():  # undo for the other tests
        for p in online.parameters():
            p.sub_(0.5)


def test_scaled_laplacian_torch_matches_scipy():
    a = torch.tensor([[0.0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]])
    import scipy.sparse as sp

    ref = scaled_laplacian(normalized_laplacian(sp.csr_matrix(a.numpy()))).toarray()
    torch.testing.assert_close(scaled_laplacian_torch(a), torch.as_tensor(ref, dtype=torch.float32))


# ------------------------------------------------------------------------------------------------ targets, frames
def test_encode_targets_slots_and_normalisation(tiny, raw_samples):
    method, _, batch = tiny
    raw = raw_samples[0]
    enc = method.encode_targets(raw)
    assert enc["image"].shape == (32, 32, 3)
    assert enc["dgcl_present"].tolist() == [1.0, 1.0]
    for slot, code in enumerate((RIGHT, LEFT)):
        i = int(np.flatnonzero(raw["handedness"] == code)[0])
        rel = enc["dgcl_joints_rel"][slot]
        np.testing.assert_allclose(rel[0], 0.0, atol=1e-7)
        assert np.linalg.norm(rel[4]) == pytest.approx(1.0, abs=1e-5)  # middle MCP at unit distance
        # no rotation: the crop camera frame is the original one
        np.testing.assert_allclose(enc["dgcl_verts_rel"][slot] * enc["dgcl_bone"][slot] + enc["dgcl_root"][slot],
                                   raw["vertices_3d"][i], atol=1e-6)
        np.testing.assert_allclose(crop_pixels_to_image(enc["dgcl_kp2d"][slot], enc["dgcl_crop_matrix"]),
                                   raw["keypoints_2d"][i], atol=1e-3)
    np.testing.assert_allclose(enc["dgcl_crop_rot"], np.eye(3))
    # one hand only: the missing slot is absent
    right_only = {k: (v[:1] if k in ("handedness", "joints_3d", "keypoints_2d", "joint_valid", "joint_visible",
                                     "bbox", "has_3d", "hand_pose", "betas", "transl", "has_params",
                                     "vertices_3d") else v) for k, v in raw.items()}
    right_only["handedness"] = np.array([RIGHT])
    one = method.encode_targets(right_only)
    assert one["dgcl_present"].tolist() == [1.0, 0.0] and one["dgcl_verts_valid"][1] == 0
    assert batch["dgcl_verts_rel"].shape == (4, 2, 806, 3) and batch["pixels"].shape == (4, 3, 32, 32)


def test_crop_to_camera_inverts_the_crop_with_rotation(raw_samples):
    method = DGCLMethod(input_size=64, crop_jitter=0.1, crop_rotation_deg=40.0)
    raw = raw_samples[1]
    np.random.seed(5)  # noqa: NPY002 - encode_targets draws from the global generator
    enc = method.encode_targets(raw, train=True)
    assert not np.allclose(enc["dgcl_crop_rot"], np.eye(3))
    size, k = 64.0, torch.as_tensor(enc["K"], dtype=torch.float64)
    root = torch.as_tensor(enc["dgcl_root"], dtype=torch.float64)  # (2, 3) crop camera frame
    # the weak-perspective camera that puts each root where it is: invert crop_weak_perspective_to_full_translation
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    s = (fx + fy) / (root[:, 2] * size)
    tx = root[:, 0] - (size / 2 - cx) * root[:, 2] / fx
    ty = root[:, 1] - (size / 2 - cy) * root[:, 2] / fy
    cam = torch.stack([s, tx, ty], dim=-1)
    rel = torch.as_tensor(enc["dgcl_joints_rel"] * enc["dgcl_bone"][:, None, None], dtype=torch.float64)
    out = crop_to_camera(rel, cam, k, size, torch.as_tensor(enc["dgcl_crop_rot"], dtype=torch.float64))
    for slot, code in enumerate((RIGHT, LEFT)):
        i = int(np.flatnonzero(raw["handedness"] == code)[0])
        np.testing.assert_allclose(out[slot].numpy(), raw["joints_3d"][i], atol=2e-6)


def test_predict_protocol(tiny):
    method, model, batch = tiny
    model.eval()
    with torch.no_grad():
        out = model(batch)
    preds = method.predict(out, batch)
    assert len(preds) == 4
    p = preds[0]
    assert p["handedness"].tolist() == [RIGHT, LEFT] and p["score"].tolist() == [1.0, 1.0]
    assert p["vertices_3d"].shape == (2, 806, 3) and p["joints_3d"].shape == (2, 21, 3)
    assert p["keypoints_2d"].shape == (2, 21, 2) and p["bbox"].shape == (2, 4)
    assert np.all(p["bbox"][:, 2:] >= p["bbox"][:, :2])
    assert np.all(p["joints_3d"][:, :, 2] > 0)  # in front of the camera
    # joints are regressed from the vertices: the wrist is the regressor's row 0
    layer_reg = model.net.regressors[0].numpy()
    np.testing.assert_allclose(layer_reg @ p["vertices_3d"][0], p["joints_3d"][0, :16], atol=1e-5)


# ------------------------------------------------------------------------------------------------ inference module
def test_inference_module_has_no_dgclnet_parameter_and_matches(tiny):
    _, model, batch = tiny
    net = model.inference_module()
    assert isinstance(net, DGCLInferenceNet)
    keys = set(net.state_dict())
    full = set(model.state_dict())
    dgcl_keys = {k for k in full if k.startswith("dgcl.")}
    assert dgcl_keys and any("generator" in k for k in dgcl_keys) and any("key_gcn" in k for k in dgcl_keys)
    assert {f"net.{k}" for k in keys} == full - dgcl_keys
    for word in ("generator", "pose_mlp", "key_gcn", "queue", "dgcl"):
        assert not any(word in k for k in keys)
    model.eval()
    with torch.no_grad():
        full_out = model(batch)
        verts, joints, cam, bone = net(batch["pixels"])
    torch.testing.assert_close(full_out["vertices"], verts)
    torch.testing.assert_close(full_out["joints"], joints)
    torch.testing.assert_close(full_out["cam"], cam)
    torch.testing.assert_close(full_out["bone_length"], bone)


def test_onnx_parity(tiny, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    _, model, batch = tiny
    net = model.inference_module()
    with torch.no_grad():  # non-trivial camera heads (zero-initialised)
        for head in net.cam_heads:
            head.weight.normal_(0.0, 0.05)
    path = export_onnx(model, tmp_path / "dgcl.onnx")
    import onnx

    names = {init.name for init in onnx.load(str(path)).graph.initializer}
    assert not any("generator" in n or "key_gcn" in n or "queue" in n for n in names)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    net.eval()
    pixels = batch["pixels"][:3]  # traced with batch 1: the batch axis is dynamic
    with torch.no_grad():
        expected = net(pixels)
    got = session.run(None, {"pixels": pixels.numpy()})
    for e, g in zip(expected, got):
        assert e.shape == g.shape
        np.testing.assert_allclose(g, e.numpy(), atol=1e-4)
    with torch.no_grad():
        for head in net.cam_heads:
            head.weight.zero_()


# ------------------------------------------------------------------------------------------------ training
def _train(method, model, batch, steps: int, lr: float = 2e-3) -> list[float]:
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        out = model(batch)
        total, parts = method.loss(out, batch)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(float(total.detach()))
        assert all(torch.isfinite(torch.as_tensor(v)) for v in parts.values())
    return losses


def test_loss_falls_over_30_steps(raw_samples):
    torch.manual_seed(0)
    method = create_method("dgcl", TINY)
    model = method.build(NO_BACKBONE_CFG, "open")
    batch = method.collate([method.encode_targets(s) for s in raw_samples])
    losses = _train(method, model, batch, 30)
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    out = model(batch)
    _, parts = method.loss(out, batch)
    assert {"joints_3d", "verts_3d", "joints_2d", "length", "transition", "consistency", "self_contrast",
            "cross_contrast"} <= set(parts)
    assert int(model.dgcl.queue.count) == 8  # the queue filled up (8 hands per step, capacity 8)


def test_gcn_baseline_and_explicit_disturbances(raw_samples):
    torch.manual_seed(0)
    base = create_method("dgcl", {**TINY, "use_dgcl": False})
    model = base.build(NO_BACKBONE_CFG, "open")
    assert model.dgcl is None
    batch = base.collate([base.encode_targets(s) for s in raw_samples[:2]])
    _, parts = base.loss(model.train()(batch), batch)
    assert "self_contrast" not in parts and "consistency" not in parts
    for kind in ("mask", "noise", "edge", "flip"):
        method = create_method("dgcl", {**TINY, "disturbance": kind, "similarity_distinguish": False})
        model = method.build(NO_BACKBONE_CFG, "open")
        assert model.dgcl.generator is None and model.dgcl.pose_mlp is None
        graphs = torch.randn(3, model.net.num_coarse, model.net.graph_channels)
        disturbed, lap = model.dgcl.disturb(graphs)
        if kind in ("edge", "flip"):
            adj = model.dgcl.adjacency
            assert torch.equal(disturbed, graphs) and lap.shape == adj.shape
            assert not torch.allclose(lap, model.net.gcn.lap0)
        else:
            assert lap is None and not torch.equal(disturbed, graphs)
        losses = _train(method, model, batch, 1)
        assert np.isfinite(losses[0])


def test_registry_and_kwargs():
    assert get_method("dgcl") is DGCLMethod
    with pytest.raises(MethodKwargsError):
        create_method("dgcl", {"no_such_option": 1})
    with pytest.raises(ValueError):
        DGCLMethod(disturbance="blur")
    m = DGCLMethod()
    assert m.weights == PAPER_LOSS_WEIGHTS
    assert m.dgcl_args["queue_size"] == 2048 and m.input_size == 256


@pytest.mark.parametrize("name", ["dgcl_smoke", "dgcl_lite", "dgcl_paper", "dgcl_ablation_gcn",
                                  "dgcl_ablation_gcn_dgcl"])
def test_configs_validate(name):
    cfg = load_config(REPO / "config" / f"{name}.yaml")
    assert cfg.method.name == "dgcl"
    method = create_method(cfg.method.name, cfg.method.kwargs)
    if name.startswith("dgcl_ablation"):
        assert method.use_dgcl == (name == "dgcl_ablation_gcn_dgcl")


def test_ablation_configs_differ_only_in_use_dgcl():
    a = load_config(REPO / "config" / "dgcl_ablation_gcn.yaml")
    b = load_config(REPO / "config" / "dgcl_ablation_gcn_dgcl.yaml")
    ka, kb = dict(a.method.kwargs), dict(b.method.kwargs)
    assert ka.pop("use_dgcl") is False and kb.pop("use_dgcl") is True
    assert ka == kb and a.data == b.data and a.optim == b.optim and a.train == b.train


@pytest.mark.slow
def test_smoke_config_trains_with_the_engine(tmp_path):
    """config/dgcl_smoke.yaml through the training engine: ~50 CPU steps, the logged loss falls."""
    from hand_recon_core.training.engine import Trainer
    from hand_recon_core.training.logs import read_csv_rows

    torch.set_num_threads(1)
    out_dir = tmp_path / "run"
    cfg = load_config(REPO / "config" / "dgcl_smoke.yaml", overrides=[f"output_dir={out_dir}"])
    Trainer(cfg).fit()
    rows = [r for r in read_csv_rows(out_dir / "logs" / "train.csv") if np.isfinite(r.get("loss", np.nan))]
    assert len(rows) >= 3
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"]  # window means of steps 1-10 and 41-50
    assert any((out_dir / "checkpoints").iterdir())


# ------------------------------------------------------------------------------------------------ keypoint lifter
def test_keypoint_lifter_feeds_the_hand_features_and_exports(raw_samples, tmp_path):
    torch.manual_seed(0)
    method = create_method("dgcl", {**TINY, "input_size": 64, "keypoint_lifter": True})
    model = method.build(NO_BACKBONE_CFG, "open")
    enc = method.encode_targets(raw_samples[0])
    hm = enc["dgcl_kp_hm"]
    assert hm.shape == (42, 16, 16)
    kp, valid = enc["dgcl_kp2d"], enc["dgcl_j2d_valid"] > 0
    inside = ((kp >= -0.5) & (kp < 63.5)).all(-1)
    assert np.array_equal(hm.reshape(42, -1).max(1) == 1.0, (valid & inside).reshape(-1))
    batch = method.collate([method.encode_targets(s) for s in raw_samples])
    net = model.inference_module().eval()
    with torch.no_grad():
        plain = net(batch["pixels"])
        net.lifter.out.bias.normal_(0.0, 0.5)  # a non-zero correction of every hand feature moves the meshes
        moved = net(batch["pixels"])
    assert not torch.allclose(plain[0], moved[0])
    model.train()
    out = model(batch)
    assert out["keypoint_logits"].shape == (4, 42, 16, 16) and out["keypoints"].shape == (4, 2, 21, 2)
    assert out["attention"].shape == (4, 2, 2, 2) and torch.allclose(out["attention"].sum((-2, -1)), torch.ones(4, 2))
    total, parts = method.loss(out, batch)
    assert float(parts["keypoints"]) > 0 and float(parts["attention"]) > 0
    total.backward()
    assert float(net.split.query.grad.abs().sum()) > 0  # the attention supervision reaches the hand split
    assert float(net.keypoint_head.out.weight.grad.abs().sum()) > 0
    assert float(net.lifter.out.weight.grad.abs().sum()) > 0

    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = export_onnx(model, tmp_path / "dgcl_lifter.onnx")
    net.eval()
    with torch.no_grad():
        expected = net(batch["pixels"][:2])
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"pixels": batch["pixels"][:2].numpy()})
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e.numpy(), atol=1e-4)


def test_attention_loss_is_smallest_where_the_keypoints_are():
    from hand_recon_core.models.dgcl import _attention_loss

    kp = torch.zeros(1, 2, 21, 2)
    kp[0, 0] = torch.tensor([5.0, 5.0])  # right hand: every keypoint in the top-left cell of a 2 x 2 grid (32 px)
    kp[0, 1] = torch.tensor([25.0, 25.0])  # left hand: bottom-right cell
    valid = torch.ones(1, 2, 21)
    good = torch.tensor([[[[0.97, 0.01], [0.01, 0.01]], [[0.01, 0.01], [0.01, 0.97]]]])
    swapped = good.flip(1)
    assert float(_attention_loss(good, kp, valid, 32.0)) == pytest.approx(-math.log(0.97), rel=1e-5)
    assert float(_attention_loss(swapped, kp, valid, 32.0)) == pytest.approx(-math.log(0.01), rel=1e-5)
    assert float(_attention_loss(good, kp, torch.zeros(1, 2, 21), 32.0)) == 0.0  # no valid keypoint: no term
