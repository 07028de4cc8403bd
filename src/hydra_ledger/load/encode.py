"""Rows to Arrow: the columns of the index, typed natively where a column's values share a type.

A column of mixed types, lists or mappings is JSON text (``large_string``), decoded back to
the very Python values; internal columns (``#rel``, ``#sig``...) say where a row came from
and how to tell that it changed.
"""
from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from hydra_ledger.load import kernels
from hydra_ledger.record.schema import RecordError

# Internal columns; row keys never start with '#'.
REL, SIG, RACY, HB, LAYOUT = "#rel", "#sig", "#racy", "#hb", "#layout"
# A row's warnings (a field loaded as empty, clashing keys): kept beside the table, warned at every load.
WARN = "#warn"
INTERNAL = (REL, SIG, RACY, HB, LAYOUT)
TIME_COLUMNS = ("started_at", "ended_at")
# A native text column is `string`; `large_string` marks a column of JSON texts (lists,
# mappings, mixed types), decoded back to the very Python values.
JSON_TYPE = pa.large_string()


def _dump(value: Any) -> str:
    out = orjson.dumps(value)
    if b"null" in out:  # orjson writes NaN as null: let json keep NaN and Infinity apart from None
        return json.dumps(value, allow_nan=True)
    return out.decode()


def _dump_safe(value: Any) -> str:
    try:
        return _dump(value)
    except (TypeError, orjson.JSONEncodeError):
        try:
            return json.dumps(value, allow_nan=True, default=str)
        except RecursionError:  # a list nested ~1,000 levels deep (orjson stops at 255): a note, not a failed load
            return json.dumps(f"<{type(value).__name__} nested too deeply to load>")


def encode_values(values: list[Any], name: str) -> pa.Array:
    """A column of Python values as Arrow: native when they share one type, JSON texts otherwise."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds:
        return pa.nulls(len(values))
    if kinds == {str} and name in TIME_COLUMNS:
        try:  # Arrow parses ISO 8601 with an offset 8x faster; what it refuses, pandas may take
            return pa.array(values, pa.string()).cast(pa.timestamp("ns", "UTC"))
        except (pa.ArrowException, ValueError):
            pass
        import pandas as pd  # only for times Arrow refused: a warm load never imports pandas here

        try:
            return pa.array(pd.Series(pd.to_datetime(values, utc=True, format="ISO8601"),
                                      dtype="datetime64[ns, UTC]"))
        except (ValueError, TypeError, OverflowError):
            pass  # kept as text: the frame raises as the plain loader does
    if len(kinds) == 1:
        kind = next(iter(kinds))
        arrow = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}.get(kind)
        if arrow is not None:
            try:
                if kind is str and values[0] == values[-1] and values.count(values[0]) == len(values):
                    # one text all along (most config values within a sweep): converted once, not per row;
                    # the ends compared first spare the count a column of ids
                    return pa.repeat(pa.scalar(values[0], arrow), len(values))
                return pa.array(values, arrow)
            except (pa.ArrowException, OverflowError, UnicodeEncodeError):
                pass
    return pa.array([None if v is None else _dump_safe(v) for v in values], JSON_TYPE)


@dataclass
class Chunk:
    """Rows of some job dirs, encoded: a table, its key layouts, and the broken records."""

    table: pa.Table
    layouts: list[list[str]]
    broken: dict[str, list[Any]]  # rel -> [signature, file, problem, hint]
    warned: dict[str, list[str]] = field(default_factory=dict)  # rel -> warnings of a row that loads


def encode_rows(items: list[tuple[str, str, bool, Any]]) -> Chunk:
    """``(rel, signature, racy, row or RecordError)`` items -> a :class:`Chunk`; a row is a mapping
    (from a record) or a journal's ``(names, values)`` (no warnings, no heartbeat)."""
    rows: list[Collection[Any]] = []
    rels: list[str] = []
    sigs: list[str] = []
    racy: list[bool] = []
    hbs: list[float | None] = []
    layout_ids: list[int] = []
    layouts: dict[tuple[str, ...], int] = {}
    broken: dict[str, list[Any]] = {}
    warned: dict[str, list[str]] = {}
    last_keys, layout = None, 0
    for rel, sig, is_racy, row in items:
        if isinstance(row, RecordError):
            broken[rel] = [sig, str(row.path), row.problem, str(row).partition(" — ")[2]]
            continue
        if type(row) is tuple:
            keys, values = row
            hbs.append(None)
        else:
            if WARN in row:
                warned[rel] = row.pop(WARN)
            hbs.append(row.pop(HB, None))
            keys, values = tuple(row), row.values()
        if keys is not last_keys:  # a journal's rows share one tuple of names: hashed once
            last_keys, layout = keys, layouts.setdefault(keys, len(layouts))
        layout_ids.append(layout)
        rows.append(values)
        rels.append(rel)
        sigs.append(sig)
        racy.append(is_racy)
    names: dict[str, None] = {}
    for keys in layouts:
        names.update(dict.fromkeys(keys))
    arrays = [pa.array(rels, pa.string()), pa.array(sigs, pa.string()), pa.array(racy, pa.bool_()),
              pa.array(hbs, pa.float64()), pa.array(layout_ids, pa.int32())]
    arrays += [encode_values(values, name) for name, values in _transpose(rows, layout_ids, layouts, names).items()]
    table = pa.Table.from_arrays(arrays, names=[*INTERNAL, *names])
    return Chunk(table, [list(keys) for keys in layouts], broken, warned)


