"""Flattening nested mappings to dotted keys, the shape of the DataFrame's columns."""
from __future__ import annotations

import datetime as _dt
import enum
import os
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

from hydra_ledger.record.jsonable import to_jsonable

# A name two key paths flatten to: (name, [(key path, value)...], the value kept).
Clash = tuple[str, list[tuple[list[str], Any]], Any]

# JSON's leaf types, told apart from mappings by one set lookup (the loader's hot path:
# isinstance(x, Mapping) is an ABC check, slow for every non-mapping leaf).
_LEAF_TYPES = frozenset({str, int, float, bool, list, type(None)})


def flatten(
    value: Mapping[str, Any], prefix: str = "", out: dict[str, Any] | None = None, keep_empty: bool = True,
    names: dict[str, dict[Any, str]] | None = None, clashes: list[Clash] | None = None,
) -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a.b": 1, "c": [1, 2]}``: lists stay lists.

    An empty mapping is kept as a value (``{}``) unless ``keep_empty`` is false. ``names``: a
    memo of dotted names (prefix -> key -> name) shared across calls, so that flattening many
    records of the same shape makes each name once and rows share the very key strings.
    Iterative, so that a config nested 1,000 levels deep is one more column, not a RecursionError.
    Keys that flatten to one name (``{"a.b": 1, "a": {"b": 2}}``) keep the most nested value,
    whatever their order; ``clashes`` gets ``(name, [(key path, value)...], value kept)`` of each.
    """
    if out is None:
        out = {}
    expected = len(out) + len(value)  # each key is a name, but a mapping's own is replaced by its keys'
    stack = [(iter(value.items()), prefix, _memo(names, prefix))]
    while stack:
        items, pre, known = stack[-1]
        for key, item in items:
            if known is None:
                name = f"{pre}{key}"
            else:
                memo = known.get(key)
                if memo is None:
                    memo = known[key] = f"{pre}{key}"
                name = memo
            kind = type(item)
            if kind in _LEAF_TYPES:
                out[name] = item
            elif kind is dict or isinstance(item, Mapping):
                if item:
                    expected += len(item) - 1
                    sub = name + "."
                    stack.append((iter(item.items()), sub, _memo(names, sub)))
                    break
                if keep_empty:
                    out[name] = item
                else:
                    expected -= 1
            else:
                out[name] = item
        else:
            stack.pop()
    if len(out) != expected:  # two keys made one name: rare, so looked into only now
        _settle_clashes(value, prefix, out, keep_empty, clashes)
    return out


def _memo(names: dict[str, dict[Any, str]] | None, prefix: str) -> dict[Any, str] | None:
    if names is None:
        return None
    known = names.get(prefix)
    if known is None:
        known = names[prefix] = {}
    return known


def _settle_clashes(value: Mapping[str, Any], prefix: str, out: dict[str, Any], keep_empty: bool,
                    clashes: list[Clash] | None) -> None:
    """Give each clashing name the value of its most nested key path (the last of equals)."""
    found: dict[str, list[tuple[list[str], Any]]] = {}
    stack: list[tuple[Any, list[str]]] = [(iter(value.items()), [])]
    while stack:
        items, path = stack[-1]
        for key, item in items:
            keys = [*path, str(key)]
            if (type(item) is dict or isinstance(item, Mapping)) and item:
                stack.append((iter(item.items()), keys))
                break
            if isinstance(item, Mapping) and not keep_empty:
                continue
            found.setdefault(prefix + ".".join(keys), []).append((keys, item))
        else:
            stack.pop()
    for name, paths in found.items():
        if len(paths) > 1:
            kept = max(reversed(paths), key=lambda p: len(p[0]))[1]
            out[name] = kept
            if clashes is not None:  # fewest keys first: the same report whatever the order
                clashes.append((name, sorted(paths, key=lambda p: len(p[0])), kept))


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
        except Exception:  # noqa: BLE001 - a failing tolist() is not the job's failure: keep its repr
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
        except Exception:  # noqa: BLE001 - a failing item() is not the job's failure: keep its repr
            pass
    return {"value": _short_repr(value)}
