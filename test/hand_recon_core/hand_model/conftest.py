"""Shared fixtures of the hand-model tests: the open model and a writer of fake official MANO pickles."""

from __future__ import annotations

import io
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from hand_recon_core.hand_model.constants import MANO_PARENTS
from hand_recon_core.hand_model.loader import load_hand_model_data


@pytest.fixture(scope="session")
def open_right():
    """The packaged open model, right hand (HandModelData)."""
    return load_hand_model_data("open", "right")


class Py2StylePickler(pickle._Pickler):
    """Protocol-2 pickler that writes ``str`` and ``bytes`` as Python 2 byte strings (BINSTRING opcodes).

    Python 2's ``cPickle.dump(..., protocol=2)`` stores ``str`` objects (dict keys, numpy raw buffers) as
    SHORT_BINSTRING/BINSTRING, which Python 3 can only read with ``encoding="latin1"`` -- like the official MANO
    files.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        n = len(data)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + struct.pack("<B", n) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + data)
        self.memoize(obj)

    dispatch[str] = _save_py2_str
    dispatch[bytes] = _save_py2_str


class FakeCh:
    """Test stand-in for ``chumpy.ch.Ch``: pickles its ``__dict__`` like the real class (minus caches)."""

    def __init__(self, x):
        self.x = np.asarray(x, dtype=np.float64)
        self._dirty_vars = set()
        self._itr = None
        self._make_dense = False
        self._make_sparse = False
        self._depends_on_deps = {}

    def __getstate__(self):
        return dict(self.__dict__)


def _py2_module_paths(blob: bytes) -> bytes:
    """Rewrite module paths of globals to those found in the official (Python 2, numpy 1.x) files."""
    for new, old in ((b"numpy._core.multiarray", b"numpy.core.multiarray"),
                     (b"scipy.sparse._csc\n", b"scipy.sparse.csc\n")):
        blob = blob.replace(new, old)
    return blob


def fake_mano_dict(num_vertices: int = 778, seed: int = 0, side: str = "right") -> dict:
    """Random arrays with the structure of an official MANO pickle (chumpy shapedirs, CSC regressor)."""
    rng = np.random.default_rng(seed)
    v = num_vertices
    v_template = rng.normal(scale=0.03, size=(v, 3))
    # Put the "fingers" at lower x than the wrist so side inference by geometry also works.
    v_template[:, 0] -= np.linspace(0.0, 0.15, v) * (1 if side == "right" else -1)
    faces = rng.integers(0, v, size=(2 * v - 4, 3)).astype(np.uint32)
    reg = np.zeros((16, v))
    for j in range(16):
        idx = rng.choice(v, size=4, replace=False)
        reg[j, idx] = rng.dirichlet(np.ones(4))
    weights = rng.dirichlet(np.ones(16) * 0.3, size=v)
    kintree = np.array([[4294967295, *MANO_PARENTS[1:]], list(range(16))], dtype=np.int64)
    return {
        "v_template": v_template,
        "f": faces,
        "shapedirs": FakeCh(rng.normal(scale=1e-3, size=(v, 3, 10))),
        "posedirs": rng.normal(scale=1e-3, size=(v, 3, 135)),
        "J_regressor": sp.csc_matrix(reg),
        "weights": weights,
        "kintree_table": kintree,
        "hands_components": np.linalg.qr(rng.normal(size=(45, 45)))[0],
        "hands_mean": rng.normal(scale=0.1, size=45),
        "hands_coeffs": rng.normal(size=(5, 12)),
        "J": reg @ v_template,
        "bs_type": "lrotmin",
        "bs_style": "lbs",
    }


def dump_py2_pickle(obj) -> bytes:
    """Pickle ``obj`` the way the official files were written, with ``FakeCh`` seen as ``chumpy.ch.Ch``."""
    chumpy = types.ModuleType("chumpy")
    chumpy_ch = types.ModuleType("chumpy.ch")
    chumpy_ch.Ch = FakeCh
    chumpy.ch = chumpy_ch
    saved = (FakeCh.__module__, FakeCh.__qualname__, FakeCh.__name__)
    FakeCh.__module__, FakeCh.__qualname__, FakeCh.__name__ = "chumpy.ch", "Ch", "Ch"
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = chumpy, chumpy_ch
    try:
        buf = io.BytesIO()
        Py2StylePickler(buf, protocol=2).dump(obj)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
        FakeCh.__module__, FakeCh.__qualname__, FakeCh.__name__ = saved
    return _py2_module_paths(buf.getvalue())


@pytest.fixture()
def fake_mano_dir(tmp_path: Path) -> Path:
    """A folder with fake ``MANO_RIGHT.pkl`` and ``MANO_LEFT.pkl`` (random values, official structure)."""
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(dump_py2_pickle(fake_mano_dict(seed=1, side="right")))
    (tmp_path / "MANO_LEFT.pkl").write_bytes(dump_py2_pickle(fake_mano_dict(seed=2, side="left")))
    return tmp_path
