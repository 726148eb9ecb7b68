"""Tests for the restricted (numpy-only) unpickler."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from hand_recon_core.data.datasets._safe_pickle import safe_load_pickle, safe_loads_pickle


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_loads_numpy_arrays_scalars_and_plain_containers(protocol):
    data = {
        "xyz": np.arange(126, dtype=np.float32).reshape(42, 3),
        "K": np.eye(3),
        "ids": np.array([1, 2], dtype=np.int64),
        "scale": np.float64(0.5),
        "name": "021_bleach_cleanser",
        "rot": None,
        "nested": [(1, 2.5), {"a": np.zeros(2, dtype=np.uint8)}],
    }
    out = safe_loads_pickle(pickle.dumps(data, protocol=protocol))
    assert out["xyz"].dtype == np.float32 and np.array_equal(out["xyz"], data["xyz"])
    assert np.array_equal(out["K"], np.eye(3)) and out["ids"].tolist() == [1, 2]
    assert out["scale"] == 0.5 and out["name"] == "021_bleach_cleanser" and out["rot"] is None
    assert out["nested"][0] == (1, 2.5) and out["nested"][1]["a"].dtype == np.uint8


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running_anything(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"meta": _RunsACommand(marker)}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load global (posix|nt|os)\.system"):
        safe_loads_pickle(payload)
    assert not marker.exists()


@pytest.mark.parametrize("obj", [eval, np.load, _RunsACommand])
def test_other_globals_are_refused(obj):
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        safe_loads_pickle(pickle.dumps(obj))


def test_file_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        safe_load_pickle(tmp_path / "missing.pkl")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(_RunsACommand(tmp_path / "x")))
    with pytest.raises(pickle.UnpicklingError, match="bad.pkl"):
        safe_load_pickle(bad)
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps({"v": np.ones(3)}, protocol=2))
    assert safe_load_pickle(good)["v"].tolist() == [1.0, 1.0, 1.0]
