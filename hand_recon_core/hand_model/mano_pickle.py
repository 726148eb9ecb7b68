"""Load official MANO ``.pkl`` files without executing arbitrary pickle code and without chumpy.

The official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` were pickled under Python 2. They contain numpy arrays, a
scipy CSC sparse matrix (``J_regressor``), plain Python values, and a chumpy ``Ch`` object (``shapedirs``)
whose array is its ``x`` attribute. :class:`RestrictedUnpickler` admits only the globals such files need:

* numpy array/dtype/scalar reconstruction (``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``,
  ``numpy.dtype``, ``numpy.core.multiarray.scalar``; the ``numpy._core`` spellings of numpy >= 2 as well),
* scipy sparse matrix classes, which are mapped to a local stand-in that only records their state,
* chumpy ``Ch``-family classes, mapped to a local stand-in that only records their state (chumpy is neither
  imported nor required),
* a handful of harmless builtins used by Python 2 pickles of such objects (``set``, ``frozenset``, ``object``,
  ``copy_reg._reconstructor`` whose class argument must itself be admitted, ``_codecs.encode``).

Every other global (``os.system``, ``builtins.eval``, ``subprocess.Popen`` ...) raises
:class:`UnsafePickleError` naming it, before anything is called. The loaded dict is then converted to
:class:`~hand_recon_core.hand_model.model_data.HandModelData`.

Left-hand fix: the official left file's ``shapedirs`` has the wrong sign on its x component (a known issue of
the released file, corrected the same way by smplx and others), so :func:`load_mano_pickle` negates
``shapedirs[:, 0, :]`` for the left hand. Pass ``fix_left_shapedirs=False`` to keep the file's values.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from hand_recon_core.hand_model.constants import (
    MANO_PARENTS,
    MANO_TIP_CONVENTION,
    MANO_TIP_VERTEX_IDS,
    NUM_HAND_POSE,
    check_side,
)
from hand_recon_core.hand_model.model_data import HandModelData


class UnsafePickleError(pickle.UnpicklingError):
    """Raised when a pickle references a global outside the MANO allow-list."""


class PickledObjectStandIn:
    """Inert placeholder for a pickled third-party object (chumpy ``Ch``, scipy sparse matrix).

    It records the constructor arguments and the state the pickle hands over and nothing else: no method of
    the original class is ever run.

    Attributes:
        source: ``"module.Class"`` the pickle referenced.
        args: positional arguments given to the constructor by the pickle (usually empty).
        state: the object's pickled state (usually the ``__dict__`` dict), or None.
    """

    source = "unknown"

    def __new__(cls, *args: Any, **kwargs: Any) -> PickledObjectStandIn:
        obj = super().__new__(cls)
        obj.args = args
        obj.state = None
        return obj

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        keys = sorted(self.state) if isinstance(self.state, dict) else type(self.state).__name__
        return f"<stand-in for {self.source}: {keys}>"


class ChumpyStandIn(PickledObjectStandIn):
    """Stand-in for chumpy ``Ch`` objects; :meth:`value` returns the wrapped array (``x``)."""

    source = "chumpy.ch.Ch"

    def value(self) -> np.ndarray:
        """The array held by a leaf ``Ch`` (its ``x`` attribute), as a float64 numpy array.

        Raises:
            ValueError: if the object is a chumpy expression rather than a leaf holding an array.
        """
        state = self.state if isinstance(self.state, dict) else {}
        x = state.get("x")
        if isinstance(x, ChumpyStandIn):
            return x.value()
        if isinstance(x, np.ndarray | float | int):
            return np.asarray(x, dtype=np.float64)
        raise ValueError(f"chumpy object of type {self.source} holds no array 'x' (keys: {sorted(state)})")


class SparseStandIn(PickledObjectStandIn):
    """Stand-in for scipy sparse matrices; :meth:`value` rebuilds a CSC/CSR/COO matrix from the state."""

    source = "scipy.sparse.csc_matrix"

    def value(self) -> sp.spmatrix:
        """Rebuild the sparse matrix from its pickled ``data``/``indices``/``indptr``/``_shape`` state."""
        s = self.state if isinstance(self.state, dict) else {}
        shape = tuple(int(n) for n in s.get("_shape", s.get("shape", ())))
        fmt = s.get("format", self.source.rsplit(".", 1)[-1][:3])
        if isinstance(fmt, bytes):
            fmt = fmt.decode("latin1")
        if fmt in ("csc", "csr"):
            cls = sp.csc_matrix if fmt == "csc" else sp.csr_matrix
            return cls((np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"])), shape=shape)
        if fmt == "coo":
            return sp.coo_matrix((np.asarray(s["data"]), (np.asarray(s["row"]), np.asarray(s["col"]))),
                                 shape=shape)
        raise ValueError(f"unsupported pickled sparse format {fmt!r}")


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """Safe replacement for ``copyreg._reconstructor`` (both arguments were admitted by ``find_class``)."""
    if base is object:
        return object.__new__(cls)
    if base in (set, frozenset) and cls in (set, frozenset):
        return base(state or ())
    raise UnsafePickleError(f"refused copy_reg._reconstructor({cls!r}, {base!r})")


def _numpy_core_global(name: str) -> Any:
    """``numpy.core.multiarray.<name>`` under numpy 1.x or ``numpy._core.multiarray.<name>`` under 2.x."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return getattr(multiarray, name)


