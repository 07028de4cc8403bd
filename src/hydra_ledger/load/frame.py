"""From indexed rows to the DataFrame ``load_runs`` returns, reading only what a query needs.

Columns, order and dtypes are decided over all loaded rows; statuses are derived at load time
(a RUNNING job's heartbeat; sacct's verdict; PENDING jobs of sweeps); ``columns``, ``status``
and ``where`` are pushed down: only the columns asked for (and those a filter reads) are
turned into pandas, and only for the rows kept.
"""
from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hydra_ledger.load import slurm
from hydra_ledger.load.codes import STATUS_CODES, derive_statuses, status_code
from hydra_ledger.load.encode import JSON_TYPE, LAYOUT, TIME_COLUMNS, no_gc
from hydra_ledger.load.index import RootIndex
from hydra_ledger.load.tables import (
    combine,
    missing_by_sweep,
    realpath,
    realpath_memo,
    start_order,
    started_jobs,
    sweep_candidates,
)
from hydra_ledger.load.where import choose, referenced
from hydra_ledger.record.files import loads
from hydra_ledger.record.schema import FINAL_STATUSES, STATUSES

_NATIVE = {pa.bool_(): bool, pa.int64(): int, pa.float64(): float, pa.string(): str}


def refine(indexes: Sequence[RootIndex], table: pa.Table, statuses: np.ndarray,
           usage: bool = True) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """sacct's verdict on in-doubt rows and, with ``usage``, the efficiency of finished ones
    (``{row: {"slurm.state": ..., "slurm.mem_efficiency": ...}}``, status codes updated in place),
    and PENDING rows."""
    memo = realpath_memo(indexes)
    started = started_jobs(table, memo)
    if started is None:  # sweep or job_num not plainly typed in some row (damaged records): decoded
        started = {}
        for sweep, num in zip(_values(table.column("sweep")), _values(table.column("job_num"))):
            if sweep and num is not None:
                started.setdefault(realpath(str(sweep), memo), set()).add(int(num))
    sweeps = sweep_candidates(indexes, started, memo)
    doubt: list[dict[str, Any]] = []
    if "slurm.job_id" in table.column_names and shutil.which("sacct"):
        asked = slurm.IN_DOUBT | FINAL_STATUSES if usage else slurm.IN_DOUBT
        rows = np.flatnonzero(np.isin(statuses, [STATUS_CODES[s] for s in asked])).tolist()
        ids = table.column("slurm.job_id").take(rows).to_pylist() if rows else []
        run_ids = table.column("run_id").take(rows).to_pylist() if rows else []
        doubt = [{"#row": i, "run_id": r, "status": STATUSES[statuses[i]], "slurm.job_id": j}
                 for i, j, r in zip(rows, ids, run_ids) if j is not None]
    refined = slurm.refine(doubt, [], sweeps=sweeps, started=started, usage=usage)
    states: dict[int, dict[str, Any]] = {}
    pending = []
    for row in refined:
        if "#row" in row:
            statuses[row["#row"]] = status_code(row["status"])
            found = {k: row[k] for k in SCHEDULER_COLUMNS if k in row}
            if found:
                states[row["#row"]] = found
        else:
            pending.append(row)
    return states, pending


# The columns sacct adds to a row (see hydra_ledger.load.slurm).
SCHEDULER_COLUMNS = ("slurm.state", *slurm.USAGE_COLUMNS)


def column_order(table: pa.Table, keep: np.ndarray | None, layouts: list[list[str]],
                 states: dict[int, dict[str, Any]], pending: list[dict[str, Any]]) -> list[str]:
    """The column order of the frame: base, then groups, each in first-seen order."""
    from hydra_ledger.load import _order_columns
    from hydra_ledger.record.rows import BASE_COLUMNS

    names: dict[str, None] = dict.fromkeys(BASE_COLUMNS)
    if table.num_rows:
        ids = table.column(LAYOUT).to_numpy()
        positions = np.flatnonzero(keep) if keep is not None else np.arange(len(ids))
        uniq, first = np.unique(ids[positions], return_index=True)
        events = sorted([(int(positions[f]), 0, int(u)) for u, f in zip(uniq, first)]
                        + [(i, 1, n) for n, i in enumerate(states) if keep is None or keep[i]])
        added = list(states.values())
        for _pos, kind, layout in events:
            names.update(dict.fromkeys(layouts[layout] if kind == 0 else added[layout]))
    for row in pending:
        names.update(dict.fromkeys(row))
    return _order_columns(list(names))


