"""The loader's public API: ``load_runs``, ``load_metrics``, ``only_changed``.

Every load goes through the index of each root (:mod:`hydra_ledger.load.index`), which finds
and reads only new and changed records; :mod:`hydra_ledger.load.frame` turns its rows into the
DataFrame. Its functions import pandas when they make a frame (the job side never does).
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hydra_ledger.load.roots import default_roots
from hydra_ledger.record.files import MAX_METRICS_BYTES, read_regular_file
from hydra_ledger.record.paths import RunPaths
from hydra_ledger.record.rows import BASE_COLUMNS, GROUPS
from hydra_ledger.record.schema import (
    STATUSES,
    LedgerLoadWarning,
    RecordError,
    read_record,
    unreadable,
)

if TYPE_CHECKING:  # pandas is imported by the functions that make frames: resolving a run id needs none
    import pandas as pd

    from hydra_ledger.load.walk import Progress

Errors = Literal["warn", "raise", "ignore"]


def _handle(exc: RecordError, errors: Errors) -> None:
    if errors == "raise":
        raise exc
    if errors == "warn":
        warnings.warn(str(exc), LedgerLoadWarning, stacklevel=4)


def read_records(paths: Iterable[str | os.PathLike[str]], errors: Errors = "warn",
                 run_id_prefix: str | None = None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """``(record_file, record)`` of each job the index of ``paths`` holds, in walk order, read whole
    (for what needs more than a row: the journal, a resume); broken records are reported per
    ``errors`` as :func:`load_runs` reports them. ``run_id_prefix``: only the jobs whose run id
    starts with it, found in the index without reading the others."""
    from hydra_ledger.load import index as _index
    from hydra_ledger.load.encode import REL
    from hydra_ledger.load.index import report_broken

    given = list(paths)
    indexes = _index.load_roots(given, time.time())
    report_broken(indexes, errors)
    seen: set[str] = set()
    for path, index in zip(given, indexes):
        # job dirs are named below the path as the user gave it (relative stays relative)
        base = os.fspath(path) if os.path.isdir(path) else os.fspath(RunPaths.from_record_file(path).job_dir)
        rels = index.table.column(REL).to_pylist() if run_id_prefix is None else _with_run_id(index, run_id_prefix)
        for rel in rels:
            paths_of_job = RunPaths(os.path.join(base, rel) if rel else base)
            key = os.path.abspath(paths_of_job.job_dir)
            if key in seen:  # overlapping roots index a job twice
                continue
            seen.add(key)
            try:
                yield paths_of_job.record, read_record(paths_of_job.record)
            except RecordError as exc:  # changed since it was indexed
                _handle(exc, errors)


def _with_run_id(index: Any, prefix: str) -> list[str]:
    """The job dirs (relative) of ``index`` whose run id starts with ``prefix``. The prefix goes to
    Arrow as an option, not a value: pyarrow imports pandas to convert a value, and ``show ID``
    needs no pandas."""
    import pyarrow as pa

    from hydra_ledger.load import kernels
    from hydra_ledger.load.encode import REL

    run_ids = index.table.column("run_id")
    if not pa.types.is_string(run_ids.type) and not pa.types.is_large_string(run_ids.type):  # none recorded
        return [rel for rel, run_id in zip(index.table.column(REL).to_pylist(), run_ids.to_pylist())
                if str(run_id or "").startswith(prefix)]
    matching = kernels.starts_with(run_ids, options=kernels.MatchSubstringOptions(prefix))
    rows = kernels.indices_nonzero(kernels.and_kleene(kernels.is_valid(matching), matching))
    return list(kernels.take(index.table.column(REL), rows).to_pylist())


def load_runs(
    *paths: str | os.PathLike[str],
    status: str | Sequence[str] | None = None,
    errors: Errors = "warn",
    backfill: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    stale_after: float | None = None,
    include_debug: bool = False,
    columns: Sequence[str] | None = None,
    where: str | None = None,
    cache: Literal["auto", "rebuild", "off"] = "auto",
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Load every run and sweep job under ``paths`` into one DataFrame, a row per job.

    Parameters
    ----------
    *paths
        Job dirs, sweep dirs, or roots holding many (searched recursively), e.g.
        ``"multirun"``, ``"outputs"``. Default: ``outputs`` and ``multirun`` under the cwd,
        ``$HYDRA_LEDGER_ROOTS`` or ``[tool.hydra-ledger] roots`` of ``pyproject.toml``, and the
        run dirs the project's launches registered, those that exist (see
        :mod:`hydra_ledger.load.roots`).
    status
        Keep only jobs with this status (or any of these statuses), e.g. ``"COMPLETED"``.
    errors
        What a broken record (truncated, corrupt, foreign, unreadable, newer schema) does:
        ``"warn"`` skips it with a warning naming the file, ``"raise"`` raises
        :class:`~hydra_ledger.record.schema.RecordError`, ``"ignore"`` skips it silently. A broken
        record never hides the others.
    backfill
        Values that runs recorded before a config key existed implicitly had, e.g.
        ``{"model.dropout": 0.0}`` fills ``cfg.model.dropout`` where it is missing. Keys may
        be given with or without the ``cfg.`` prefix.
    tags
        Keep only runs carrying all of these tags.
    stale_after
        Seconds without heartbeat after which a RUNNING job is reported ``DIED``; default
        per run, ``max(3 * heartbeat_s, heartbeat_s + 5)``.
    include_debug
        Also load debug runs (launched with ``hydra.callbacks.ledger.debug=true``); they
        then have ``debug`` set to True.
    columns
        Only these columns, as names or glob patterns, e.g. ``["cfg.model.*", "summary.*"]``
        (in the usual column order); only they are read from the index. A pattern matching no
        column raises ValueError naming close ones.
    where
        Keep only runs where this pandas-style expression on column names holds, e.g.
        ``"cfg.model.lr > 0.01 and summary.loss < 0.5"``; only its columns are read for all
        runs, the others just for the runs kept.
    cache
        ``"auto"`` keeps an index of each path (see :mod:`hydra_ledger.load.index`) so that later
        loads re-read only new and changed records; ``"rebuild"`` re-reads every record and
        rewrites it; ``"off"`` reads every record and writes nothing. The result is the same.
    progress
        Told how far a long load is while worker processes read records (a root read for the
        first time): called as ``progress(results, total)``, it must yield the results, e.g. a
        wrapper drawing a bar. None: silent.

    Returns
    -------
    pandas.DataFrame
        Columns ``run_id, path, sweep, job_num, status, started_at, ended_at, duration_s,
        overrides``, then ``cfg.<dotted key>``, ``choice.<group>``, ``summary.<name>``,
        ``git.<field>``, ``host.<field>``, ``slurm.<field>``, ``error.<field>``. Numbers
        stay numeric (integers with missing values are ``Int64``), booleans boolean,
        timestamps tz-aware UTC, ``status`` categorical, lists stay lists.

    Examples
    --------
    >>> import hydra_ledger
    >>> df = hydra_ledger.load_runs("multirun")                      # doctest: +SKIP
    >>> df.groupby("cfg.model.lr")["summary.val_loss"].mean()         # doctest: +SKIP
    >>> hydra_ledger.only_changed(df[df.status == "COMPLETED"])      # doctest: +SKIP
    """
    return load_table(paths, status=status, errors=errors, backfill=backfill, tags=tags, stale_after=stale_after,
                      include_debug=include_debug, columns=columns, where=where, cache=cache, progress=progress)[0]


