"""The method registry (hand_recon_core.models.registry) and the dataset dispatcher (hand_recon_core.data.build)."""

from __future__ import annotations

import sys

import pytest

from hand_recon_core.data import build as data_build
from hand_recon_core.models import registry


def test_toy_method_is_registered_and_created_with_its_kwargs(toy_plugin):
    cls = registry.get_method("toy")
    assert cls.method_name == "toy" and isinstance(cls(), registry.MethodProtocol)
    method = registry.create_method("toy", {"hidden": 4, "dropout": 0.1})
    assert method.hidden == 4 and method.dropout == 0.1


def test_invalid_kwargs_name_the_method_and_its_signature(toy_plugin):
    with pytest.raises(registry.MethodKwargsError, match="method 'toy'.*'widht'.*hidden"):
        registry.create_method("toy", {"widht": 3})


def test_unknown_method_lists_the_registered_ones(toy_plugin):
    with pytest.raises(registry.UnknownMethodError, match="unknown method 'nope'.*'toy'"):
        registry.get_method("nope")


def test_registration_rules():
    with pytest.raises(TypeError, match="lacks.*predict"):
        @registry.register_method("incomplete")
        class Incomplete:
            def build(self, cfg, hand_model_id): ...
            def loss(self, out, batch): ...
            def encode_targets(self, s): ...
            def collate(self, s): ...

    with pytest.raises(ValueError, match="already registered"):
        @registry.register_method("toy")
        class Other:
            def build(self, cfg, hand_model_id): ...
            def loss(self, out, batch): ...
            def encode_targets(self, s): ...
            def collate(self, s): ...
            def predict(self, out, batch): ...


def test_plugins_load_once_by_path(toy_plugin):
    before = set(sys.modules)
    registry.import_plugins([toy_plugin])
    assert set(sys.modules) == before
    with pytest.raises(FileNotFoundError, match="no such file"):
        registry.import_plugins(["/nonexistent/plugin.py"])


def test_dataset_specs_parse():
    assert data_build.parse_dataset_spec("freihand:root=/data/f,split=evaluation,count=5") == {
        "name": "freihand", "kwargs": {"root": "/data/f", "split": "evaluation", "count": 5}}
    assert data_build.parse_dataset_spec("synthetic-single") == {"name": "synthetic-single", "kwargs": {}}
    with pytest.raises(ValueError, match="not key=value"):
        data_build.parse_dataset_spec("x:novalue")


def test_dataset_spec_from_yaml(tmp_path):
    path = tmp_path / "val.yaml"
    path.write_text("name: toy-images\nkwargs: {count: 3}\n")
    assert data_build.parse_dataset_spec(str(path)) == {"name": "toy-images", "kwargs": {"count": 3}}


def test_build_dispatches_by_name(toy_plugin, monkeypatch):
    assert len(data_build.build_dataset("toy-images:count=5")) == 5
    assert len(data_build.build_dataset({"name": "toy-images", "kwargs": {"count": 2}})) == 2
    with pytest.raises(KeyError, match="unknown dataset 'nope'.*freihand.*toy-images"):
        data_build.build_dataset("nope")
    with pytest.raises(ValueError, match=r"needs kwargs \['root', 'split'\]"):
        data_build.build_dataset("freihand")
    with pytest.raises(ValueError, match="reserved"):
        data_build.register_dataset("synthetic-x", lambda: None)


def test_synthetic_names_go_to_the_synthetic_engine(monkeypatch):
    import types

    calls = []
    fake = types.ModuleType("hand_recon_core.data.synthetic")
    fake.build_synthetic_dataset = lambda family, **kw: calls.append((family, kw)) or [1, 2]
    monkeypatch.setitem(sys.modules, "hand_recon_core.data.synthetic", fake)
    assert data_build.build_dataset("synthetic-two-hand:count=2") == [1, 2]
    assert calls == [("two-hand", {"count": 2})]
    monkeypatch.setitem(sys.modules, "hand_recon_core.data.synthetic", None)  # import fails
    with pytest.raises(ModuleNotFoundError, match="synthetic data engine"):
        data_build.build_dataset("synthetic-two-hand")