def sort_order(table: pa.Table) -> np.ndarray:
    """Row positions by start time (stable, missing last), as the frame is sorted."""
    column = table.column("started_at") if "started_at" in table.column_names else None
    if column is not None and column.type != pa.null() and not pa.types.is_timestamp(column.type):
        # times stored as text (rows check them: never expected): parsed as the frame parses them
        times = pd.to_datetime(pd.Series(_values(column), dtype=object), utc=True, format="ISO8601", errors="coerce")
        table = pa.table({"started_at": pa.array(times.astype("datetime64[ns, UTC]"))})
    return start_order(table)


class Columns:
    """Typed pandas columns for chosen rows, typed as load._typed types them over all rows."""

    def __init__(self, table: pa.Table, statuses: np.ndarray, states: dict[int, dict[str, Any]],
                 pending: list[dict[str, Any]],
                 rows: np.ndarray, pend_rows: np.ndarray) -> None:
        self.table = table
        self.statuses = statuses  # status codes, by table position (see derive_statuses)
        self.states = states  # {row: the columns sacct gave it}
        self.scheduled = frozenset(name for found in states.values() for name in found)
        self.pending = pending  # all PENDING rows: they count in every column's dtype
        self.rows = rows  # table positions of the frame's rows, in frame order
        self.pend_rows = pend_rows  # then these PENDING rows
        self.cache: dict[str, pd.Series] = {}
        self._identity: bool | None = None
        # a set: `name in table.column_names` builds the list of names at each call, and once per
        # column that made a 10,000-key config load in 42 s instead of a fraction of one
        self.names = frozenset(table.column_names)

    def series(self, name: str) -> pd.Series:
        series = self.cache.get(name)
        if series is None:
            series = self.cache[name] = self._build(name)
        return series

    def _build(self, name: str) -> pd.Series:
        from hydra_ledger.load import _typed

        pend = [row.get(name) for row in self.pending]
        n = self.table.num_rows
        if name == "status":
            # by codes: pd.Categorical hashes 100,000 strings (36 ms); what is no status is missing (-1)
            pend_codes = np.array([status_code(pend[i]) for i in self.pend_rows], np.int8)
            codes = np.concatenate([self.statuses[self.rows], pend_codes])
            return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(list(STATUSES))))
        if name in self.scheduled:
            column = self.table.column(name).to_pylist() if name in self.names else [None] * n
            for i, found in self.states.items():
                if name in found:
                    column[i] = found[name]
            return _typed(column + pend, name).iloc[self._index()].reset_index(drop=True)
        column = self.table.column(name) if name in self.names else pa.chunked_array([pa.nulls(n)])
        kind = _NATIVE.get(column.type)
        pend_kinds = {type(v) for v in pend if v is not None}
        pend_missing = any(v is None for v in pend)
        chosen = [pend[i] for i in self.pend_rows]
        if pa.types.is_timestamp(column.type) and not pend_kinds:
            taken = self._take(column).to_pandas()
            series = pd.Series(taken, dtype="datetime64[ns, UTC]").reset_index(drop=True)
            if chosen:
                extra = pd.Series([pd.NaT] * len(chosen), dtype="datetime64[ns, UTC]")
                series = pd.concat([series, extra], ignore_index=True)
            return series
        if column.type == pa.null() and not pend_kinds:
            return pd.Series([None] * (len(self.rows) + len(chosen)), dtype=object)
        if kind is not None and pend_kinds <= {kind}:
            has_missing = column.null_count > 0 or pend_missing
            taken = self._take(column)
            return _from_native(taken, kind, has_missing, chosen)
        # JSON texts, text-typed times, or types mixed with PENDING rows': decode all, type as load._typed does
        kinds: set[type] = set()
        values = decode(column, kinds) if column.type == JSON_TYPE else column.to_pylist()
        if kinds - {bool, int, float} and name not in TIME_COLUMNS:  # lists, mappings, mixed: objects as they are
            series = pd.Series(values + pend, dtype=object)
        else:
            series = _typed(values + pend, name)
        if self._identical() and not len(self.pend_rows) and not pend:
            return series
        return series.iloc[self._index()].reset_index(drop=True)

    def size(self) -> int:
        """The number of rows of the frame."""
        return len(self.rows) + len(self.pend_rows)

    # Below this many columns of one native type, converting them one by one costs as little.
    BULK_MIN = 64

    def bulk(self, names: Sequence[str]) -> list[pd.DataFrame]:
        """Native number and boolean columns among ``names`` as frames, a type at a time: a
        10,000-key config is then 10,000 columns converted in one call, not 10,000 (0.6 s)."""
        if self.pending or len(names) < self.BULK_MIN:
            return []
        groups: dict[tuple[type, bool], list[str]] = {}
        for name in names:
            if name in self.cache or name not in self.names or name == "status" or name in self.scheduled:
                continue
            column = self.table.column(name)
            kind = _NATIVE.get(column.type)
            if kind is int or kind is float or kind is bool:
                groups.setdefault((kind, kind is not float and column.null_count > 0), []).append(name)
        parts = []
        size = len(self.rows)
        index = pd.RangeIndex(size)
        for (kind, missing), group in groups.items():
            if len(group) < self.BULK_MIN:
                continue
            table = self.table.select(group)
            if not self._identical():
                table = table.take(pa.array(self.rows, pa.int64()))
            # all the columns end to end in one array: converted in one call, then cut in rows of a matrix
            whole = pa.concat_arrays([c.combine_chunks() if c.num_chunks != 1 else c.chunk(0) for c in table.columns])
            if not missing:  # one 2-D block, typed as _from_native types a column
                matrix = whole.to_numpy(zero_copy_only=False).reshape(len(group), size)
                if kind is float:
                    matrix = matrix.astype("float64", copy=False)
                parts.append(pd.DataFrame(matrix.T, columns=group, index=index, copy=False))
                continue
            filled = whole.fill_null(False if kind is bool else 0)
            values = filled.to_numpy(zero_copy_only=False).reshape(len(group), size)
            mask = whole.is_null().to_numpy(zero_copy_only=False).reshape(len(group), size)
            make = pd.arrays.BooleanArray if kind is bool else pd.arrays.IntegerArray
            parts.append(pd.DataFrame({name: make(values[i], mask[i]) for i, name in enumerate(group)},
                                      columns=group, index=index, copy=False))
        return parts

    def _identical(self) -> bool:
        if self._identity is None:
            self._identity = len(self.rows) == self.table.num_rows and bool(
                (self.rows == np.arange(len(self.rows))).all())
        return self._identity

    def _take(self, column: pa.ChunkedArray) -> pa.Array:
        if self._identical():
            return column.combine_chunks()
        return column.take(pa.array(self.rows, pa.int64())).combine_chunks()

    def _index(self) -> np.ndarray:
        return np.concatenate([self.rows, self.table.num_rows + self.pend_rows]).astype(np.int64)