def load_runs_and_missing(
    *paths: str | os.PathLike[str],
    include_debug: bool = False,
    columns: Sequence[str] | None = None,
    optional: Sequence[str] = (),
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, dict[str, list[dict[str, Any]]]]:
    """:func:`load_runs`, and ``{sweep dir (real path): [{"num", "overrides"}, ...]}`` of the jobs
    of known sweep job lists that never started and never will (MISSING): no record, and no
    PENDING row because their launcher is gone. ``optional``: columns kept too where they exist.
    The frame has a ``job_num`` column."""
    return load_table(paths, include_debug=include_debug, columns=columns, optional=[*optional, "job_num"],
                      progress=progress, missing=True)


def load_table(
    paths: Sequence[str | os.PathLike[str]],
    *,
    status: str | Sequence[str] | None = None,
    errors: Errors = "warn",
    backfill: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    stale_after: float | None = None,
    include_debug: bool = False,
    columns: Sequence[str] | None = None,
    where: str | None = None,
    cache: Literal["auto", "rebuild", "off"] = "auto",
    progress: Progress | None = None,
    optional: Sequence[str] = (),
    missing: bool = False,
    slurm_usage: bool = True,
) -> tuple[pd.DataFrame, dict[str, list[dict[str, Any]]]]:
    """The one loading path, behind :func:`load_runs` and the command line: the frame, and the
    MISSING jobs when ``missing``; ``optional``: columns kept too where they exist;
    ``slurm_usage``: sacct's efficiency columns of finished Slurm jobs (one sacct call; a view
    refreshed every few seconds leaves them out)."""
    import pandas as pd

    roots = default_roots() if not paths else list(paths)
    wanted = None
    if status is not None:
        wanted = [status] if isinstance(status, str) else list(status)
        unknown = sorted(set(wanted) - set(STATUSES))
        if unknown:
            raise ValueError(f"hydra-ledger: unknown status {', '.join(unknown)}; valid: {', '.join(STATUSES)}")
    now = time.time()
    from hydra_ledger.load import index as _index
    from hydra_ledger.load.frame import build, never_started
    from hydra_ledger.load.index import report_broken

    writes: list[Callable[[], None]] = []
    indexes = _index.load_roots(roots, now, cache, progress, writes)
    with _index.writing_meanwhile(writes):  # the indexes go to disk while the frame is built
        report_broken(indexes, errors)
        needed = [*optional, "tags"] if tags else list(optional)
        needed += [k if k.startswith("cfg.") else f"cfg.{k}" for k in (backfill or {})]
        frame = build(indexes, now=now, stale_after=stale_after, include_debug=include_debug, status=wanted,
                      columns=columns, where=where, needed=needed, usage=slurm_usage)
        lost = never_started(indexes, frame, include_debug) if missing else {}
    if backfill:
        for key, value in backfill.items():
            column = key if key.startswith("cfg.") else f"cfg.{key}"
            if column not in frame.columns:
                frame[column] = value
            else:
                frame[column] = frame[column].where(frame[column].notna(), value)
                frame[column] = _typed(frame[column].tolist(), column)
    if tags:
        if "tags" not in frame.columns:
            return frame.iloc[0:0], lost
        frame = frame[frame["tags"].map(lambda t: isinstance(t, list) and all(x in t for x in tags))]
    if columns is not None:
        dropped = set(needed) - set(optional)
        frame = frame[[c for c in frame.columns if c not in dropped or any(fnmatchcase(c, p) for p in columns)]]
    if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1:
        return frame, lost  # as built: a copy of 10,000 columns costs a tenth of a second
    return frame.reset_index(drop=True), lost


