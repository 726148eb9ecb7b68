"""YAML configs, dotted overrides and validation."""

from __future__ import annotations

import pytest

from hand_recon_core.training.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
)

YAML = """
experiment: demo
method: {name: toy, kwargs: {hidden: 4}}
data:
  train: {name: synthetic-single, kwargs: {count: 1000}}
  batch_size: 16
optim: {name: adamw, lr: 3.0e-4}
schedule: {name: cosine, warmup_steps: 100}
train: {epochs: 50, precision: bf16, grad_clip_norm: 1.0}
"""


@pytest.fixture
def yaml_file(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(YAML)
    return path


def test_yaml_is_parsed_into_typed_dataclasses(yaml_file):
    cfg = load_config(yaml_file)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.optim.name == "adamw" and cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.data.train.kwargs == {"count": 1000}
    assert cfg.data.val is None and cfg.hand_model == "open" and cfg.backbone.pretrained is None
    assert cfg.train.precision == "bf16" and cfg.train.epochs == 50 and cfg.train.max_steps is None
    assert cfg.resolved_output_dir().as_posix() == "runs/demo"


def test_overrides_are_typed_by_the_field(yaml_file):
    cfg = load_config(yaml_file, ["optim.lr=1e-4", "data.train.kwargs.count=64", "schedule.milestones=[30, 90]",
                                  "train.grad_clip_norm=null", "experiment=123", "train.epochs=3",
                                  "backbone.pretrained=/w/resnet50.pth", "log.tensorboard=false",
                                  "data.val.name=synthetic-single", "data.val.kwargs.seed=7",
                                  "data.train.kwargs.flags.mirror=true"])
    assert cfg.optim.lr == 1e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.data.train.kwargs == {"count": 64, "flags": {"mirror": True}}
    assert cfg.schedule.milestones == [30, 90]
    assert cfg.train.grad_clip_norm is None and cfg.train.epochs == 3
    assert cfg.experiment == "123"
    assert cfg.backbone.pretrained == "/w/resnet50.pth"
    assert cfg.log.tensorboard is False
    assert cfg.data.val.name == "synthetic-single" and cfg.data.val.kwargs == {"seed": 7}


@pytest.mark.parametrize("override, names", [
    ("optim.lrr=1", ["optim.lrr", "'lr'", "'weight_decay'"]),
    ("optimiser.lr=1", ["optimiser", "'optim'", "'schedule'"]),
    ("optim.lr.x=1", ["optim.lr", "no sub-key"]),
])
def test_unknown_override_key_names_the_key_and_the_valid_ones(yaml_file, override, names):
    with pytest.raises(ConfigError) as err:
        load_config(yaml_file, [override])
    for name in names:
        assert name in str(err.value)


def test_unknown_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(YAML + "train_extra: 1\n")
    with pytest.raises(ConfigError, match="unknown config key 'train_extra'.*'experiment'"):
        load_config(path)
    path.write_text(YAML.replace("grad_clip_norm", "grad_clip"))
    with pytest.raises(ConfigError, match="'train.grad_clip'.*'grad_clip_norm'"):
        load_config(path)


@pytest.mark.parametrize("override, match", [
    ("data.batch_size=abc", "'data.batch_size': expected an int"),
    ("data.batch_size=0", "'data.batch_size': must be > 0"),
    ("optim.name=rmsprop", "'optim.name'"),
    ("train.precision=fp8", "'train.precision'"),
    ("schedule.name=step", "'schedule.milestones'"),
    ("log.tensorboard=maybe", "expected a bool"),
    ("seed=null", "'seed': expected an int"),
    ("nokey", "key=value"),
])
def test_invalid_values_are_errors(yaml_file, override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(yaml_file, [override])


def test_epochs_or_max_steps_required(yaml_file):
    with pytest.raises(ConfigError, match="train.epochs or train.max_steps"):
        load_config(yaml_file, ["train.epochs=null"])


def test_base_files_are_merged(tmp_path):
    (tmp_path / "method.yaml").write_text("method: {name: toy, kwargs: {hidden: 4, dropout: 0.1}}\nseed: 3\n")
    exp = YAML.replace("method: {name: toy, kwargs: {hidden: 4}}", "method: {kwargs: {hidden: 16}}")
    (tmp_path / "exp.yaml").write_text("_base_: method.yaml\n" + exp)
    cfg = load_config(tmp_path / "exp.yaml")
    assert cfg.method.name == "toy" and cfg.method.kwargs == {"hidden": 16, "dropout": 0.1} and cfg.seed == 3


def test_round_trip_through_plain_dicts(yaml_file):
    cfg = load_config(yaml_file, ["data.val.name=x"])
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_a_whole_free_dict_can_be_overridden(yaml_file):
    cfg = load_config(yaml_file, ["method.kwargs={hidden: 2, dropout: 0.5}"])
    assert cfg.method.kwargs == {"hidden": 2, "dropout": 0.5}


def test_apply_overrides_does_not_mutate_its_input():
    data = {"optim": {"lr": 1.0}}
    out = apply_overrides(data, ["optim.lr=2"])
    assert data == {"optim": {"lr": 1.0}} and out["optim"]["lr"] == 2.0
