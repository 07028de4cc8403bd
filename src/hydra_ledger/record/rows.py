"""One job's row: its record flattened into base columns and prefixed groups, as indexed and loaded."""
from __future__ import annotations

import datetime as _dt
import math
import os
import reprlib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from hydra_ledger.record.flatten import flatten
from hydra_ledger.record.paths import LEDGER_DIR, RunPaths
from hydra_ledger.record.schema import recorded_status
from hydra_ledger.record.sidecars import annotate

BASE_COLUMNS = ["run_id", "path", "sweep", "job_num", "status", "started_at", "ended_at", "duration_s", "overrides"]
# Column groups after the base columns, in this order.
GROUPS = ("cfg", "choice", "summary", "input", "git", "host", "slurm", "resources", "optuna", "error")
_GROUP_PREFIXES = tuple(f"{group}." for group in GROUPS)
# Dotted column names made so far (see flatten): a row's keys are then shared strings, which
# also makes telling rows of the same key layout apart cheap. Bounded by the columns seen.
_NAMES: dict[str, dict[Any, str]] = {}
_NAMES_MAX = 100_000


def record_to_row(record: Mapping[str, Any], job_dir: str, ledger_names: Collection[str] | None = None,
                  date_fallback: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """One row as indexed: base columns, then ``cfg.``, ``choice.``, ``summary.`` ... prefixed groups.

    ``job_dir``: absolute, a plain string (this runs once per record on a cold load, where
    pathlib's parsing cost a third of it). A RUNNING status stays RUNNING here: it is derived
    from the heartbeat at each load. ``ledger_names``: the file names in the run's
    ``.ledger/`` if known (sidecars are read only if there). ``date_fallback``: see :func:`is_timestamp`.
    """
    job = record.get("job") or {}
    status = record.get("status")
    row: dict[str, Any] = {
        "run_id": record.get("run_id"),
        "path": job_dir,
        "sweep": sweep_dir_of(job_dir, job),
        "job_num": job.get("num"),
        "status": recorded_status(status),
        "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"),
        "duration_s": record.get("duration_s"),
        "overrides": record.get("overrides") or [],
    }
    problems = []
    for name in ("started_at", "ended_at"):
        if row[name] is not None and not is_timestamp(row[name], date_fallback):
            problems.append(f"field {name!r} is not a date ({_short(row[name])})")
            row[name] = None
    duration = row["duration_s"]
    if duration is not None and not _finite(duration):
        problems.append(f"field 'duration_s' is not a finite number ({_short(duration)})")
        row["duration_s"] = None
    git = record.get("git") or {}
    if "untracked" in git:  # the file list (and where each file is stored) is in the record, not a column
        git = {k: v for k, v in git.items() if k not in ("untracked", "untracked_objects")}
    groups = (record.get("config"), record.get("choices"), record.get("summary"), record.get("inputs"), git,
              record.get("host"), record.get("slurm"), record.get("resources"), record.get("optuna"),
              record.get("error"))
    if len(_NAMES) > _NAMES_MAX:  # a pathological number of distinct keys: start the memo afresh
        _NAMES.clear()
    clashes: list[Any] = []
    for prefix, group in zip(_GROUP_PREFIXES, groups):
        if group:  # an empty mapping means "nothing", except in a config
            flatten(group, prefix, row, prefix == "cfg.", _NAMES, clashes)
    tags, note = annotate(record, job_dir, ledger_names)  # launch values + `hydra-ledger tag/note` sidecars
    if tags:
        row["tags"] = tags
    if note:
        row["note"] = note
    if "artifacts" in record:  # [{"path", "size", "hash", "mtime"}] of the files the job wrote
        row["artifacts"] = record["artifacts"]
    if record.get("debug"):
        row["debug"] = True
    if record.get("signals"):  # what arrived, even when the job caught it and completed
        row["signals"] = signal_names(record["signals"])
    if problems or clashes:  # the row loads; the index keeps these to warn at every load (popped there)
        record_file = os.path.join(job_dir, LEDGER_DIR, RunPaths.RECORD)
        row["#warn"] = [f"hydra-ledger: record {record_file}: {p} — loaded as empty; was it edited by hand? "
                        "Restore it from history/ or rerun the job" for p in problems]
        row["#warn"] += [_clash_message(record_file, *clash) for clash in clashes]
    return row


def signal_names(signals: list[Any]) -> str:
    """The signals a job received, in order: ``"SIGINT"``, ``"SIGUSR2, SIGTERM"``."""
    return ", ".join(str(s.get("signal")) if isinstance(s, Mapping) else "?" for s in signals)


# Datetimes pandas holds (nanoseconds since 1970 in an int64): a date out of these is no start time.
_FIRST_YEAR, _LAST_YEAR = 1678, 2261


def is_timestamp(value: Any, fallback: Callable[[str], bool] | None = None) -> bool:
    """Whether a record's time field is an ISO 8601 date the frame's datetime columns can hold.

    ``fallback`` judges what Python's ``fromisoformat`` refuses: the loader passes pandas' ISO
    8601 parser (the frame's, which takes more forms); a job, which wrote its dates with Python,
    needs none (and may not import pandas).
    """
    if not isinstance(value, str):
        return False
    try:
        parsed = _dt.datetime.fromisoformat(value)
    except ValueError:
        return fallback is not None and fallback(value)
    return _FIRST_YEAR <= parsed.year <= _LAST_YEAR


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except (TypeError, OverflowError):  # an integer too large for a float
        return False


def _short(value: Any) -> str:
    return reprlib.repr(value)


def _clash_message(record_file: str, name: str, paths: list[tuple[list[str], Any]], kept: Any) -> str:
    group, _, key = name.partition(".")
    group = {"cfg": "config"}.get(group, group)
    ways = " and as ".join(f"{' → '.join(repr(k) for k in keys)} ({_short(value)})" for keys, value in paths)
    times = "twice" if len(paths) == 2 else f"{len(paths)} times"
    return (f"hydra-ledger: record {record_file}: {group} key {key!r} is given {times}, as {ways} "
            f"— column {name} holds {_short(kept)}; rename one of them")


def sweep_dir_of(job_dir: str | Path, job: Mapping[str, Any]) -> str | None:
    """Where the job's sweep dir is now: the recorded absolute paths may predate a copy/rsync."""
    sweep, output = job.get("sweep_dir"), job.get("output_dir")
    if not sweep or not output:
        return None
    if isinstance(sweep, str) and isinstance(output, str) and os.sep == "/":
        if output == sweep:  # the common cases in string operations (pathlib would give the same)
            return str(job_dir)
        below = output[len(sweep) + 1:] if output.startswith(sweep) and output[len(sweep):len(sweep) + 1] == "/" else ""
        if below and _plain(below):
            found = str(job_dir)
            for _ in range(below.count("/") + 1):
                found = os.path.dirname(found)
            return found
    job_dir = Path(job_dir)
    try:
        depth = len(Path(output).relative_to(sweep).parts)
    except ValueError:
        return sweep
    return str(job_dir.parents[depth - 1]) if depth > 0 else str(job_dir)


def _plain(path: str) -> bool:
    """A relative POSIX path that pathlib would not normalise (no '//', '/./', '.' parts, trailing '/')."""
    return "//" not in path and "/./" not in path and not path.endswith(("/", "/.")) \
        and not path.startswith(("./", "/")) and path != "."
