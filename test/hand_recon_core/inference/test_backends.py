"""Tests for hand_recon_core.inference.backends / adapters: ONNX Runtime parity, caches, TensorRT keys, errors."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch

from hand_recon_core.inference.adapters import get_adapter
from hand_recon_core.inference.backends import (
    BackendUnavailableError,
    OnnxRuntimeBackend,
    TensorRTBackend,
    TorchCompileBackend,
    create_backend,
    ensure_onnx,
    export_module_parity,
    onnx_cache_key,
    tensorrt_cache_key,
    tensorrt_unavailable_reason,
)
from hand_recon_core.inference.config import BackendOptions, PairingConfig
from hand_recon_core.inference.loading import model_hash
from hand_recon_core.inference.pipeline import Pipeline

ORT_TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def _no_home_cache(monkeypatch, tmp_path):
    """Exports without an explicit cache_dir go to a temporary folder, never to ~/.cache."""
    monkeypatch.setenv("HAND_RECON_CACHE", str(tmp_path / "default_cache"))


@pytest.mark.parametrize("name", ["single_stage", "acr", "dir", "dgcl"])
def test_onnxruntime_network_matches_torch(tiny_model, perturb, tmp_path, name):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    loaded = tiny_model(name)
    if name == "single_stage":
        perturb(loaded)
    adapter = get_adapter(loaded)
    backend = create_backend(adapter, BackendOptions(name="onnxruntime", cache_dir=str(tmp_path)))
    assert isinstance(backend, OnnxRuntimeBackend)
    diffs = export_module_parity(adapter, backend, batch=2)
    assert set(diffs) == set(adapter.output_names)
    assert max(diffs.values()) <= ORT_TOLERANCE, diffs
    with torch.inference_mode():
        ref = adapter.export_module()(adapter.example_input(adapter.fixed_batch or 2, seed=0))
    assert max(float(t.abs().max()) for t in ref) > 1e-3  # the comparison is not between zeros


def test_onnxruntime_pipeline_matches_torch_end_to_end(tiny_model, tmp_path, interacting_sample):
    """Same frames through both backends: the adapters rebuild exactly what the models' forward returns."""
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    image, K = interacting_sample["image"], interacting_sample["K"]
    pairing = PairingConfig(max_wrist_distance_m=100.0, use_interaction_field=False)
    frames = {}
    for backend in ("torch", "onnxruntime"):
        pipe = Pipeline(tiny_model("acr"), tiny_model("dgcl", seed=1), backend=backend, cache_dir=tmp_path,
                        score_threshold=0.0, pairing=pairing)
        assert pipe.backend == backend
        frames[backend] = pipe(image, K)
    a, b = frames["torch"], frames["onnxruntime"]
    assert len(a.hands) == len(b.hands) == 2
    for ha, hb in zip(a.hands, b.hands):
        assert ha.handedness == hb.handedness and ha.refined and hb.refined
        assert np.abs(ha.vertices_3d - hb.vertices_3d).max() < ORT_TOLERANCE
        assert np.abs(ha.joints_3d - hb.joints_3d).max() < ORT_TOLERANCE
        assert np.abs(ha.keypoints_2d - hb.keypoints_2d).max() < 1e-2  # pixels


def test_single_stage_decoding_matches_through_onnxruntime(tiny_model, perturb, tmp_path, multi_sample):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    frames = []
    for backend in ("torch", "onnxruntime"):
        loaded = tiny_model("single_stage")
        perturb(loaded)
        frames.append(Pipeline(loaded, backend=backend, cache_dir=tmp_path, score_threshold=0.0, max_hands=3)(
            multi_sample["image"], multi_sample["K"]))
    for ha, hb in zip(*(f.hands for f in frames)):
        assert ha.handedness == hb.handedness and ha.score == pytest.approx(hb.score, abs=1e-5)
        assert np.abs(ha.vertices_3d - hb.vertices_3d).max() < ORT_TOLERANCE


