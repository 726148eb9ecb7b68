"""Tests of the restricted MANO unpickler and the official-file loader (fake files written by the tests)."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hand_recon_core.hand_model.loader import load_hand_model
from hand_recon_core.hand_model.mano_pickle import (
    ChumpyStandIn,
    UnsafePickleError,
    load_mano_pickle,
    safe_load_pickle,
)

from .conftest import dump_py2_pickle, fake_mano_dict


def test_fake_file_references_official_module_paths(fake_mano_dir):
    blob = (fake_mano_dir / "MANO_RIGHT.pkl").read_bytes()
    assert b"chumpy.ch\nCh\n" in blob
    assert b"numpy.core.multiarray\n_reconstruct\n" in blob
    assert b"scipy.sparse.csc\ncsc_matrix\n" in blob
    with pytest.raises(UnicodeDecodeError):  # Python 2 byte strings need encoding="latin1"
        pickle.loads(blob.replace(b"chumpy.ch\nCh\n", b"builtins\nobject\n"))


def test_safe_load_extracts_chumpy_and_sparse(fake_mano_dir):
    raw = safe_load_pickle(fake_mano_dir / "MANO_RIGHT.pkl")
    ref = fake_mano_dict(seed=1, side="right")
    assert isinstance(raw["shapedirs"], ChumpyStandIn)
    np.testing.assert_array_equal(raw["shapedirs"].value(), ref["shapedirs"].x)
    np.testing.assert_array_equal(raw["J_regressor"].value().toarray(), ref["J_regressor"].toarray())
    np.testing.assert_array_equal(raw["posedirs"], ref["posedirs"])
    assert raw["bs_style"] == "lbs"


def test_load_right_and_left(fake_mano_dir):
    right = load_mano_pickle(fake_mano_dir / "MANO_RIGHT.pkl")
    left = load_mano_pickle(fake_mano_dir / "MANO_LEFT.pkl")
    assert right.side == "right" and left.side == "left"
    assert right.model_id.startswith("mano-right-") and len(right.model_id) == len("mano-right-") + 10
    assert sp.issparse(right.J_regressor)
    assert right.parents[0] == -1
    np.testing.assert_array_equal(right.tip_vertex_ids, [745, 317, 444, 556, 673])
    # Left-hand fix: the x component of the left file's shapedirs is negated, nothing else.
    ref = fake_mano_dict(seed=2, side="left")["shapedirs"].x
    np.testing.assert_array_equal(left.shapedirs[:, 0], -ref[:, 0])
    np.testing.assert_array_equal(left.shapedirs[:, 1:], ref[:, 1:])
    raw_left = load_mano_pickle(fake_mano_dir / "MANO_LEFT.pkl", fix_left_shapedirs=False)
    np.testing.assert_array_equal(raw_left.shapedirs, ref)


def test_mano_files_run_through_the_layer(fake_mano_dir):
    ref = fake_mano_dict(seed=1, side="right")
    layer = load_hand_model(fake_mano_dir, side="right", flat_hand_mean=True, dtype=torch.float64)
    assert layer.num_vertices == 778 and layer.side == "right"
    betas = torch.randn(2, 10, dtype=torch.float64)
    out = layer(betas=betas)
    shaped = ref["v_template"][None] + np.einsum("vcl,bl->bvc", ref["shapedirs"].x, betas.numpy())
    np.testing.assert_allclose(out.vertices.numpy(), shaped, atol=1e-12)
    joints = np.einsum("jv,bvc->bjc", ref["J_regressor"].toarray(), shaped)
    np.testing.assert_allclose(out.joints[:, :16].numpy(), joints, atol=1e-12)
    posed = layer(global_orient=torch.randn(2, 3, dtype=torch.float64),
                  hand_pose=0.5 * torch.randn(2, 45, dtype=torch.float64), betas=betas)
    assert posed.vertices.shape == (2, 778, 3) and posed.joints.shape == (2, 21, 3)
    assert torch.isfinite(posed.vertices).all()
    # The file path itself works too, and asking for the wrong side is an error.
    assert load_hand_model(fake_mano_dir / "MANO_LEFT.pkl", side="left").side == "left"
    with pytest.raises(ValueError, match="left-hand file"):
        load_hand_model(fake_mano_dir / "MANO_LEFT.pkl", side="right")


def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    blob = pickle.dumps({"v_template": Evil()}, protocol=2)
    with pytest.raises(UnsafePickleError, match="system"):
        safe_load_pickle(blob)
    assert not marker.exists()


@pytest.mark.parametrize("target", [builtins.eval, subprocess.Popen, getattr])
def test_restricted_unpickler_refuses_other_globals(target):
    class Evil:
        def __reduce__(self):
            return (target, ("1",))

    blob = pickle.dumps([Evil()], protocol=2)
    with pytest.raises(UnsafePickleError, match=target.__name__):
        safe_load_pickle(blob)


def test_refusal_inside_a_chumpy_state():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo nope",))

    data = fake_mano_dict(seed=3)
    data["shapedirs"].x = Evil()
    with pytest.raises(UnsafePickleError):
        safe_load_pickle(dump_py2_pickle(data))


def test_numpy_core_and_numpy__core_paths_both_load():
    arr = np.arange(6.0).reshape(2, 3)
    blob = pickle.dumps(arr, protocol=2)
    for path in (b"numpy._core.multiarray", b"numpy.core.multiarray"):
        other = blob.replace(b"numpy._core.multiarray", path).replace(b"numpy.core.multiarray", path)
        np.testing.assert_array_equal(safe_load_pickle(other), arr)


def test_mano_env_variable(fake_mano_dir, monkeypatch):
    monkeypatch.delenv("HAND_RECON_MANO_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="HAND_RECON_MANO_DIR"):
        load_hand_model("mano")
    monkeypatch.setenv("HAND_RECON_MANO_DIR", str(fake_mano_dir / "missing"))
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_hand_model("mano")
    monkeypatch.setenv("HAND_RECON_MANO_DIR", str(fake_mano_dir))
    layer = load_hand_model("mano", side="left")
    assert layer.side == "left" and layer.model_id.startswith("mano-left-")


def test_stream_has_no_side_effects_on_sys_modules():
    import sys

    safe_load_pickle(io.BytesIO(dump_py2_pickle(fake_mano_dict())).getvalue())
    assert "chumpy" not in sys.modules
    _ = torch
