"""Flattening nested mappings to dotted keys, the shape of the DataFrame's columns."""
from __future__ import annotations

import datetime as _dt
import enum
import os
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

from hydra_ledger.jsonable import to_jsonable


# JSON's leaf types, told apart from mappings by one set lookup (the loader's hot path:
# isinstance(x, Mapping) is an ABC check, slow for every non-mapping leaf).
_LEAF_TYPES = frozenset({str, int, float, bool, list, type(None)})


def flatten(
    value: Mapping[str, Any], prefix: str = "", out: dict[str, Any] | None = None, keep_empty: bool = True,
    names: dict[str, dict[Any, str]] | None = None,
) -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a.b": 1, "c": [1, 2]}``: lists stay lists.

    An empty mapping is kept as a value (``{}``) unless ``keep_empty`` is false. ``names``: a
    memo of dotted names (prefix -> key -> name) shared across calls, so that flattening many
    records of the same shape makes each name once and rows share the very key strings.
    """
    if out is None:
        out = {}
    known = None
    if names is not None:
        known = names.get(prefix)
        if known is None:
            known = names[prefix] = {}
    for key, item in value.items():
        if known is None:
            name = f"{prefix}{key}"
        else:
            name = known.get(key)
            if name is None:
                name = known[key] = f"{prefix}{key}"
        kind = type(item)
        if kind in _LEAF_TYPES:
            out[name] = item
        elif kind is dict or isinstance(item, Mapping):
            if item:
                flatten(item, name + ".", out, keep_empty, names)
            elif keep_empty:
                out[name] = item
        else:
            out[name] = item
    return out


# A summary is a few values per run. A longer sequence (a whole array returned by mistake)
# would become as many columns and bloat every record: it is kept as a shortened repr.
MAX_SEQUENCE_ITEMS = 100
_MAX_REPR = 500


def _short_repr(value: Any) -> str:
    try:
        text = reprlib.repr(value) if isinstance(value, (list, tuple)) else repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ is not the job's failure
        return f"<{type(value).__name__} object: repr() failed>"
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def summarize_return(value: Any) -> dict[str, Any]:
    """A task's return value as summary entries.

    Scalar -> ``value``; mapping -> its items (nested keys dotted); sequence ->
    ``value.0``, ``value.1``... (up to 100 items, else a shortened repr); ``None`` ->
    nothing; anything else -> its repr.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return flatten({str(k): v for k, v in value.items()})
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and hasattr(value, "dtype"):  # numpy scalars and arrays
        if getattr(value, "size", 1) > MAX_SEQUENCE_ITEMS:
            return {"value": _short_repr(value)}
        try:
            value = tolist()
        except Exception:
            return {"value": _short_repr(value)}
    if isinstance(value, (enum.Enum, os.PathLike, bytes, bytearray, _dt.date, _dt.time, _dt.timedelta)):
        return {"value": to_jsonable(value)}  # as in a config: Path -> str, Enum -> name, bytes -> text
    if isinstance(value, (str, int, float, bool)):
        return {"value": value}
    if isinstance(value, Sequence):
        if len(value) > MAX_SEQUENCE_ITEMS:
            return {"value": _short_repr(value)}
        items = {str(i): v for i, v in enumerate(value)}
        return flatten(items, "value.")
    item = getattr(value, "item", None)
    if callable(item):  # 0-d tensors of other array libraries
        try:
            return {"value": item()}
        except Exception:
            pass
    return {"value": _short_repr(value)}
