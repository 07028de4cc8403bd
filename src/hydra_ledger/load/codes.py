"""Each row's status as a small integer code, derived from the index without pandas.

Codes, not strings: 100,000 rows are then a few vectorized steps, not passes of Python over
every row; the frame makes its categorical status column from them, ``status`` counts them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hydra_ledger.load import kernels
from hydra_ledger.load.encode import HB, JSON_TYPE
from hydra_ledger.load.tables import as_numpy, from_numpy, timestamps
from hydra_ledger.record.files import loads
from hydra_ledger.record.schema import STATUSES

STATUS_CODES = {status: code for code, status in enumerate(STATUSES)}


def derive_statuses(table: pa.Table, now: float, stale_after: float | None) -> np.ndarray:
    """Each row's status as a code (its place in ``STATUSES``, -1 for none or an unknown one):
    as indexed, but RUNNING re-derived from its heartbeat now."""
    from hydra_ledger.load.status import derive_status

    codes = status_codes(table)
    running = np.flatnonzero(codes == STATUS_CODES["RUNNING"])
    if len(running):
        rows = from_numpy(running, pa.int64())
        paths = kernels.take(table.column("path"), rows).to_pylist()
        beats = kernels.take(table.column(HB), rows).to_pylist()
        starts = _started(kernels.take(table.column("started_at"), rows)) if "started_at" in table.column_names \
            else [None] * len(running)
        for i, path, beat, start in zip(running.tolist(), paths, beats, starts):
            record = {"status": "RUNNING", "heartbeat_s": beat, "started_at": start}
            codes[i] = status_code(derive_status(record, Path(path), now, stale_after))
    return codes


def status_codes(table: pa.Table) -> np.ndarray:
    """The indexed status of each row as a code (see :func:`derive_statuses`)."""
    if "status" not in table.column_names:
        return np.full(table.num_rows, -1, np.int8)
    column = table.column("status")
    if not pa.types.is_string(column.type):  # not text in every row (damaged records): each value in turn
        values = column.to_pylist()
        if column.type == JSON_TYPE:
            values = [None if v is None else loads(v) for v in values]
        return np.fromiter((status_code(v) for v in values), np.int8, table.num_rows)
    encoded = kernels.dictionary_encode(column.combine_chunks())  # a few distinct texts: each looked up once
    lookup = np.array([status_code(s) for s in encoded.dictionary.to_pylist()] + [-1], np.int8)
    codes: np.ndarray = lookup[as_numpy(encoded.indices, missing=len(lookup) - 1)]
    return codes


def status_code(status: Any) -> int:
    """The code of a status name; -1 for anything else."""
    return STATUS_CODES.get(status, -1) if isinstance(status, str) else -1


def _started(column: pa.ChunkedArray) -> list[Any]:
    """Start times as the record has them (ISO text), from a timestamp column or one of text."""
    if pa.types.is_timestamp(column.type):
        return [None if t is None else t.isoformat() for t in timestamps(column)]
    return list(column.to_pylist())
