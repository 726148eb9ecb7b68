"""The training engine on the test-local toy method: learning, exact resume, safe loading, DDP."""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from hand_recon_core.training import checkpoint as ckpt_io
from hand_recon_core.training.config import config_to_dict
from hand_recon_core.training.engine import StopTraining, Trainer


class Killed(Exception):
    """Stands in for the process being killed."""


def _rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_loss_falls_on_the_toy_task(make_cfg):
    cfg = make_cfg(train={"max_steps": 40}, log={"every_steps": 4})
    Trainer(cfg).fit()
    rows = _rows(cfg.resolved_output_dir() / "logs" / "train.csv")
    losses = [float(r["loss"]) for r in rows]
    assert len(losses) == 10
    assert losses[-1] < 0.3 * losses[0]
    assert {"mse", "abs", "lr", "step", "epoch"} <= set(rows[0])
    ckpts = ckpt_io.list_checkpoints(cfg.resolved_output_dir() / "checkpoints")
    assert [p.name for p in ckpts] == ["step_00000040.pt"]  # the final checkpoint


RESUME_CASES = {
    "cosine+dropout+clip": dict(method={"kwargs": {"hidden": 8, "dropout": 0.3}},
                                schedule={"name": "cosine", "warmup_steps": 4, "min_lr": 1e-3},
                                train={"max_steps": 24, "grad_clip_norm": 0.5}),
    "plateau(train/loss)+val+workers": dict(
        optim={"name": "adamw", "lr": 0.05, "weight_decay": 0.01},
        schedule={"name": "plateau", "monitor": "train/loss", "patience": 1, "threshold": 1.0},
        data={"val": {"name": "toy-images", "kwargs": {"count": 8, "seed": 5}}, "num_workers": 1},
        train={"max_steps": 24, "val_every_steps": 12}),
    "step+bf16": dict(optim={"name": "sgd", "lr": 0.1}, schedule={"name": "step", "milestones": [1, 2]},
                      train={"max_steps": 24, "precision": "bf16"}),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_after_a_kill_reproduces_the_uninterrupted_run(make_cfg, case):
    sections = RESUME_CASES[case]
    n = 12  # 8 batches per epoch: the checkpoint at step 12 sits in the middle of epoch 1
    straight = make_cfg("straight", **sections)
    ref = Trainer(straight)
    ref.fit()

    cfg = make_cfg("killed", checkpoint={"every_steps": n}, **sections)

    def kill(trainer):
        if trainer.step == n + 3:  # three steps after the checkpoint: their work is lost
            raise Killed

    with pytest.raises(Killed):
        Trainer(cfg, hooks=[kill]).fit()
    assert ckpt_io.find_latest_checkpoint(cfg.resolved_output_dir() / "checkpoints").name == f"step_{n:08d}.pt"
    resumed = Trainer(cfg, resume="auto")
    resumed.fit()

    assert resumed.step == ref.step == 24
    for key, value in ref.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    ref_opt, res_opt = ref.optimizer.state_dict(), resumed.optimizer.state_dict()
    assert ref_opt["param_groups"] == res_opt["param_groups"]
    for pid, state in ref_opt["state"].items():
        for k, v in state.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(res_opt["state"][pid][k])), (pid, k)
    assert ref.schedule.state_dict() == resumed.schedule.state_dict()
    if case.startswith("plateau"):
        assert resumed.schedule.num_reductions >= 2  # the plateau state crossed the checkpoint
    steps = [int(r["step"]) for r in _rows(cfg.resolved_output_dir() / "logs" / "train.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == 24  # rows of the lost steps were dropped
    assert _rows(cfg.resolved_output_dir() / "logs" / "train.csv") == _rows(
        straight.resolved_output_dir() / "logs" / "train.csv")


def test_checkpoint_contents_load_weights_only(make_cfg):
    cfg = make_cfg(train={"max_steps": 8})
    Trainer(cfg).fit()
    path = cfg.resolved_output_dir() / "checkpoints" / "step_00000008.pt"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["method"] == "toy" and ckpt["hand_model"] == "open" and ckpt["step"] == 8
    assert ckpt["epoch"] == 1 and ckpt["batch_in_epoch"] == 0  # the epoch is complete
    assert ckpt["config"] == config_to_dict(cfg)
    assert set(ckpt["rng"][0]) == {"python", "numpy", "torch", "cuda"}
    assert ckpt["code_version"]["package"]
    assert set(ckpt["scheduler"]) >= {"name", "base_lrs", "scale"}


def test_refuses_to_overwrite_a_run_without_resume(make_cfg):
    cfg = make_cfg(train={"max_steps": 4})
    Trainer(cfg).fit()
    with pytest.raises(FileExistsError, match="--resume auto"):
        Trainer(cfg).fit()


def test_stop_training_hook_ends_quietly(make_cfg):
    cfg = make_cfg(train={"max_steps": 20})

    def stop(trainer):
        if trainer.step == 3:
            raise StopTraining

    t = Trainer(cfg, hooks=[stop])
    t.fit()
    assert t.step == 3


@pytest.fixture
def trained(make_cfg):
    cfg = make_cfg("trained", train={"max_steps": 4})
    Trainer(cfg).fit()
    return cfg, cfg.resolved_output_dir() / "checkpoints" / "step_00000004.pt"


def test_resume_with_another_method_is_refused(trained, make_cfg):
    _, path = trained
    cfg = make_cfg("other", method={"name": "toy-wide"}, train={"max_steps": 8})
    with pytest.raises(ckpt_io.MethodMismatchError, match="'toy'.*'toy-wide'"):
        Trainer(cfg, resume=path).fit()


def test_unregistered_method_in_a_checkpoint_is_refused(trained, tmp_path):
    _, path = trained
    ckpt = torch.load(path, weights_only=True)
    ckpt["method"] = "no-such-method"
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)
    from hand_recon_core.training.evaluation import load_trained

    with pytest.raises(ckpt_io.MethodMismatchError, match="unknown method 'no-such-method'.*toy"):
        load_trained(bad)


def test_shape_mismatch_lists_the_keys(trained, make_cfg):
    _, path = trained
    cfg = make_cfg("wider", method={"kwargs": {"hidden": 16}}, train={"max_steps": 8})
    with pytest.raises(ckpt_io.CheckpointMismatchError) as err:
        Trainer(cfg, resume=path).fit()
    text = str(err.value)
    for key in ("conv.weight", "conv.bias", "fc.weight"):
        assert key in text
    assert "fc.bias" not in text  # same shape (3,)


def test_other_hand_model_is_refused(trained, make_cfg):
    _, path = trained
    cfg = make_cfg("mano", hand_model="mano", train={"max_steps": 8})
    with pytest.raises(ckpt_io.HandModelMismatchError, match="'open'.*'mano'"):
        Trainer(cfg, resume=path).fit()
    from hand_recon_core.training.evaluation import load_trained

    with pytest.raises(ckpt_io.HandModelMismatchError):
        load_trained(path, hand_model="mano")


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "obj": argparse.Namespace(x=1)}, path)  # any non-allowlisted class
    with pytest.raises(ckpt_io.CheckpointError, match="weights_only"):
        ckpt_io.load_checkpoint(path)
    torch.save({"format": 1}, path)
    with pytest.raises(ckpt_io.CheckpointError, match="not a hand_recon training checkpoint"):
        ckpt_io.load_checkpoint(path)