def _transpose(rows: list[Collection[Any]], layout_ids: list[int], layouts: dict[tuple[str, ...], int],
               names: dict[str, None]) -> dict[str, list[Any]]:
    """Rows (their values, in their layout's order) -> columns; rows sharing a key layout are
    transposed at once (``zip(*...)``, in C)."""
    if len(layouts) == 1:
        keys = next(iter(layouts))
        return dict(zip(keys, map(list, zip(*rows)))) if rows else {}
    columns: dict[str, list[Any]] = {name: [None] * len(rows) for name in names}
    for keys, layout in layouts.items():
        positions = [i for i, lid in enumerate(layout_ids) if lid == layout]
        for name, values in zip(keys, zip(*(rows[i] for i in positions))):
            column = columns[name]
            for i, value in zip(positions, values):
                column[i] = value
    return columns


def _to_json_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if column.type == JSON_TYPE:
        return column
    values = column.to_pylist()
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append(None)
        elif hasattr(v, "isoformat"):
            out.append(_dump_safe(v.isoformat()))
        else:
            out.append(_dump_safe(v))
    return pa.chunked_array([pa.array(out, JSON_TYPE)], JSON_TYPE)


def concat(tables: list[pa.Table]) -> pa.Table:
    """Stack tables whose columns may differ in set and type (a type conflict makes JSON texts)."""
    tables = [t for t in tables if t.num_rows] or tables[:1]
    if len(tables) == 1:
        return tables[0]
    if all(t.schema.equals(tables[0].schema) for t in tables[1:]):  # the common case, at once (Arrow's C++)
        return pa.concat_tables(tables)
    names: dict[str, None] = {}
    for t in tables:
        names.update(dict.fromkeys(t.column_names))
    columns: dict[str, list[pa.ChunkedArray]] = {}
    present = [frozenset(t.column_names) for t in tables]  # sets: a list per lookup is quadratic in width
    for name in names:
        parts = [t.column(name) if name in have else None for t, have in zip(tables, present)]
        types = {p.type for p in parts if p is not None and p.type != pa.null()}
        if len(types) > 1:
            parts = [_to_json_column(p) if p is not None else None for p in parts]
            target = JSON_TYPE
        else:
            target = next(iter(types)) if types else pa.null()
        columns[name] = [
            pa.chunked_array([pa.nulls(t.num_rows, target)], target) if p is None
            else (p if p.type == target else kernels.cast(p, target))
            for p, t in zip(parts, tables)
        ]
    arrays = [pa.chunked_array([c for part in columns[name] for c in part.chunks], columns[name][0].type)
              for name in names]
    return pa.Table.from_arrays(arrays, names=list(names))


@contextlib.contextmanager
def no_gc() -> Any:
    """Cyclic garbage collection paused: making 100k lists, dicts and strings would run it over
    every live object again and again (half of the time of decoding a list column); they hold no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
