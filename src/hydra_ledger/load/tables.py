"""The indexed rows of several roots as one Arrow table, and the sweeps their jobs belong to.

Arrow and numpy only: the command line's quick paths use it without paying for pandas.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hydra_ledger.load.encode import LAYOUT, concat
from hydra_ledger.load.index import RootIndex
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
            ids = np.array(remap, dtype=np.int32)[t.column(LAYOUT).to_numpy()]
            t = t.set_column(t.column_names.index(LAYOUT), LAYOUT, pa.array(ids, pa.int32()))
        tables.append(t)
    table = concat(tables)
    if table.num_rows:
        seen: set[str] = set()
        keep = []
        for path in table.column("path").to_pylist():
            keep.append(path not in seen)
            seen.add(path)
        if not all(keep):
            table = table.filter(pa.array(keep, pa.bool_()))
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
            where = os.path.join(root, rel) if rel else root  # strings: a Path per sweep cost more than the rest
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


def nums_by_sweep(pairs: pa.Table) -> list[tuple[str, list[int]]]:
    """``(sweep, job nums)`` of each run of equal sweeps in (sweep, job_num) rows without nulls: rows in
    walk order come a sweep at a time (Arrow's group_by with a distinct count took 60 ms of a warm
    100k-run load); a sweep met in several runs comes once per run."""
    sweeps = pairs.column("sweep").combine_chunks()
    if not len(sweeps):
        return []
    changed = pc.not_equal(sweeps.slice(1), sweeps.slice(0, len(sweeps) - 1)).to_numpy(zero_copy_only=False)
    starts = np.concatenate([[0], np.flatnonzero(changed) + 1])
    ends = [*starts[1:].tolist(), len(sweeps)]
    nums = pairs.column("job_num").to_numpy()
    names = sweeps.take(pa.array(starts, pa.int64())).to_pylist()
    return [(name, nums[a:b].tolist()) for name, a, b in zip(names, starts.tolist(), ends)]
