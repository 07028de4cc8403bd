"""The run and sweep records: schemas, statuses, and reading a record back, checked.

A record that cannot be used is a RecordError naming the file and the fix; the loader turns
it into one warning, so a broken record never hides the other runs.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, TypedDict

from hydra_ledger.errors import LedgerError, LedgerWarning
from hydra_ledger.record import files
from hydra_ledger.record.files import NotARegularFile, loads, read_regular_file
from hydra_ledger.record.paths import RunPaths

RUN_SCHEMA = "hydra-ledger/run"
SWEEP_SCHEMA = "hydra-ledger/sweep"
# Version 1 is the first released layout; readers accept every version up to this one.
SCHEMA_VERSION = 1

STATUSES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "INTERRUPTED", "TIMEOUT", "PREEMPTED", "DIED",
            # Slurm's final state of a job that died without writing (refined from DIED via sacct)
            "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL")
# What the job's submitit signal handler writes as the outcome of a time-out it did not requeue.
NOT_REQUEUED = "not requeued"
# Seconds between heartbeats when a record does not say: the callback's default
# (``heartbeat_s`` of hydra_plugins.hydra_ledger.LedgerConf; a test keeps the two equal).
DEFAULT_HEARTBEAT_S = 10.0
# PENDING is never written by a job: the loader derives it for sweep jobs not started yet.
FINAL_STATUSES = frozenset(STATUSES) - {"RUNNING", "PENDING"}
# Final statuses that mean the job did not produce its result: listed and counted as problems.
PROBLEM_STATUSES = tuple(s for s in STATUSES if s not in ("PENDING", "RUNNING", "COMPLETED"))
_KNOWN_STATUSES = frozenset(STATUSES)


def recorded_status(status: Any) -> str:
    """The status a record states, or DIED for one this version does not know (hand-edited, foreign)."""
    return status if status in _KNOWN_STATUSES else "DIED"


class JobInfo(TypedDict):
    """``job`` of a run record: where Hydra ran the job, and its place in a sweep."""

    name: str
    id: str | None
    num: int | None
    mode: str  # "RUN" or "MULTIRUN"
    output_dir: str
    sweep_dir: str | None
    sweep_id: str | None
    config_name: str | None
    working_dir: str


class RunRecord(TypedDict, total=False):
    """The fields of ``.ledger/run.json`` (schema ``hydra-ledger/run``), as a job writes them.

    Records are JSON, so a reader gets plain dicts; the loader checks the JSON type of the
    fields it relies on (``_FIELD_TYPES``, kept equal to these by a test).
    """

    schema: str
    version: int
    run_id: str
    status: str
    started_at: str
    ended_at: str | None
    duration_s: float | None
    heartbeat_s: float
    job: JobInfo
    overrides: list[str]
    hydra_overrides: list[str]
    launch: dict[str, Any]
    config: dict[str, Any]
    missing: list[str]
    unresolved: dict[str, Any]
    choices: dict[str, Any]
    host: dict[str, Any]
    slurm: dict[str, Any]
    note: str | None
    tags: list[str]
    debug: bool
    summary: dict[str, Any]
    error: dict[str, Any] | None
    ledger_version: str
    rerun_of: str | None
    attempts: list[dict[str, Any]]
    signals: list[dict[str, Any]]
    git: dict[str, Any] | None
    inputs: dict[str, Any] | None
    input_hashing: dict[str, Any] | None
    artifacts: list[Any]
    resources: dict[str, Any]  # CPU, memory and GPU the job used (hydra_ledger.job.resources)
    optuna: dict[str, Any] | None  # an Optuna sweep's job: its trial number


class SweepRecord(TypedDict, total=False):
    """The fields of ``.ledger/sweep.json`` (schema ``hydra-ledger/sweep``), written by the launching process."""

    schema: str
    version: int
    sweep_id: str
    sweep_dir: str
    started_at: str
    ended_at: str | None
    config_name: str | None
    overrides: list[str]
    hydra_overrides: list[str]
    launcher: str | None
    sweeper: str | None
    argv: list[str]
    cwd: str
    note: str | None
    tags: list[str]
    debug: bool
    jobs: list[dict[str, Any]] | None
    optuna: dict[str, Any] | None  # the study: name, storage, directions, sampler, best trial(s)
    launcher_pid: int
    launcher_host: str
    resumes: list[dict[str, Any]]  # one entry per `hydra-ledger resume` of the sweep


class RecordError(LedgerError, ValueError):
    """A record file that cannot be used; the message names the file and what to do."""

    def __init__(self, path: Path | str, problem: str, hint: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        message = f"hydra-ledger: cannot read record {path}: {problem}"
        if hint:
            message += f" — {hint}"
        super().__init__(message)


class LedgerLoadWarning(LedgerWarning):
    """A record (or a field of it, or a file beside it) was skipped while loading; the message names
    the file and the fix."""


def warn_unread(path: str | os.PathLike[str], problem: str, what: str = "ignored") -> None:
    """One warning for a file beside a record that was not read (see :func:`read_regular_file`)."""
    warnings.warn(side_file_message(path, problem, what), LedgerLoadWarning, stacklevel=3)


def side_file_message(path: str | os.PathLike[str], problem: str, what: str = "ignored") -> str:
    """The warning of a file beside a record (heartbeat, tags.json...) left unread."""
    if problem.startswith("larger"):
        return f"hydra-ledger: record {path}: {problem} — {what}; is it what its name says? Delete or move it"
    return f"hydra-ledger: record {path}: {problem} — {what}; reading it could block or never end: delete it"


def parse_record(path: Path | str, data: bytes, schema: str = RUN_SCHEMA) -> dict[str, Any]:
    """Parse and validate a record's bytes; raise RecordError saying what is wrong and the fix."""
    if not data or data.isspace():
        raise RecordError(path, "empty file (the disk was full, or the copy is incomplete?)", "skipped")
    try:
        record = loads(data)
    except RecursionError:
        raise RecordError(path, "nested too deeply (more than 1,000 levels)", _EDITED) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(
            path,
            f"truncated or corrupt JSON ({exc.__class__.__name__}: {exc})",
            "skipped; was the job killed while writing, or the copy interrupted? Delete the file or rerun the job",
        ) from None
    if not isinstance(record, dict) or record.get("schema") != schema:
        raise RecordError(path, f"not a {schema} record (foreign file?)", "skipped; move it out of the run tree")
    version = record.get("version")
    if not isinstance(version, int) or version < 1:
        raise RecordError(path, f"invalid schema version {version!r}", "skipped")
    if version > SCHEMA_VERSION:
        raise RecordError(
            path,
            f"written by a newer hydra-ledger (schema version {version}, this one reads up to {SCHEMA_VERSION})",
            "upgrade hydra-ledger: pip install -U hydra-ledger",
        )
    record = upgrade(record)
    if schema == RUN_SCHEMA:
        _check_shape(path, record)
    return record


