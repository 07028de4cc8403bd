"""The indexed rows of several roots as one Arrow table, and the sweeps their jobs belong to.

Arrow and numpy only: the command line's quick paths use it without paying for pandas.
"""
from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hydra_ledger.load import kernels
from hydra_ledger.load.encode import LAYOUT, concat
from hydra_ledger.load.index import RootIndex
from hydra_ledger.load.walk import under
from hydra_ledger.record.schema import RecordError


def combine(indexes: Sequence[RootIndex]) -> tuple[pa.Table, list[list[str]]]:
    """One table (roots in order, a job listed under two roots kept once) and its layouts."""
    if len(indexes) == 1:
        return indexes[0].table, indexes[0].layouts
    layouts: list[list[str]] = []
    tables = []
    for index in indexes:
        remap = []
        for keys in index.layouts:
            if keys not in layouts:
                layouts.append(keys)
            remap.append(layouts.index(keys))
        t = index.table
        if t.num_rows:
            ids = np.array(remap, dtype=np.int32)[as_numpy(t.column(LAYOUT))]
            t = t.set_column(t.column_names.index(LAYOUT), LAYOUT, from_numpy(ids, pa.int32()))
        tables.append(t)
    table = concat(tables)
    if table.num_rows:
        seen: set[str] = set()
        keep = []
        for path in table.column("path").to_pylist():
            keep.append(path not in seen)
            seen.add(path)
        if not all(keep):
            table = kernels.filter(table, from_numpy(np.array(keep, dtype=bool), pa.bool_()))
    return table, layouts


def realpath(path: str, memo: dict[str, str]) -> str:
    """``os.path.realpath``, resolving each path and parent once: 1,000 sweeps in one dir cost 1,000
    lstats, not 5,000, and a sweep met as a job's and as an indexed one costs one."""
    known = memo.get(path)
    if known is not None:
        return known
    parent, name = os.path.split(path)
    if not name or not parent or parent == path:
        real = os.path.realpath(path)
    else:
        real_parent = memo.get(parent)
        if real_parent is None:
            real_parent = realpath(parent, memo)
        if name in (".", "..") or os.path.islink(path):
            real = os.path.realpath(path)
        else:
            real = os.path.join(real_parent, name)
    memo[path] = real
    return real


def realpath_memo(indexes: Sequence[RootIndex]) -> dict[str, str]:
    """A memo for :func:`realpath` that knows the indexes' plain dirs (sweeps among them): the walk
    steps into no symlink, so each is where its name says below its root's real path, with no
    lstat of its own (1,000 sweeps: 1,000 lstats fewer for every view)."""
    memo: dict[str, str] = {}
    for index in indexes:
        root = str(Path(index.root))
        real_root = os.path.realpath(root)
        memo[root] = real_root
        for rel in index.dirs:
            if rel:
                memo[under(root, rel)] = under(real_root, rel)
    return memo


def sweep_candidates(indexes: Sequence[RootIndex], started: dict[str, set[int]],
                     memo: dict[str, str]) -> list[tuple[Path, dict[str, Any]]]:
    """The sweep records the plain loader would consult: the loaded jobs' sweeps, and sweeps
    in the roots down to two levels (where a sweep with no started job lives)."""
    import logging

    from hydra_ledger.record.paths import SweepPaths
    from hydra_ledger.record.schema import SWEEP_SCHEMA, read_record

    log = logging.getLogger("hydra_ledger.load.slurm")
    candidates: dict[str, tuple[Path, Any]] = {}
    complete: set[str] = set()  # indexed sweeps whose every job has a record: nothing to read
    for index in indexes:
        root = str(Path(index.root))
        for rel, (_sig, nums, error) in index.sweeps.items():
            where = under(root, rel)  # strings: a Path per sweep cost more than the rest
            key = realpath(where, memo)
            if key in started or rel.count("/") < 2:
                if error is None and nums is not None and set(nums) <= started.get(key, set()):
                    complete.add(key)  # no PENDING row can come of it
                    continue
                candidates.setdefault(key, (Path(where), error))
    for key in started:
        if key not in candidates and key not in complete and SweepPaths(key).record.is_file():
            candidates[key] = (Path(key), None)
    out = []
    for key in sorted(candidates):
        sweep_dir, error = candidates[key]
        if error is not None:
            log.warning("%s", error)
            continue
        try:
            out.append((sweep_dir, read_record(SweepPaths(sweep_dir).record, SWEEP_SCHEMA)))
        except RecordError as exc:
            log.warning("%s", exc)
    return out


def missing_by_sweep(indexes: Sequence[RootIndex], seen: dict[str, set[int]], include_debug: bool,
                     memo: dict[str, str], candidates: list[tuple[Path, dict[str, Any]]] | None = None,
                     ) -> dict[str, list[dict[str, Any]]]:
    """``{sweep dir (real path): its MISSING jobs}``: listed in its record, but not among the
    ``seen`` job numbers (recorded or PENDING), of the sweeps :func:`sweep_candidates` reads
    (``candidates``: what it gave for these ``seen``)."""
    from hydra_ledger.record.sweep_jobs import missing_jobs

    out: dict[str, list[dict[str, Any]]] = {}
    for sweep_dir, record in sweep_candidates(indexes, seen, memo) if candidates is None else candidates:
        if record.get("debug") and not include_debug:
            continue  # its jobs are hidden too
        key = realpath(str(sweep_dir), memo)
        jobs = missing_jobs(record.get("jobs"), seen.get(key, set()))
        if jobs:
            out[key] = jobs
    return out