def test_the_onnx_export_is_cached_by_model_opset_and_shape(tiny_model, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    loaded = tiny_model("dgcl")
    adapter = get_adapter(loaded)
    first = ensure_onnx(adapter, tmp_path, opset=17)
    mtime = os.stat(first).st_mtime_ns

    def no_export(*_args, **_kwargs):
        raise AssertionError("exported again although the cache holds the graph")

    monkeypatch.setattr(type(adapter), "export_onnx", no_export)
    again = ensure_onnx(get_adapter(loaded), tmp_path, opset=17)
    assert again == first and os.stat(again).st_mtime_ns == mtime
    monkeypatch.undo()
    other = ensure_onnx(adapter, tmp_path, opset=18)
    assert other != first and len(list((tmp_path / "onnx").glob("*.onnx"))) == 2


def test_model_hash_follows_the_weights(tiny_model):
    a, b = tiny_model("dgcl"), tiny_model("dgcl")
    assert model_hash(a) == model_hash(b) == a.hash
    with torch.no_grad():
        next(b.model.parameters()).add_(1e-3)
    assert model_hash(b) != model_hash(a)
    assert model_hash(tiny_model("dgcl", seed=1)) != model_hash(a)


def test_onnx_cache_key_changes_with_each_field():
    base = onnx_cache_key("abc", 17, (1, 3, 64, 64))
    assert base == onnx_cache_key("abc", 17, [1, 3, 64, 64])
    assert len({base, onnx_cache_key("abd", 17, (1, 3, 64, 64)), onnx_cache_key("abc", 18, (1, 3, 64, 64)),
                onnx_cache_key("abc", 17, (1, 3, 128, 128))}) == 4


def test_tensorrt_cache_key_changes_with_each_field():
    profile = {"image": [(1, 3, 256, 256), (1, 3, 256, 256), (1, 3, 256, 256)]}
    base = dict(model_hash="f00d", tensorrt_version="10.3.0", compute_capability=(8, 9), precision="fp16",
                shape_profile=profile)
    key = tensorrt_cache_key(**base)
    assert key == tensorrt_cache_key(**{**base, "compute_capability": [8, 9]})  # stable, type-insensitive
    variants = {
        "model_hash": "f00e",
        "tensorrt_version": "10.4.0",
        "compute_capability": (9, 0),
        "precision": "fp32",
        "shape_profile": {"image": [(1, 3, 256, 256), (1, 3, 256, 256), (4, 3, 256, 256)]},
    }
    keys = {field: tensorrt_cache_key(**{**base, field: value}) for field, value in variants.items()}
    assert all(k != key for k in keys.values()), keys
    assert len(set(keys.values())) == len(keys)
    renamed = {"pixels": profile["image"]}
    assert tensorrt_cache_key(**{**base, "shape_profile": renamed}) != key


def test_tensorrt_builds_once_and_matches_torch(tiny_model, tmp_path):
    reason = tensorrt_unavailable_reason("cuda")
    if reason is not None:
        pytest.skip(f"TensorRT backend not testable here: {reason}")
    loaded = tiny_model("dgcl")
    loaded.model.to("cuda")
    loaded.device = torch.device("cuda")
    adapter = get_adapter(loaded)
    onnx_path = ensure_onnx(adapter, tmp_path)
    backend = TensorRTBackend(adapter, onnx_path, tmp_path, precision="fp32", max_batch=2)
    assert backend.plan_path.is_file() and backend.plan_path.with_suffix(".json").is_file()
    mtime = os.stat(backend.plan_path).st_mtime_ns
    diffs = export_module_parity(adapter, backend, batch=2)
    assert max(diffs.values()) < 1e-3, diffs
    again = TensorRTBackend(adapter, onnx_path, tmp_path, precision="fp32", max_batch=2)
    assert again.plan_path == backend.plan_path and os.stat(again.plan_path).st_mtime_ns == mtime
    fp16 = TensorRTBackend(adapter, onnx_path, tmp_path, precision="fp16", max_batch=2)
    assert fp16.plan_path != backend.plan_path


def test_an_unavailable_backend_fails_clearly_or_falls_back_once(tiny_model, tmp_path, caplog, multi_sample):
    if tensorrt_unavailable_reason("cpu") is None:
        pytest.skip("TensorRT is available here")
    with pytest.raises(BackendUnavailableError, match="tensorrt"):
        Pipeline(tiny_model("single_stage"), backend="tensorrt", cache_dir=tmp_path)
    assert not (tmp_path / "onnx").exists()  # nothing exported for a backend that cannot run
    with caplog.at_level(logging.WARNING, logger="hand_recon_core.inference"):
        pipe = Pipeline(tiny_model("single_stage"), backend="tensorrt", allow_fallback=True, cache_dir=tmp_path)
        pipe(multi_sample["image"], multi_sample["K"])
        pipe(multi_sample["image"], multi_sample["K"])
    assert pipe.backend == "torch" and pipe.describe()["requested_backend"] == "tensorrt"
    assert sum("FALLING BACK" in r.getMessage() for r in caplog.records) == 1


def test_a_method_without_adapter_runs_only_on_torch(tiny_model, tmp_path):
    stub = tiny_model("stub_refiner")
    with pytest.raises(BackendUnavailableError, match="no network adapter"):
        Pipeline(tiny_model("single_stage"), stub, backend="onnxruntime", cache_dir=tmp_path)


def test_unknown_backend_and_precision_are_rejected(tiny_model):
    with pytest.raises(ValueError, match="unknown backend"):
        Pipeline(tiny_model("single_stage"), backend="openvino")
    with pytest.raises(ValueError, match="precision"):
        Pipeline(tiny_model("single_stage"), precision="int8")
    with pytest.raises(ValueError, match="cuda"):
        Pipeline(tiny_model("single_stage"), precision="fp16")


@pytest.mark.slow
def test_torch_compile_matches_eager(tiny_model):
    loaded = tiny_model("dgcl")
    adapter = get_adapter(loaded)
    try:
        backend = TorchCompileBackend(adapter, batch=1)
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    diffs = export_module_parity(adapter, backend, batch=1)
    assert max(diffs.values()) < 1e-4, diffs


@pytest.mark.parametrize("name", ["dir", "dgcl"])
def test_several_pairs_per_call_match_between_backends(tiny_model, tmp_path, interacting_sample, name):
    """Two pairs in one refiner call: batched in torch, split for DIR's fixed-batch ONNX graph."""
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    from hand_recon_core.inference.backends import ModelRunner
    from hand_recon_core.inference.frame import HandResult
    from hand_recon_core.inference.pairing import PairRefiner, find_pairs

    s = interacting_sample
    hands = []
    for shift in (0.0, 0.4):  # a second pair 0.4 m to the right (its 2D labels 30 px to the right)
        for i in np.argsort(s["handedness"], kind="stable"):
            move, px = np.array([shift, 0.0, 0.0], np.float32), np.float32(75 * shift)
            hands.append(HandResult(slot=len(hands), handedness=int(s["handedness"][i]), score=0.9,
                                    bbox=s["bbox"][i] + px, keypoints_2d=s["keypoints_2d"][i] + px,
                                    joints_3d=s["joints_3d"][i] + move, vertices_3d=s["vertices_3d"][i] + move))
    pairs = find_pairs(hands)
    assert pairs == [(0, 1), (2, 3)]
    outs = {}
    for backend in ("torch", "onnxruntime"):
        runner = ModelRunner(tiny_model(name), BackendOptions(name=backend, cache_dir=str(tmp_path)), batch=4)
        outs[backend] = PairRefiner(runner).refine(s["image"], s["K"], hands, pairs)
    for a, b in zip(outs["torch"], outs["onnxruntime"]):
        assert a.refined and b.refined and a.partner_slot == b.partner_slot
        assert np.abs(a.vertices_3d - b.vertices_3d).max() < ORT_TOLERANCE
    assert not np.allclose(outs["torch"][0].vertices_3d, outs["torch"][2].vertices_3d)  # distinct pairs
