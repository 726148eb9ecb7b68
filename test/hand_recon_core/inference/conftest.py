"""Fixtures of the inference tests: tiny random-weight models, synthetic images, checkpoints, the stub refiner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hand_recon_core.models.registry import import_plugins

STUB_FILE = str(Path(__file__).resolve().parent / "stub_methods.py")

#: Tiny widths (64 px inputs, ResNet-18) so every model builds and runs in well under a second on one core.
TINY = {
    "single_stage": {"input_size": 64, "fuse_channels": 16, "head_channels": 16},
    "acr": {"input_size": 64, "feature_channels": 16, "head_channels": 16, "mlp_hidden": 32},
    "dir": {"num_stages": 2, "image_size": 64, "decoder_channels": 16, "joint_channels": 16, "mfp_channels": 8,
            "gcn_layers": 1, "transformer_layers": 1, "transformer_heads": 2, "head_hidden": 32},
    "dgcl": {"use_dgcl": False, "input_size": 64, "feature_dim": 16, "mlp_hidden": 32, "graph_channels": 8,
             "gcn_channels": [8, 8, 8]},
    "stub_refiner": {},
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The machine is shared: one intra-op thread keeps the small runs fast and steady."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def stub_plugin() -> str:
    """Registers ``stub_refiner`` (test/hand_recon_core/inference/stub_methods.py)."""
    import_plugins([STUB_FILE])
    return STUB_FILE


@pytest.fixture
def tiny_model(stub_plugin):
    """``tiny_model(name, seed=0, **kwargs)``: a randomly initialised tiny model (LoadedModel, CPU)."""
    from hand_recon_core.inference.loading import build_random_model

    def make(name: str, seed: int = 0, **kwargs):
        backbone = None if name == "stub_refiner" else "resnet18"
        return build_random_model(name, "open", "cpu", method_kwargs={**TINY[name], **kwargs}, backbone=backbone,
                                  seed=seed)

    return make


@pytest.fixture(scope="session")
def interacting_sample() -> dict:
    """A synthetic two-hand scene (128 x 128, one right and one left hand in contact), ground truth included."""
    from hand_recon_core.data.synthetic import generate_sample

    return generate_sample("interacting", 0, seed=0, size=128)


@pytest.fixture(scope="session")
def multi_sample() -> dict:
    """A synthetic 96 x 128 (H x W) multi-hand scene with 2 hands."""
    from hand_recon_core.data.synthetic import generate_sample

    s = generate_sample("multi", 0, seed=0, size=128, num_hands=(2, 2), extent_range=(0.3, 0.5))
    s = dict(s)
    s["image"] = np.ascontiguousarray(s["image"][16:112])  # non-square: exercises the letterbox and default K
    return s


@pytest.fixture
def write_checkpoint():
    """``write_checkpoint(path, loaded)``: a training-format checkpoint of a LoadedModel's weights and config."""
    from hand_recon_core.training import checkpoint as ckpt_io
    from hand_recon_core.training.config import config_to_dict

    def write(path: Path, loaded) -> Path:
        cfg = loaded.cfg
        cfg.experiment = cfg.experiment or "test"
        cfg.data.train.name = cfg.data.train.name or "synthetic-multi"
        cfg.train.max_steps = cfg.train.max_steps or 1
        payload = {"format": ckpt_io.CHECKPOINT_FORMAT, "method": loaded.method_name, "hand_model": cfg.hand_model,
                   "hand_model_id": ckpt_io.hand_model_identity(cfg.hand_model), "config": config_to_dict(cfg),
                   "model": loaded.model.state_dict(), "optimizer": {}, "scheduler": {}, "scaler": {}, "step": 1,
                   "epoch": 0, "batch_in_epoch": 0, "rng": [], "world_size": 1,
                   "code_version": ckpt_io.code_version(), "metrics": {}}
        return ckpt_io.save_checkpoint(path, payload)

    return write


def perturb_heads(loaded, seed: int = 0, std: float = 0.05) -> None:
    """Give a random single-stage network non-degenerate heads (their last layers start near zero)."""
    g = torch.Generator().manual_seed(seed)
    net = loaded.model
    with torch.no_grad():
        for head in (net.center_head, net.handedness_head, net.param_head):
            head.out.weight.copy_(torch.randn(head.out.weight.shape, generator=g) * std)


@pytest.fixture
def perturb():
    return perturb_heads
