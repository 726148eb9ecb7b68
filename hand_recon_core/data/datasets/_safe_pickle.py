"""Restricted unpickling for dataset annotation pickles (HO3D ``meta/*.pkl``, RHD ``anno_*.pickle``).

``pickle.load`` runs whatever callable a file names, so a downloaded pickle must never reach it. This module's
unpickler resolves only the globals needed to rebuild numpy arrays, dtypes and scalars; built-in containers,
numbers, strings and ``None`` need no globals. Anything else (``os.system``, ``builtins.eval``, a class) raises
``pickle.UnpicklingError`` naming the refused global.

Pickles written by Python 2 (both datasets' originals) need ``encoding="latin1"`` (the default here) so that
numpy's byte buffers survive. Pickles written by NumPy 1.x name ``numpy.core.*``; NumPy 2 renamed that package
to ``numpy._core``; both spellings resolve to the same objects.
"""

from __future__ import annotations

import codecs
import importlib
import io
import os
import pickle
from typing import Any

import numpy as np

__all__ = ["safe_load_pickle", "safe_loads_pickle", "ALLOWED_GLOBALS"]


def _numpy_internal(name: str, module_suffix: str) -> Any:
    """``numpy._core.<suffix>.<name>`` on NumPy 2, ``numpy.core.<suffix>.<name>`` on NumPy 1."""
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{module_suffix}"), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {module_suffix}.{name}")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct = _numpy_internal("_reconstruct", "multiarray")
    scalar = _numpy_internal("scalar", "multiarray")
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python 3 pickles of bytes at protocol <= 2 call codecs.encode(str, "latin1"): a pure function.
        ("_codecs", "encode"): codecs.encode,
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = scalar
    try:  # protocol-5 pickles of arrays (NumPy >= 1.16)
        frombuffer = _numpy_internal("_frombuffer", "numeric")
    except ImportError:
        pass
    else:
        for package in ("numpy.core", "numpy._core"):
            allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return allowed


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = _allowed_globals()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` admits only ``ALLOWED_GLOBALS``."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: only numpy arrays, dtypes and scalars are allowed"
            ) from None


def safe_loads_pickle(data: bytes, encoding: str = "latin1") -> Any:
    """Unpickle ``data`` admitting only plain containers and numpy arrays / dtypes / scalars.

    Args:
        data: the pickle's bytes.
        encoding: how Python-2 ``str`` objects are decoded (``"latin1"`` keeps numpy buffers intact).

    Raises:
        pickle.UnpicklingError: if the pickle names any other global (or is malformed).
    """
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()


def safe_load_pickle(path: str | os.PathLike[str], encoding: str = "latin1") -> Any:
    """Read and unpickle the file at ``path`` with ``safe_loads_pickle``.

    Raises:
        FileNotFoundError: naming ``path`` when it does not exist.
        pickle.UnpicklingError: as ``safe_loads_pickle``, with the path in the message.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pickle file not found: {os.fspath(path)}")
    with open(path, "rb") as f:
        data = f.read()
    try:
        return safe_loads_pickle(data, encoding=encoding)
    except pickle.UnpicklingError as err:
        raise pickle.UnpicklingError(f"{os.fspath(path)}: {err}") from None