def test_keep_last_prunes_old_checkpoints(make_cfg):
    cfg = make_cfg(train={"max_steps": 20}, checkpoint={"every_steps": 4, "keep_last": 2})
    Trainer(cfg).fit()
    names = [p.name for p in ckpt_io.list_checkpoints(cfg.resolved_output_dir() / "checkpoints")]
    assert names == ["step_00000016.pt", "step_00000020.pt"]


def test_two_process_ddp_run_on_cpu(make_cfg, tmp_path):
    cfg = make_cfg("ddp", train={"max_steps": 6}, checkpoint={"every_steps": 3},
                   data={"val": {"name": "toy-images", "kwargs": {"count": 6, "seed": 2}}})
    config_file = tmp_path / "ddp.yaml"
    config_file.write_text(yaml.safe_dump(config_to_dict(cfg)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "hand_recon_core.cli.main", "train", "--config", str(config_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]  # torchrun: every rank exited 0
    assert proc.stderr.count("[rank 0] INFO hand_recon_core.training.engine: finished") == 1
    out = cfg.resolved_output_dir()
    assert [p.name for p in ckpt_io.list_checkpoints(out / "checkpoints")] == ["step_00000003.pt",
                                                                              "step_00000006.pt"]
    ckpt = ckpt_io.load_checkpoint(out / "checkpoints" / "step_00000006.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])  # per-rank RNG states
    steps = [int(r["step"]) for r in _rows(out / "logs" / "train.csv")]
    assert steps == [4, 6]  # logged once (rank 0), not twice
    val = _rows(out / "logs" / "val.csv")
    assert [int(r["step"]) for r in val] == [4, 6]  # end of epoch 0 (64 / 2 ranks / 8) and the final weights
    assert all(float(r["val/loss"]) > 0 for r in val)
    assert not list(out.glob("checkpoints/.*tmp*"))


@pytest.mark.slow
@pytest.mark.parametrize("config", ["dgcl_smoke.yaml", "single_stage_smoke.yaml"])
def test_two_process_ddp_runs_a_method_smoke_config(tmp_path, config):
    """torchrun, 2 gloo processes, a real method's smoke experiment (HandDGCL: momentum encoder and MoCo queue;
    single-stage: a loss with terms some batches do not use)."""
    root = Path(__file__).resolve().parents[3]
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "hand_recon_core.cli.main", "train", "--config", str(root / "config" / config), "--out", str(out),
           "train.max_steps=4", "checkpoint.every_steps=4", "log.every_steps=2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env, cwd=root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    ckpt = ckpt_io.load_checkpoint(out / "checkpoints" / "step_00000004.pt")
    assert ckpt["world_size"] == 2 and ckpt["step"] == 4
    rows = _rows(out / "logs" / "train.csv")
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert all(float(r["loss"]) > 0 for r in rows)


def test_packed_checkpoint_drops_the_training_initialisation(tmp_path):
    """A package holds every weight: its config no longer points at the run it was initialised from."""
    payload = {"format": ckpt_io.CHECKPOINT_FORMAT, "method": "toy", "hand_model": "open", "step": 3, "epoch": 0,
               "code_version": {}, "model": {"w": torch.ones(2)},
               "config": {"method": {"name": "toy", "kwargs": {"init_weights": "runs/stage1", "depth": 2}}}}
    src = ckpt_io.save_checkpoint(tmp_path / "src.pt", payload)
    packed = ckpt_io.load_checkpoint(ckpt_io.pack_checkpoint(src, tmp_path / "pkg.pt"))
    assert packed["config"]["method"]["kwargs"] == {"init_weights": None, "depth": 2}
    assert packed["model"]["w"].dtype == torch.float16
    assert ckpt_io.load_checkpoint(src)["config"]["method"]["kwargs"]["init_weights"] == "runs/stage1"