def _order_columns(names: list[str]) -> list[str]:
    base = list(BASE_COLUMNS)
    grouped = {g: [n for n in names if n.startswith(g + ".")] for g in GROUPS}
    rest = [n for n in names if n not in base and not any(n.startswith(g + ".") for g in GROUPS)]
    return base + [n for g in GROUPS for n in grouped[g]] + rest


def _typed(values: list[Any], name: str) -> pd.Series:
    """A column from Python values, typed: bool, int (nullable when missing), float, text, or object."""
    import pandas as pd

    if name in ("started_at", "ended_at"):
        return pd.Series(pd.to_datetime(values, utc=True, format="ISO8601"), dtype="datetime64[ns, UTC]")
    if name == "status":
        return pd.Series(pd.Categorical(values, categories=list(STATUSES)))
    present = [v for v in values if v is not None]
    has_missing = len(present) < len(values)
    if not present:
        return pd.Series(values, dtype=object)
    kinds = {type(v) for v in present}
    if kinds == {bool}:
        return pd.Series(values, dtype="boolean" if has_missing else bool)
    if kinds == {int}:
        return pd.Series(values, dtype="Int64" if has_missing else "int64")
    if kinds <= {int, float}:
        return pd.Series([float("nan") if v is None else float(v) for v in values], dtype="float64")
    if kinds == {str}:
        return pd.Series(values, dtype=object)
    return pd.Series(values, dtype=object)


