"""Node parameters: specs, validation, and the YAML file / README table that document them (no ROS needed)."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest
import yaml

from hand_recon_ros.params import (
    PARAMS_BY_NAME,
    RECON_PARAMS,
    ReconConfig,
    defaults,
    hand_model_spec,
    validate_config,
    validate_value,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_spec_has_a_typed_config_field_and_valid_default():
    fields = {f.name for f in dataclasses.fields(ReconConfig)}
    assert fields == {p.attr for p in RECON_PARAMS}
    cfg = ReconConfig.from_values({})
    for p in RECON_PARAMS:
        assert validate_value(p.name, p.default) is None, p.name
        assert getattr(cfg, p.attr) == p.default and type(getattr(cfg, p.attr)) is p.type
        assert p.applies in ("live", "activate", "configure", "start")
        assert (p.min_value is None) == (p.max_value is None), p.name
        assert p.description


@pytest.mark.parametrize("name, value, reason", [
    ("score_threshold", 1.5, "above the maximum"),
    ("score_threshold", -0.1, "below the minimum"),
    ("score_threshold", math.nan, "finite"),
    ("score_threshold", "high", "expected float"),
    ("max_hands", 0, "below the minimum"),
    ("max_hands", 2.0, "expected int"),
    ("publish_joint_frames", 1, "expected bool"),
    ("model.backend", "tflite", "not one of"),
    ("model.refiner", "acr", "not one of"),
    ("model.device", "gpu", "not cpu, cuda"),
    ("frame_prefix", "hand/", "letters, digits and underscores"),
    ("qos.reliability", "sometimes", "not one of"),
    ("no_such_parameter", 1, "unknown parameter"),
])
def test_bad_values_are_refused_with_the_reason(name, value, reason):
    err = validate_value(name, value)
    assert err is not None and reason in err and err.startswith(name)


def test_good_values_pass():
    assert validate_value("score_threshold", 1) is None  # ints are fine for floats
    assert validate_value("model.device", "cuda:1") is None
    assert validate_value("model.device", "auto") is None
    assert validate_value("model.backend", "tensorrt") is None
    assert validate_value("frame_prefix", "left_cam_") is None


def test_inconsistent_combinations_are_refused():
    v = defaults()
    assert validate_config(v) == []
    assert any("tensorrt" in e for e in validate_config({**v, "model.backend": "tensorrt"}))
    assert any("refiner_checkpoint" in e for e in validate_config({**v, "model.refiner_checkpoint": "r.pt"}))
    assert any("needs tracking" in e for e in validate_config({**v, "tracking.enabled": False}))
    assert validate_config({**v, "tracking.enabled": False, "smoothing.enabled": False}) == []


def test_files_are_checked_at_configure(tmp_path, monkeypatch):
    v = defaults()
    monkeypatch.delenv("HAND_RECON_MANO_DIR", raising=False)
    errors = validate_config({**v, "model.checkpoint": str(tmp_path / "missing.pt"), "model.hand_model": "mano"},
                             check_files=True)
    assert any("no such file" in e for e in errors) and any("mano_dir" in e for e in errors)
    (tmp_path / "det.pt").write_bytes(b"x")
    assert validate_config({**v, "model.checkpoint": str(tmp_path / "det.pt")}, check_files=True) == []


def test_config_replace_validates_and_keeps_the_old_on_error():
    cfg = ReconConfig.from_values({})
    new = cfg.replace({"max_hands": 2, "smoothing.beta": 3})
    assert new.max_hands == 2 and new.smoothing_beta == 3.0 and cfg.max_hands == 10
    with pytest.raises(ValueError, match="max_hands"):
        cfg.replace({"max_hands": -1})


def test_hand_model_spec():
    cfg = ReconConfig.from_values({})
    assert hand_model_spec(cfg) is None
    assert hand_model_spec(cfg.replace({"model.hand_model": "open"})) == "open"
    assert hand_model_spec(cfg.replace({"model.hand_model": "mano", "model.mano_dir": "/m"})) == "/m"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def test_yaml_file_lists_every_parameter_with_its_default():
    data = yaml.safe_load((ROOT / "config" / "hand_recon.yaml").read_text())
    params = _flatten(data["/**"]["ros__parameters"])
    assert set(params) == set(PARAMS_BY_NAME)
    for name, value in params.items():
        assert value == PARAMS_BY_NAME[name].default, name


def test_readme_parameter_table_lists_every_parameter():
    readme = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_.]+)` \|", readme, flags=re.M))
    assert set(PARAMS_BY_NAME) <= rows, set(PARAMS_BY_NAME) - rows


def test_model_method_uses_its_packaged_default_or_random_weights(monkeypatch):
    """``model.method`` without a checkpoint: the method's packaged default when shipped, else random weights."""
    from hand_recon_core.inference import pipeline as pipeline_mod
    from hand_recon_ros import recon_node

    calls = []
    monkeypatch.setattr(pipeline_mod.Pipeline, "default", classmethod(lambda cls, **kw: calls.append(("default", kw))))
    monkeypatch.setattr(pipeline_mod.Pipeline, "from_config",
                        classmethod(lambda cls, method, hand_model, **kw: calls.append(("random", method))))
    monkeypatch.setattr(pipeline_mod, "packaged_default_exists", lambda name: name == "acr")
    recon_node.build_pipeline(ReconConfig.from_values({"model.method": "acr"}))
    recon_node.build_pipeline(ReconConfig.from_values({"model.method": "single_stage"}))
    recon_node.build_pipeline(ReconConfig.from_values({}))
    assert calls[0][0] == "default" and calls[0][1]["detector"] == "acr"
    assert calls[1] == ("random", "single_stage")
    assert calls[2][0] == "default" and "detector" not in calls[2][1]