def started_jobs(table: pa.Table, memo: dict[str, str]) -> dict[str, set[int]] | None:
    """``{sweep dir (real path): the job numbers it has rows of}``; None when a row's ``sweep`` is
    not text or its ``job_num`` not an integer (damaged records: the caller decodes those)."""
    started: dict[str, set[int]] = {}
    if not table.num_rows or "sweep" not in table.column_names or "job_num" not in table.column_names:
        return started
    pairs = kernels.drop_null(table.select(["sweep", "job_num"]))
    if not pairs.num_rows:
        return started
    if not pa.types.is_string(pairs.column("sweep").type) or not pa.types.is_integer(pairs.column("job_num").type):
        return None
    for sweep, nums in nums_by_sweep(pairs):
        if sweep:
            started.setdefault(realpath(sweep, memo), set()).update(nums)
    return started


def start_order(table: pa.Table) -> np.ndarray:
    """Row positions by start time, stable, missing times last: the frame's row order. The
    ``started_at`` column, if any, must be one of timestamps (or of nulls)."""
    if "started_at" not in table.column_names or table.column("started_at").type == pa.null():
        return np.arange(table.num_rows)
    ticks = as_numpy(kernels.cast(table.column("started_at"), pa.int64()), missing=np.iinfo(np.int64).max)
    return np.argsort(ticks, kind="stable")


def nums_by_sweep(pairs: pa.Table) -> list[tuple[str, list[int]]]:
    """``(sweep, job nums)`` of each run of equal sweeps in (sweep, job_num) rows without nulls: rows in
    walk order come a sweep at a time (Arrow's group_by with a distinct count took 60 ms of a warm
    100k-run load); a sweep met in several runs comes once per run."""
    sweeps = pairs.column("sweep").combine_chunks()
    if not len(sweeps):
        return []
    changed = kernels.indices_nonzero(kernels.not_equal(sweeps.slice(1), sweeps.slice(0, len(sweeps) - 1)))
    starts = np.concatenate([[0], as_numpy(changed).astype(np.int64) + 1])
    ends = [*starts[1:].tolist(), len(sweeps)]
    nums = as_numpy(pairs.column("job_num"))
    names = kernels.take(sweeps, from_numpy(starts, pa.int64())).to_pylist()
    return [(name, nums[a:b].tolist()) for name, a, b in zip(names, starts.tolist(), ends)]


# pyarrow imports pandas (0.3-0.5 s) for to_numpy() and for pa.array() of anything, numpy arrays
# included; a view of an array's buffer, and an array made on a numpy buffer, need neither.
_NUMPY_TYPES = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
                pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64,
                pa.float32(): np.float32, pa.float64(): np.float64}


def as_numpy(array: pa.Array | pa.ChunkedArray, missing: Any = None) -> np.ndarray:
    """A numeric or boolean Arrow array as numpy (a view of its buffer where it can be); its
    nulls become ``missing``, which an array with nulls must be given."""
    if isinstance(array, pa.ChunkedArray):
        array = array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
    if array.null_count and missing is None:
        raise ValueError(f"as_numpy: {array.null_count} nulls in an array of {array.type}, and no value for them")
    data = array.buffers()[1]
    if pa.types.is_boolean(array.type):
        bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little") if data is not None else np.zeros(0)
        values = bits[array.offset:array.offset + len(array)].astype(bool)
    else:
        dtype = np.dtype(_NUMPY_TYPES[array.type])
        values = np.frombuffer(data, dtype, count=len(array), offset=array.offset * dtype.itemsize) \
            if len(array) else np.zeros(0, dtype)
    if array.null_count:  # the buffer holds some value under each null: replaced, in a copy
        values = values.copy()
        values[as_numpy(kernels.is_null(array))] = missing
    return values


def from_numpy(values: np.ndarray, type: pa.DataType) -> pa.Array:
    """A numeric or boolean Arrow array of ``type`` on the values of a 1-D numpy array."""
    if pa.types.is_boolean(type):
        data = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    else:
        data = np.ascontiguousarray(values, dtype=_NUMPY_TYPES[type])
    return pa.Array.from_buffers(type, len(values), [None, pa.py_buffer(data)])


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def timestamps(column: pa.Array | pa.ChunkedArray) -> list[_dt.datetime | None]:
    """A timestamp column's values as UTC datetimes, to the microsecond (``to_pylist`` makes pandas
    Timestamps of nanosecond ones, importing pandas)."""
    per_second = _PER_SECOND[column.type.unit]
    out: list[_dt.datetime | None] = []
    for ticks in kernels.cast(column, pa.int64()).to_pylist():
        if ticks is None:
            out.append(None)
        else:
            seconds, rest = divmod(ticks, per_second)
            out.append(_dt.datetime.fromtimestamp(seconds, _dt.timezone.utc)
                       + _dt.timedelta(microseconds=rest * 1_000_000 // per_second))
    return out
