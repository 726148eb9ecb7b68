"""A CDR (XCDR1, little-endian) serialiser for ROS 2 messages that takes numpy arrays for big sequences.

Why: ``rclpy.serialization.serialize_message`` converts nested-message sequences element by element, so a
``visualization_msgs/Marker`` TRIANGLE_LIST of two hand meshes (~10 000 ``geometry_msgs/Point``) costs tens of
milliseconds to build and serialise. Here a message is described by a plain value tree and the big arrays are
written with one numpy copy; the bytes are published with ``Publisher.publish(bytes)`` and every subscriber
deserialises them as usual.

The layout is derived from the message classes' own type description (``SLOT_TYPES`` and
``get_fields_and_field_types()``), so the same code serves every ROS 2 distribution whatever the message
definitions there (e.g. ``Marker`` gained texture fields after Humble).

Values accepted for a message field (:func:`serialize`):

* a message instance, or a ``dict`` of some of its fields (missing fields take the message's defaults, e.g. a
  unit quaternion);
* primitive sequences / arrays: lists, ``array.array``, ``bytes`` or numpy arrays;
* sequences / arrays of a message whose fields are all the same numeric primitive (``geometry_msgs/Point``,
  ``Vector3``, ``std_msgs/ColorRGBA`` ...): additionally an (N, fields) numpy array.
"""

from __future__ import annotations

import functools
import importlib
import struct
from typing import Any

import numpy as np

__all__ = ["serialize", "ENCAPSULATION_CDR_LE"]

#: The 4-byte encapsulation header of little-endian plain CDR.
ENCAPSULATION_CDR_LE = b"\x00\x01\x00\x00"

#: IDL basic type -> (numpy dtype, struct format, size in bytes)
_BASIC: dict[str, tuple[str, str, int]] = {
    "boolean": ("u1", "?", 1),
    "octet": ("u1", "B", 1),
    "char": ("u1", "B", 1),
    "uint8": ("u1", "B", 1),
    "int8": ("i1", "b", 1),
    "uint16": ("<u2", "<H", 2),
    "int16": ("<i2", "<h", 2),
    "uint32": ("<u4", "<I", 4),
    "int32": ("<i4", "<i", 4),
    "uint64": ("<u8", "<Q", 8),
    "int64": ("<i8", "<q", 8),
    "float": ("<f4", "<f", 4),
    "double": ("<f8", "<d", 8),
}


class _Writer:
    """A growing little-endian buffer starting with the encapsulation header.

    Alignment is relative to the payload (the bytes after the 4-byte header).
    """

    __slots__ = ("buf", "pos")

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.buf = bytearray(capacity)
        self.buf[:4] = ENCAPSULATION_CDR_LE
        self.pos = 4

    def _reserve(self, n: int) -> None:
        need = self.pos + n
        if need > len(self.buf):
            self.buf.extend(bytes(max(need - len(self.buf), len(self.buf))))

    def align(self, n: int) -> None:
        pad = (4 - self.pos) % n
        if pad:
            self._reserve(pad)
            self.buf[self.pos:self.pos + pad] = bytes(pad)
            self.pos += pad

    def pack(self, fmt: str, size: int, value: Any) -> None:
        self.align(size)
        self._reserve(size)
        struct.pack_into(fmt, self.buf, self.pos, value)
        self.pos += size

    def raw(self, data: bytes | memoryview) -> None:
        n = len(data)
        self._reserve(n)
        self.buf[self.pos:self.pos + n] = data
        self.pos += n

    def string(self, s: str) -> None:
        data = s.encode("utf-8") if isinstance(s, str) else bytes(s)
        self.pack("<I", 4, len(data) + 1)
        self.raw(data + b"\x00")


def _type_kind(t) -> tuple:
    """A hashable plan of one IDL type (rosidl_parser.definition object)."""
    from rosidl_parser import definition as d

    if isinstance(t, d.BasicType):
        return ("basic", t.typename)
    if isinstance(t, (d.UnboundedString, d.BoundedString)):
        return ("string",)
    if isinstance(t, (d.UnboundedWString, d.BoundedWString)):
        return ("wstring",)
    if isinstance(t, d.NamespacedType):
        return ("msg", ".".join(t.namespaces), t.name)
    if isinstance(t, d.Array):
        return ("array", int(t.size), _type_kind(t.value_type))
    if isinstance(t, (d.UnboundedSequence, d.BoundedSequence)):
        return ("sequence", _type_kind(t.value_type))
    raise TypeError(f"unsupported IDL type {t!r}")