def _values(column: pa.ChunkedArray) -> list[Any]:
    return decode(column) if column.type == JSON_TYPE else column.to_pylist()


def decode(column: pa.ChunkedArray, kinds: set[type] | None = None) -> list[Any]:
    """A column of JSON texts as Python values, each row its own object (as if parsed row by row).

    Rows mostly repeat a few texts (overrides, lists in configs): each distinct text is parsed
    once, and rows get copies; nested values are parsed per row. ``kinds`` gets the types of
    the values (None left out).
    """
    encoded = column.combine_chunks().dictionary_encode()
    texts = encoded.dictionary.to_pylist()
    try:
        unique = loads(("[" + ",".join(texts) + "]").encode()) if texts else []
    except ValueError:  # a damaged text: parse one by one
        unique = [loads(t) for t in texts]
    indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    shared = np.empty(len(unique) + 1, dtype=object)  # the last one, None, is what -1 takes
    for i, value in enumerate(unique):
        shared[i] = value
    values = shared[indices]
    if kinds is not None:
        kinds.update(type(v) for v in unique if v is not None)
    # mutable values: each row gets its own copy, flat ones by a shallow copy (in C), nested
    # ones parsed again; one pass over the rows, whatever the number of distinct texts. Each
    # row's copier goes by its place in _COPIERS: numbers compare in C, objects one by one.
    copiers = np.array([_COPIERS.index(_copier(value)) for value in unique] + [0], np.int8)  # last: a missing row's
    row_copiers = copiers[indices]
    out: list[Any] = values.tolist()
    for copier in (list, dict):  # list.copy or dict.copy (as list(v) and dict(v) did), mapped in C
        rows = np.flatnonzero(row_copiers == _COPIERS.index(copier))
        if len(rows) == len(out):
            out = list(map(copier.copy, out))
        elif len(rows):
            for row, value in zip(rows.tolist(), map(copier.copy, values[rows].tolist())):
                out[row] = value
    for row in np.flatnonzero(row_copiers == _COPIERS.index(loads)).tolist():
        out[row] = loads(texts[indices[row]])
    return out