_NUMPY_ALLOWED: dict[tuple[str, str], Any] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _NUMPY_ALLOWED[(_mod, "_reconstruct")] = _numpy_core_global("_reconstruct")
    _NUMPY_ALLOWED[(_mod, "scalar")] = _numpy_core_global("scalar")
_NUMPY_ALLOWED[("numpy", "ndarray")] = np.ndarray
_NUMPY_ALLOWED[("numpy", "dtype")] = np.dtype

_BUILTINS_ALLOWED: dict[tuple[str, str], Any] = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "object"): object,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("__builtin__", "object"): object,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): __import__("codecs").encode,
}

_SPARSE_MODULES = ("scipy.sparse", "scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr",
                   "scipy.sparse._csr", "scipy.sparse.coo", "scipy.sparse._coo", "scipy.sparse.compressed",
                   "scipy.sparse._compressed", "scipy.sparse.base", "scipy.sparse._base")
_SPARSE_CLASSES = ("csc_matrix", "csr_matrix", "coo_matrix")
#: chumpy classes admitted (their instances become :class:`ChumpyStandIn`).
_CHUMPY_CLASSES = {("chumpy.ch", "Ch"), ("chumpy", "Ch")}

_STANDIN_CACHE: dict[tuple[str, str], type] = {}