# The JSON types of a run record's fields, checked so that a hand-edited or damaged record is
# one skipped file, never a loader that fails on every run. (None is always allowed.)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("job", "launch", "config", "choices", "host", "slurm", "summary", "git", "error",
                     "unresolved", "inputs", "resources", "optuna"), (dict,)),
    **dict.fromkeys(("overrides", "hydra_overrides", "attempts", "tags", "missing", "artifacts", "signals"), (list,)),
    **dict.fromkeys(("run_id", "status", "started_at", "ended_at", "note"), (str,)),
    **dict.fromkeys(("duration_s", "heartbeat_s"), (int, float)),
}
_JSON_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
                    bool: "a boolean"}
# The same as exact types, None included: parsed JSON holds no subclasses, so one set lookup
# per field checks it (this runs once per record on a cold load).
_EXACT_TYPES = [(name, frozenset({*types, type(None)})) for name, types in _FIELD_TYPES.items()]


def _check_shape(path: Path | str, record: dict[str, Any]) -> None:
    for name, exact in _EXACT_TYPES:
        if type(record.get(name)) in exact:
            continue
        types, value = _FIELD_TYPES[name], record.get(name)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise RecordError(
                path,
                f"malformed record: field {name!r} is {_JSON_TYPE_NAMES.get(type(value), type(value).__name__)}, "
                f"expected {_JSON_TYPE_NAMES[types[0]]}",
                _EDITED,
            )


_EDITED = "skipped; was it edited by hand? Restore it from history/ or rerun the job"


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """Bring a record of an older schema version to the current layout (in place)."""
    # Version 1 is current; later versions add their conversions here, oldest first.
    return record


def read_record(path: Path, schema: str = RUN_SCHEMA) -> dict[str, Any]:
    """A record file parsed and checked; RecordError (naming the file and the fix) when it cannot be used."""
    try:
        _stat_result, data = read_regular_file(path, files.MAX_RECORD_BYTES)
    except OSError as exc:
        raise unreadable(path, exc) from None
    return parse_record(path, data, schema)


def unreadable(path: Path | str, exc: OSError) -> RecordError:
    """The RecordError of a record file that could not be read."""
    if isinstance(exc, NotARegularFile):
        if exc.problem.startswith("larger"):
            return RecordError(path, exc.problem, "skipped; is it a job's record? Move it out of the run tree")
        return RecordError(path, exc.problem,
                           "skipped; reading it could block or never end: replace it with the job's real record")
    return RecordError(path, f"unreadable ({exc.strerror or exc})", "check its permissions")


def read_heartbeat(paths: RunPaths) -> float | None:
    """The epoch seconds of a job's last heartbeat, or None when there is none (a FIFO or
    device in its place is not read: one warning)."""
    try:
        return float(read_regular_file(paths.heartbeat, files.MAX_HEARTBEAT_BYTES)[1].strip())
    except NotARegularFile as exc:
        warn_unread(paths.heartbeat, exc.problem)
        return None
    except (OSError, ValueError):
        return None