# What :func:`_copier` answers, numbered: None (immutable, shared), list, dict, parse again.
_COPIERS: tuple[Any, ...] = (None, list, dict, loads)


def _copier(value: Any) -> Any:
    """How a row gets its own copy of a parsed value: None (immutable), list, dict, or parse again."""
    if isinstance(value, list):
        return list if all(not isinstance(v, (list, dict)) for v in value) else loads
    if isinstance(value, dict):
        return dict if all(not isinstance(v, (list, dict)) for v in value.values()) else loads
    return None


def _from_native(taken: pa.Array, kind: type, has_missing: bool, pend: list[Any]) -> pd.Series:
    mask = taken.is_null().to_numpy(zero_copy_only=False) if taken.null_count else None
    if pend:
        pend_mask = np.array([v is None for v in pend])
        mask = np.concatenate([mask if mask is not None else np.zeros(len(taken), bool), pend_mask])
    if kind is bool or kind is int:
        filler = False if kind is bool else 0
        values = taken.fill_null(filler).to_numpy(zero_copy_only=False)
        if pend:
            values = np.concatenate([values, np.array([filler if v is None else v for v in pend], values.dtype)])
        if has_missing:
            if mask is None:
                mask = np.zeros(len(values), bool)
            array = pd.arrays.BooleanArray(values, mask) if kind is bool else pd.arrays.IntegerArray(values, mask)
            return pd.Series(array)
        return pd.Series(values, dtype=bool if kind is bool else "int64")
    if kind is float:
        values = taken.to_numpy(zero_copy_only=False).astype("float64")
        if pend:
            values = np.concatenate([values, np.array([np.nan if v is None else v for v in pend], "float64")])
        return pd.Series(values, dtype="float64", copy=False)  # astype copied: not another copy (pandas 3)
    # text: each distinct string becomes one Python object, shared by its rows (as pyarrow's
    # deduplicate_objects): fast, and small when hosts, branches, names repeat
    # (mostly distinct texts, as run ids and paths, are converted directly: hashing them gains nothing)
    sample = taken.slice(0, 1024)
    sample_texts = sample.dictionary_encode().dictionary
    if len(taken) > 2 * len(sample) and len(sample_texts) > len(sample) // 2:
        values = taken.to_numpy(zero_copy_only=False)
    elif taken.null_count == len(taken):
        values = np.full(len(taken), None, dtype=object)
    elif len(sample_texts) == 1 and pc.all(pc.equal(taken, sample_texts[0])).as_py():
        # one text in every row that has one (a host, a commit, a config value never swept):
        # a comparison, not a hash per row
        values = np.empty(len(taken), dtype=object)
        values[:] = sample_texts[0].as_py()
        if taken.null_count:
            values[taken.is_null().to_numpy(zero_copy_only=False)] = None
    else:
        encoded = taken.dictionary_encode()
        unique = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
        values = unique[encoded.indices.fill_null(len(unique) - 1).to_numpy(zero_copy_only=False)]
    if pend:
        values = np.concatenate([values, np.array(pend, dtype=object)])
    return pd.Series(values, dtype=object, copy=False)  # made here: not copied again (pandas 3 copies by default)


def build(indexes: Sequence[RootIndex], *, now: float, stale_after: float | None, include_debug: bool,
          status: Sequence[str] | None, columns: Sequence[str] | None, where: str | None,
          needed: Sequence[str] = (), scheduler: bool = True, usage: bool = True) -> pd.DataFrame:
    """The frame of the indexed rows of ``indexes``, filtered and narrowed as asked.

    ``scheduler``: ask sacct about in-doubt jobs and add PENDING rows (see :mod:`hydra_ledger.load.slurm`);
    ``usage``: in the same call, about finished jobs' efficiency too.
    """
    with no_gc():
        return _build(indexes, now=now, stale_after=stale_after, include_debug=include_debug, status=status,
                      columns=columns, where=where, needed=needed, scheduler=scheduler, usage=usage)