def _standin_class(module: str, name: str, base: type) -> type:
    key = (module, name)
    if key not in _STANDIN_CACHE:
        cls = type(f"{name}StandIn", (base,), {"source": f"{module}.{name}", "__module__": __name__})
        _STANDIN_CACHE[key] = cls
    return _STANDIN_CACHE[key]


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only what official MANO files contain.

    Use with ``encoding="latin1"`` for Python 2 pickles (``pickle.Unpickler(file, encoding="latin1")``);
    :func:`safe_load_pickle` does this for you.
    """

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - documented on the class
        key = (module, name)
        if key in _NUMPY_ALLOWED:
            return _NUMPY_ALLOWED[key]
        if key in _BUILTINS_ALLOWED:
            return _BUILTINS_ALLOWED[key]
        if key in _CHUMPY_CLASSES:
            return _standin_class(module, name, ChumpyStandIn)
        if module in _SPARSE_MODULES and name in _SPARSE_CLASSES:
            return _standin_class(module, name, SparseStandIn)
        raise UnsafePickleError(
            f"refused to load global '{module}.{name}': not on the MANO pickle allow-list "
            "(numpy arrays, scipy sparse matrices, chumpy Ch)"
        )


def safe_load_pickle(data: bytes | str | Path) -> Any:
    """Unpickle MANO-style data with :class:`RestrictedUnpickler` and ``encoding="latin1"``.

    Args:
        data: the pickle bytes, or a path to the file.

    Returns:
        The unpickled object (for MANO files, a dict whose chumpy/sparse entries are stand-ins).

    Raises:
        UnsafePickleError: the pickle references a global outside the allow-list (nothing was executed).
    """
    if not isinstance(data, bytes):
        data = Path(data).read_bytes()
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def _to_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, ChumpyStandIn):
        return value.value()
    if isinstance(value, SparseStandIn):
        return np.asarray(value.value().toarray())
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except Exception as exc:  # pragma: no cover - defensive
        raise ValueError(f"MANO key {name!r} is not an array: {type(value).__name__}") from exc


def _infer_side(path: Path, raw: dict) -> str:
    """Side from the file name, else from geometry (right: fingers at lower x than the wrist)."""
    stem = path.name.upper()
    if "LEFT" in stem:
        return "left"
    if "RIGHT" in stem:
        return "right"
    v = _to_array(raw["v_template"], "v_template").astype(np.float64)
    reg = raw["J_regressor"]
    reg = reg.value().toarray() if isinstance(reg, SparseStandIn) else _to_array(reg, "J_regressor")
    wrist = np.asarray(reg, dtype=np.float64)[0] @ v
    return "right" if v[:, 0].mean() < wrist[0] else "left"


def load_mano_pickle(path: str | Path, side: str | None = None, fix_left_shapedirs: bool = True,
                     tip_vertex_ids: tuple[int, ...] = MANO_TIP_VERTEX_IDS) -> HandModelData:
    """Read an official MANO pickle safely into a :class:`HandModelData`.

    Args:
        path: ``MANO_RIGHT.pkl`` or ``MANO_LEFT.pkl``.
        side: ``"right"``/``"left"``; inferred from the file name when None.
        fix_left_shapedirs: for the left hand, negate the x component of ``shapedirs``
            (``shapedirs[:, 0, :] *= -1``), the known fix for the released left file.
        tip_vertex_ids: fingertip vertices (thumb, index, middle, ring, pinky); default the manopth
            convention, see :mod:`hand_recon_core.hand_model.constants`.

    Returns:
        The model (float64 arrays, sparse ``J_regressor`` kept as scipy CSC), ``model_id``
        ``"mano-<side>-<first 10 hex digits of the file's sha1>"``. Part labels are the argmax of the
        skinning weights; MANO files carry no joint limits.

    Raises:
        UnsafePickleError: the file references a global outside the allow-list.
        KeyError: a required key is missing.
    """
    path = Path(path)
    blob = path.read_bytes()
    raw = safe_load_pickle(blob)
    if not isinstance(raw, dict):
        raise ValueError(f"{path} does not hold a MANO dict (got {type(raw).__name__})")
    side = check_side(side) if side is not None else _infer_side(path, raw)

    v_template = _to_array(raw["v_template"], "v_template").astype(np.float64)
    faces = _to_array(raw["f"], "f").astype(np.int64)
    shapedirs = _to_array(raw["shapedirs"], "shapedirs").astype(np.float64).copy()
    posedirs = _to_array(raw["posedirs"], "posedirs").astype(np.float64)
    weights = _to_array(raw["weights"], "weights").astype(np.float64)
    reg = raw["J_regressor"]
    J_regressor = reg.value().tocsc().astype(np.float64) if isinstance(reg, SparseStandIn) else \
        np.asarray(_to_array(reg, "J_regressor"), dtype=np.float64)
    kintree = _to_array(raw["kintree_table"], "kintree_table").astype(np.int64)
    parents = kintree[0].copy()
    parents[0] = -1
    if tuple(int(p) for p in parents) != MANO_PARENTS:
        raise ValueError(f"{path}: kinematic tree {parents.tolist()} is not MANO's")
    comps = _to_array(raw["hands_components"], "hands_components").astype(np.float64)
    mean = _to_array(raw["hands_mean"], "hands_mean").astype(np.float64).reshape(NUM_HAND_POSE)
    if side == "left" and fix_left_shapedirs:
        shapedirs[:, 0, :] *= -1.0
    sha = hashlib.sha1(blob).hexdigest()[:10]
    return HandModelData(
        v_template=v_template,
        faces=faces,
        shapedirs=shapedirs,
        posedirs=posedirs,
        J_regressor=J_regressor,
        weights=weights,
        parents=parents,
        hands_components=comps,
        hands_mean=mean,
        tip_vertex_ids=np.asarray(tip_vertex_ids, dtype=np.int64),
        part_labels=np.argmax(weights, axis=1).astype(np.int64),
        side=side,
        model_id=f"mano-{side}-{sha}",
        tip_convention=MANO_TIP_CONVENTION,
    ).validate()
