"""Flattening nested mappings to dotted keys, the shape of the DataFrame's columns."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def flatten(value: Mapping[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a.b": 1, "c": [1, 2]}``: lists stay lists."""
    if out is None:
        out = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            flatten(item, name + ".", out)
        else:
            out[name] = item
    return out


def summarize_return(value: Any) -> dict[str, Any]:
    """A task's return value as summary entries.

    Scalar -> ``value``; mapping -> its items (nested keys dotted); sequence ->
    ``value.0``, ``value.1``...; ``None`` -> nothing; anything else -> its repr.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return flatten({str(k): v for k, v in value.items()})
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and hasattr(value, "dtype"):  # numpy scalars and arrays
        try:
            value = tolist()
        except Exception:
            return {"value": repr(value)}
    if isinstance(value, (str, bytes, int, float, bool)):
        return {"value": value}
    if isinstance(value, Sequence):
        items = {str(i): v for i, v in enumerate(value)}
        return flatten(items, "value.")
    item = getattr(value, "item", None)
    if callable(item):  # 0-d tensors of other array libraries
        try:
            return {"value": item()}
        except Exception:
            pass
    return {"value": repr(value)}
