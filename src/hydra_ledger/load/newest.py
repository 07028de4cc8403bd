"""The newest runs read straight from the index, without pandas: what ``hydra-ledger ls`` shows by default.

A frame of 100,000 runs costs ``ls`` most of its second: importing pandas (0.3-0.5 s) and typing
every column. The default listing needs less: the rows in start order, which columns vary, and
the values of the rows shown; Arrow gives those from the index (see :mod:`hydra_ledger.load.quick`
for when the loader's judgement is needed instead: :func:`newest` then returns None, and the
command loads the frame as before). Both paths show the same values, typed the same way.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from hydra_ledger.load import _order_columns, _value_key, kernels
from hydra_ledger.load.encode import JSON_TYPE, LAYOUT
from hydra_ledger.load.quick import settled
from hydra_ledger.load.swept import fold, is_config, override_keys, swept_columns
from hydra_ledger.load.tables import as_numpy, start_order, timestamps
from hydra_ledger.record.files import loads
from hydra_ledger.record.rows import BASE_COLUMNS
from hydra_ledger.record.schema import STATUSES

if TYPE_CHECKING:
    from hydra_ledger.load.walk import Progress

# The columns of the listing besides the swept keys and the summary (see cli/ls.py).
LEADING = ("run_id", "status", "started_at", "duration_s")


@dataclass
class Listing:
    """The columns of a listing, and per column the values of the rows shown, newest first."""

    columns: list[str]
    values: dict[str, list[Any]]
    kinds: dict[str, type | None]  # bool, int or float as the frame types the column; None: values of any type
    folded: dict[str, list[str]] = field(default_factory=dict)  # see hydra_ledger.load.swept.folded


def newest(paths: Sequence[str], *, limit: int | None, include_debug: bool = False, fold_columns: bool = False,
           progress: Progress | None = None) -> Listing | None:
    """The ``limit`` newest runs under ``paths`` (default roots when empty) with ``ls``'s default
    columns (none when there are no runs), or None when the frame is needed to list them.
    ``fold_columns``: name the varying config columns not shown, as :func:`hydra_ledger.load.swept.folded` does."""
    found = settled(paths, include_debug=include_debug, progress=progress)
    if found is None or (found.table.num_rows and not _listable(found.table)):
        return None
    found.report_broken()
    if not found.table.num_rows:
        return Listing([], {}, {})  # no runs
    table = found.table
    columns = _Columns(table, found.codes)
    names = _order_columns(_names(table, found.layouts))
    keys = override_keys(loads(text) for text in _in_start_order(table)) if "overrides" in columns.names else []
    swept = swept_columns(keys, names, columns.varies)
    summary = [n for n in names if n.startswith("summary.")]
    shown = [*LEADING, *swept, *summary, *[n for n in ("tags",) if n in names]]
    newest_first = kernels.SortOptions([("", "descending")])  # stable, nulls at the end
    rows = kernels.sort_indices(table.column("started_at"), options=newest_first)
    if limit is not None:  # as DataFrame.head: a negative limit leaves that many out at the end
        rows = rows.slice(0, limit if limit >= 0 else max(len(rows) + limit, 0))
    listing = Listing(shown, {n: columns.values(n, rows) for n in shown}, {n: columns.kind(n) for n in shown})
    if fold_columns:
        varying = [n for n in names if is_config(n) and columns.varies(n)]
        listing.folded = fold(varying, shown, names, columns.keys)
    return listing


def _listable(table: pa.Table) -> bool:
    """Whether the rows can be listed without the frame: start times typed as times (text ones the frame parses)."""
    return "started_at" in table.column_names and pa.types.is_timestamp(table.column("started_at").type)


def _names(table: pa.Table, layouts: list[list[str]]) -> list[str]:
    """The frame's columns before ordering: the base ones, then each key layout's in first-seen order."""
    names: dict[str, None] = dict.fromkeys(BASE_COLUMNS)
    for layout in kernels.unique(table.column(LAYOUT)).to_pylist():  # in order of first appearance
        names.update(dict.fromkeys(layouts[layout]))
    return list(names)


def _in_start_order(table: pa.Table) -> list[str]:
    """Each distinct override list's JSON text, first-seen in start order (missing times last)."""
    overrides = table.column("overrides")
    if overrides.type != JSON_TYPE:
        return []
    encoded = kernels.dictionary_encode(overrides.combine_chunks())
    order = start_order(table)
    texts = encoded.dictionary.to_pylist()
    in_order = as_numpy(encoded.indices, missing=len(texts))[order]  # no overrides: a code past the texts
    _, first = np.unique(in_order, return_index=True)
    return [texts[i] for i in in_order[np.sort(first)].tolist() if i < len(texts)]