@functools.cache
def _msg_class(module: str, name: str):
    return getattr(importlib.import_module(module), name)


@functools.cache
def _fields(msg_class) -> tuple[tuple[str, tuple], ...]:
    names = list(msg_class.get_fields_and_field_types())
    return tuple((n, _type_kind(t)) for n, t in zip(names, msg_class.SLOT_TYPES))


@functools.cache
def _uniform_numeric(kind: tuple) -> tuple[str, int] | None:
    """(numpy dtype, field count) when ``kind`` is a message of same-typed numeric basic fields only."""
    if kind[0] != "msg":
        return None
    fields = _fields(_msg_class(kind[1], kind[2]))
    types = {k for _, k in fields}
    if len(types) != 1:
        return None
    (k,) = types
    if k[0] != "basic" or k[1] in ("boolean", "octet", "char"):
        return None
    return _BASIC[k[1]][0], len(fields)


def _write_value(w: _Writer, kind: tuple, value: Any) -> None:
    tag = kind[0]
    if tag == "basic":
        _, fmt, size = _BASIC[kind[1]]
        if isinstance(value, (bytes, bytearray)):
            value = value[0] if value else 0
        elif isinstance(value, str):
            value = ord(value) if value else 0
        w.pack(fmt, size, value)
    elif tag == "string":
        w.string(value or "")
    elif tag == "msg":
        _write_msg(w, _msg_class(kind[1], kind[2]), value)
    elif tag == "sequence":
        n = _length(value)
        w.pack("<I", 4, n)
        if n:
            _write_elements(w, kind[1], value, n)
    elif tag == "array":
        n = kind[1]
        if value is None:
            value = []
        if _length(value) != n:
            raise ValueError(f"array of {n} elements expected, got {_length(value)}")
        _write_elements(w, kind[2], value, n)
    else:
        raise TypeError(f"cannot serialise {kind}")


def _length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, np.ndarray):
        return int(value.shape[0]) if value.ndim else 1
    return len(value)


def _write_elements(w: _Writer, kind: tuple, value: Any, n: int) -> None:
    if kind[0] == "basic":
        dtype, _, size = _BASIC[kind[1]]
        if isinstance(value, (bytes, bytearray, memoryview)):
            arr = np.frombuffer(value, np.uint8)
            if size != 1:
                arr = arr.view(dtype)
        else:
            arr = np.asarray(value, dtype=dtype).reshape(-1)
        w.align(size)
        w.raw(np.ascontiguousarray(arr, dtype=dtype).tobytes())
        return
    uniform = _uniform_numeric(kind)
    if uniform is not None and isinstance(value, np.ndarray):
        dtype, k = uniform
        arr = np.ascontiguousarray(value, dtype=dtype)
        if arr.shape != (n, k):
            raise ValueError(f"expected an ({n}, {k}) array for {kind[2]}, got {arr.shape}")
        w.align(np.dtype(dtype).itemsize)
        w.raw(arr.tobytes())
        return
    for item in value:
        _write_value(w, kind, item)


@functools.cache
def _default_instance(msg_class):
    return msg_class()


def _write_msg(w: _Writer, msg_class, value: Any) -> None:
    if value is None:
        value = _default_instance(msg_class)
    if isinstance(value, dict):
        default = _default_instance(msg_class)
        for name, kind in _fields(msg_class):
            v = value.get(name)
            _write_value(w, kind, getattr(default, name) if v is None else v)
    else:
        for name, kind in _fields(msg_class):
            _write_value(w, kind, getattr(value, name))


def serialize(msg_class, value: Any) -> bytes:
    """Serialise ``value`` as a ``msg_class`` message (CDR little-endian, with the encapsulation header).

    Args:
        msg_class: the generated message class, e.g. ``visualization_msgs.msg.MarkerArray``.
        value: a ``msg_class`` instance or a dict of fields (see the module docstring for numpy fields).

    Returns:
        Bytes that ``rclpy.serialization.deserialize_message(data, msg_class)`` reads back and that
        ``Publisher.publish`` accepts.
    """
    w = _Writer()
    _write_msg(w, msg_class, value)
    w.align(4)
    return bytes(memoryview(w.buf)[:w.pos])