def only_changed(frame: pd.DataFrame, keep: Sequence[str] = ("run_id", "status")) -> pd.DataFrame:
    """Only the columns whose values differ across rows (like ``dvc exp show --only-changed``).

    ``keep`` names columns kept regardless.
    """
    varying = [c for c in frame.columns if c in keep or _varies(frame[c])]
    return frame[varying]


def _varies(column: pd.Series) -> bool:
    if column.dtype != object:  # one Python type per typed column: pandas compares them (missing as one value)
        return column.nunique(dropna=False) > 1
    values = column.tolist()
    kinds = set(map(type, values))
    if kinds <= {str, type(None)} or kinds <= {int, type(None)}:  # the common object columns, hashed at once
        return len(set(values)) > 1
    return len({_value_key(v) for v in values}) > 1


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _value_key(value: Any) -> str:
    """Equal for values alike in type too (1, 1.0 and True apart), mappings in any key order."""
    if type(value) is list and all(type(item) in _SCALARS for item in value):
        return repr(value)  # a list of numbers or names, as most list values are: 5x cheaper than JSON
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return "<NA>" if _is_na(value) else repr(value)


def _is_na(value: Any) -> bool:
    """Missing: None, NaN, pandas' NA and NaT. pandas is asked only once it is imported: plain
    values (the index-read listing's) need none of it, and its own missing values need it loaded."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value  # NaN is the one value unequal to itself
    pd = sys.modules.get("pandas")
    if pd is None:
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


_JSON_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def load_metrics(
    *paths: str | os.PathLike[str],
    names: Sequence[str] | None = None,
    errors: Errors = "warn",
) -> pd.DataFrame:
    """Per-step metrics logged with ``log_metrics`` as a long DataFrame: run_id, step, name, value, time.

    Example: ``load_metrics("multirun").pivot_table(index="step", columns="name", values="value")``.
    """
    import pandas as pd

    roots = default_roots() if not paths else list(paths)
    run_ids, steps, metric_names, values, times = [], [], [], [], []
    wanted = set(names) if names else None
    for record_file, record in read_records(roots, errors):
        metrics_file = RunPaths.from_record_file(record_file).metrics
        try:
            lines = read_regular_file(metrics_file, MAX_METRICS_BYTES)[1].splitlines()
        except FileNotFoundError:
            continue
        except OSError as exc:
            _handle(unreadable(metrics_file, exc), errors)
            continue
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
                row_values = entry["values"]
            except (ValueError, KeyError, TypeError, RecursionError):
                if line.strip():
                    _handle(RecordError(metrics_file, f"line {number} is corrupt or truncated", "line skipped"), errors)
                continue
            if not isinstance(row_values, dict):  # hand-written or foreign: one line lost, not the load
                kind = _JSON_KINDS.get(type(row_values), type(row_values).__name__)
                _handle(RecordError(metrics_file, f"line {number}: 'values' is {kind}, expected an object",
                                    "line skipped"), errors)
                continue
            for name, value in row_values.items():
                if wanted is not None and name not in wanted:
                    continue
                run_ids.append(record.get("run_id"))
                steps.append(entry.get("step"))
                metric_names.append(name)
                values.append(value)
                times.append(entry.get("time"))
    frame = pd.DataFrame({
        "run_id": pd.Series(run_ids, dtype=object),
        "step": _typed(steps, "step") if steps else pd.Series([], dtype="Int64"),
        "name": pd.Series(metric_names, dtype=object),
        "value": _typed(values, "value") if values else pd.Series([], dtype="float64"),
        "time": pd.to_datetime(pd.Series(times, dtype="float64"), unit="s", utc=True),
    })
    return frame
