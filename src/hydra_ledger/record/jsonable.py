"""Turning any value a config or a task may hold into JSON, faithfully and without raising."""
from __future__ import annotations

import base64
import datetime as _dt
import enum
import os
from typing import Any


def to_jsonable(value: Any) -> Any:
    """``json.dumps`` default hook: numpy scalars/arrays, paths, enums, bytes, dates, sets, else repr."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"__bytes_base64__": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, complex):
        return repr(value)
    # numpy (and torch/jax) scalars and arrays, without importing them.
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and hasattr(value, "dtype"):
        try:
            return tolist()
        except Exception:  # noqa: BLE001 - an array type we do not know: fall back to its repr
            pass
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        try:
            return item()
        except Exception:  # noqa: BLE001 - an array type we do not know: fall back to its repr
            pass
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not lose the record
        return f"<{type(value).__name__} object: repr() failed>"
