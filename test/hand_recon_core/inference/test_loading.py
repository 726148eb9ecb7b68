"""Tests for hand_recon_core.inference.loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hand_recon_core.inference.loading import build_random_model, load_model, resolve_device

ROOT = Path(__file__).resolve().parents[3]


def test_random_models_are_seeded_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    kw = {"input_size": 64, "fuse_channels": 16, "head_channels": 16}
    a = build_random_model("single_stage", method_kwargs=kw, backbone="resnet18", seed=3)
    b = build_random_model("single_stage", method_kwargs=kw, backbone="resnet18", seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert a.random_weights and a.source == "random" and not a.model.training
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.hand_model_id.startswith("open")


def test_an_experiment_yaml_names_the_method_and_its_training_only_options_are_dropped():
    cfg = ROOT / "config" / "single_stage_lite.yaml"  # its init_weights points at a training run directory
    loaded = build_random_model(str(cfg), method_kwargs={"input_size": 64, "fuse_channels": 16,
                                                         "head_channels": 16})
    assert loaded.method_name == "single_stage" and loaded.cfg.method.kwargs["init_weights"] is None
    assert loaded.model.input_size == 64


def test_load_model_round_trip_and_errors(tiny_model, write_checkpoint, tmp_path):
    saved = tiny_model("dgcl")
    path = write_checkpoint(tmp_path / "ref.pt", saved)
    loaded = load_model(path)
    assert loaded.method_name == "dgcl" and not loaded.random_weights and loaded.source == str(path)
    assert loaded.hash == saved.hash
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")