def _build(indexes: Sequence[RootIndex], *, now: float, stale_after: float | None, include_debug: bool,
           status: Sequence[str] | None, columns: Sequence[str] | None, where: str | None,
           needed: Sequence[str], scheduler: bool, usage: bool) -> pd.DataFrame:
    table, layouts = combine(indexes)
    statuses = derive_statuses(table, now, stale_after)
    states, pending = refine(indexes, table, statuses, usage) if scheduler else ({}, [])
    keep = None
    if not include_debug and "debug" in table.column_names:
        flags = table.column("debug")
        if flags.type == pa.bool_():
            keep = ~pc.fill_null(flags, False).to_numpy(zero_copy_only=False)
        else:
            keep = np.array([v != "true" for v in flags.to_pylist()], dtype=bool)
    if keep is not None:  # rows left out count nowhere (dtypes, columns), as if never loaded
        positions = np.flatnonzero(keep)
        table = table.take(pa.array(positions, pa.int64()))
        statuses = statuses[positions]
        where_ = {int(i): n for n, i in enumerate(positions)}
        states = {where_[i]: s for i, s in states.items() if i in where_}
    names = column_order(table, None, layouts, states, pending)
    rows = sort_order(table)
    every = Columns(table, statuses, states, pending, rows, np.arange(len(pending)))
    mask = np.ones(len(rows) + len(pending), dtype=bool)
    if status is not None:
        mask &= every.series("status").isin(list(status)).to_numpy()
    if where:
        quoted, used = referenced(where, names)
        small = pd.DataFrame({n: every.series(n) for n in used}, columns=used)
        if len(small):
            try:
                result = small.eval(quoted, engine="python")
            except Exception as exc:  # noqa: BLE001 - pandas raises many types for a bad expression
                raise ValueError(f"hydra-ledger: where={where!r} failed: {type(exc).__name__}: {exc}") from None
            if not isinstance(result, pd.Series) or not pd.api.types.is_bool_dtype(result.dtype):
                raise ValueError(f"hydra-ledger: where={where!r} must be a condition (true or false per run), "
                                 "e.g. \"cfg.lr > 0.01 and status == 'COMPLETED'\"")
            mask &= result.fillna(False).astype(bool).to_numpy()
    wanted = names if columns is None else choose(names, columns)
    wanted += [n for n in needed if n in names and n not in wanted]
    if mask.all():
        chosen = every
    else:  # only the kept rows are turned into pandas
        select = np.flatnonzero(mask)
        chosen = Columns(table, statuses, states, pending, rows[select[select < len(rows)]],
                         select[select >= len(rows)] - len(rows))
        for name, series in every.cache.items():
            chosen.cache[name] = series.iloc[select].reset_index(drop=True)
    parts = chosen.bulk(wanted)
    done = {name for part in parts for name in part.columns}
    rest = [name for name in wanted if name not in done]
    data = {name: chosen.series(name) for name in rest}
    # every series is indexed 0..n-1: giving that index spares pandas the union of 10,000 indexes
    # (1.5 s of a warm load of a 10,000-key config)
    frame = pd.DataFrame(data, columns=rest, index=pd.RangeIndex(chosen.size()), copy=False)
    if parts:
        frame = pd.concat([frame, *parts], axis=1)[wanted]
    return frame


def never_started(indexes: Sequence[Any], frame: pd.DataFrame, include_debug: bool) -> dict[str, list[dict[str, Any]]]:
    """The MISSING jobs of each sweep: listed in its record, but neither recorded nor PENDING in ``frame``.

    The sweep records come from :func:`sweep_candidates`, which the loader
    reads for PENDING rows: only sweeps with jobs not loaded yet (none once all have run)."""
    memo = realpath_memo(indexes)
    seen: dict[str, set[int]] = {}
    if len(frame) and "sweep" in frame.columns and "job_num" in frame.columns:
        nums = frame["job_num"]
        by_sweep: dict[Any, set[int]] = {}  # by the path as recorded first: no call per row (100,000 runs: 0.08 s)
        for sweep, num, known in zip(frame["sweep"].tolist(), nums.tolist(), nums.notna().tolist()):
            if known:
                found = by_sweep.get(sweep)
                if found is None:
                    found = by_sweep[sweep] = set()
                found.add(int(num))
        for sweep, found in by_sweep.items():
            if isinstance(sweep, str) and sweep:
                seen.setdefault(realpath(sweep, memo), set()).update(found)  # a sweep's path resolved once
    return missing_by_sweep(indexes, seen, include_debug, memo)