class _Columns:
    """Columns of the listed rows read as the frame types them (see hydra_ledger.load.frame.Columns)."""

    def __init__(self, table: pa.Table, codes: np.ndarray) -> None:
        self.table = table
        self.codes = codes
        self.names = frozenset(table.column_names)
        self._decoded: dict[str, tuple[list[Any], np.ndarray, set[type]]] = {}

    def varies(self, name: str) -> bool:
        """Whether the column's values differ across the rows, missing counting as one value."""
        if name not in self.names:
            return False
        column = self.table.column(name)
        if column.type == pa.null():
            return False
        if column.type == JSON_TYPE:
            return len({self._key(name, v) for v in self._json(name)[0]} | self._json_missing(name)) > 1
        distinct = kernels.count_distinct(column, options=kernels.CountOptions("all")).as_py()
        if pa.types.is_floating(column.type) and column.null_count and kernels.any(kernels.is_nan(column)).as_py():
            distinct -= 1  # NaN and null are both missing in the frame's float column
        return bool(distinct > 1)

    def keys(self, name: str) -> list[Any]:
        """Each row's value as a key equal for values alike (as ``_value_key`` keys the frame's)."""
        if name not in self.names:
            return ["<NA>"] * self.table.num_rows
        column = self.table.column(name)
        if column.type == JSON_TYPE:
            unique, indices, _ = self._json(name)
            keys = np.array([self._key(name, v) for v in unique] + ["<NA>"], dtype=object)
            return list(keys[indices].tolist())
        return [_value_key(v) for v in column.to_pylist()]

    def values(self, name: str, rows: pa.Array) -> list[Any]:
        """The values of ``rows`` (positions), typed as the frame's column is."""
        if name == "status":  # as derived now (a RUNNING job's heartbeat): the frame's categories
            return [STATUSES[code] if code >= 0 else None for code in self.codes[as_numpy(rows)].tolist()]
        if name not in self.names:
            return [None] * len(rows)
        column = self.table.column(name)
        if pa.types.is_timestamp(column.type):
            return timestamps(kernels.take(column, rows))
        if column.type != JSON_TYPE:
            return list(kernels.take(column, rows).to_pylist())
        unique, indices, kinds = self._json(name)
        values = [unique[i] if i < len(unique) else None for i in indices[as_numpy(rows)].tolist()]
        if _json_kind(kinds) is float:
            return [None if v is None else float(v) for v in values]
        return values  # shared by rows of one text: values to show, not to change

    def kind(self, name: str) -> type | None:
        """The type of the frame's column: bool, int or float; None for any other (text, times, objects)."""
        if name not in self.names or name == "status":
            return None
        column = self.table.column(name)
        if column.type == JSON_TYPE:
            return _json_kind(self._json(name)[2])
        return _ARROW_KINDS.get(column.type)

    def _json(self, name: str) -> tuple[list[Any], np.ndarray, set[type]]:
        """A JSON column's distinct values, each row's index into them (past the end: missing), their types."""
        found = self._decoded.get(name)
        if found is None:
            encoded = kernels.dictionary_encode(self.table.column(name).combine_chunks())
            unique = [loads(text) for text in encoded.dictionary.to_pylist()]
            positions = as_numpy(encoded.indices, missing=len(unique)).astype(np.int64)
            found = self._decoded[name] = (unique, positions, {type(v) for v in unique if v is not None})
        return found

    def _json_missing(self, name: str) -> set[str]:
        unique, indices, _ = self._json(name)
        return {"<NA>"} if len(indices) and int(indices.max()) >= len(unique) else set()

    def _key(self, name: str, value: Any) -> Any:
        if value is not None and _json_kind(self._json(name)[2]) is float:
            value = float(value)  # 1 and 1.0 are one value of a float column
        return _value_key(value)


_ARROW_KINDS: dict[pa.DataType, type] = {pa.bool_(): bool, pa.int64(): int, pa.float64(): float}


def _json_kind(kinds: set[type]) -> type | None:
    """The type the frame gives a JSON column of values of ``kinds``: bool, int, float, or None (objects)."""
    if kinds and kinds <= {int, float}:
        return int if kinds == {int} else float
    return bool if kinds == {bool} else None
