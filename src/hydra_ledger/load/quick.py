"""Indexed runs ready for views that need no DataFrame: ``ls``'s default listing, ``status``'s counts.

Importing pandas costs a command 0.3-0.5 s, and a 100,000-run frame as much again; the index
holds what these views show. :func:`settled` loads the indexes, derives each row's status (a
RUNNING job's heartbeat, as the loader does), and leaves debug runs out. It returns None when
the loader's full judgement is needed, and the command then loads the frame as before: a Slurm
job in doubt (sacct decides), a sweep with jobs still to come (PENDING rows), job numbers or
debug flags of a type the frame would take from Python.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from hydra_ledger.load import index as _index
from hydra_ledger.load import kernels, slurm
from hydra_ledger.load.codes import STATUS_CODES, derive_statuses
from hydra_ledger.load.roots import default_roots
from hydra_ledger.load.tables import (
    as_numpy,
    combine,
    from_numpy,
    missing_by_sweep,
    realpath_memo,
    started_jobs,
    sweep_candidates,
)

if TYPE_CHECKING:
    from hydra_ledger.load.walk import Progress

_IN_DOUBT = [STATUS_CODES[s] for s in slurm.IN_DOUBT]
# the sweeps' started job numbers, the sweep records read for them, the realpath memo
_Sweeps = tuple[dict[str, set[int]], list[tuple[Path, dict[str, Any]]], dict[str, str]]


@dataclass
class Settled:
    """The rows a view shows (debug runs left out unless asked) and their status codes."""

    indexes: list[_index.RootIndex]
    table: pa.Table
    layouts: list[list[str]]
    codes: np.ndarray  # per row: its place in STATUSES, -1 for none (see hydra_ledger.load.codes)
    include_debug: bool
    sweeps: _Sweeps | None = None  # when no row was left out (else found again for the rows kept)

    def report_broken(self) -> None:
        """Warn of the broken records once the view is shown from here (the frame's load warns of them otherwise)."""
        _index.report_broken(self.indexes, "warn")

    def missing(self) -> dict[str, list[dict[str, Any]]]:
        """The MISSING jobs of each sweep, as :func:`hydra_ledger.load.load_runs_and_missing` gives them."""
        if self.sweeps is not None:
            seen, candidates, memo = self.sweeps
            return missing_by_sweep(self.indexes, seen, self.include_debug, memo, candidates)
        memo = realpath_memo(self.indexes)
        return missing_by_sweep(self.indexes, started_jobs(self.table, memo) or {}, self.include_debug, memo)


def settled(paths: Sequence[str], *, include_debug: bool = False, progress: Progress | None = None) -> Settled | None:
    """The runs under ``paths`` (default roots when empty), or None when the frame must be loaded.
    Their broken records are left to :meth:`Settled.report_broken`: a view that falls back warns once."""
    roots = default_roots() if not paths else list(paths)
    now = time.time()
    indexes = _index.load_roots(roots, now, "auto", progress)
    table, layouts = combine(indexes)
    codes = derive_statuses(table, now, None)
    if np.isin(codes, _IN_DOUBT).any() and "slurm.job_id" in table.column_names and shutil.which("sacct"):
        return None
    memo = realpath_memo(indexes)
    started = started_jobs(table, memo)
    if started is None:
        return None
    candidates = sweep_candidates(indexes, started, memo)
    if slurm.pending_rows([], [], candidates, started):
        return None
    sweeps: _Sweeps | None = (started, candidates, memo)
    if not include_debug and "debug" in table.column_names:
        flags = table.column("debug")
        if flags.type == pa.bool_():
            keep = as_numpy(kernels.or_kleene(kernels.is_null(flags), kernels.invert(flags)), missing=False)  # not True
            if not keep.all():
                codes, table, sweeps = codes[keep], kernels.filter(table, from_numpy(keep, pa.bool_())), None
        elif flags.type != pa.null():
            return None
    return Settled(indexes, table, layouts, codes, include_debug, sweeps)
