"""The on-disk record of a job: file names, schema version, atomic writes, reading.

A job's record lives in ``<output_dir>/.ledger/`` beside Hydra's ``.hydra/``. Every
file is either replaced atomically (temp file + ``os.replace``) or appended to, so a
reader never sees half a file and a killed job never leaves a corrupt record.
"""
from __future__ import annotations

import errno
import itertools
import json
import os
import stat as _stat
import warnings
from pathlib import Path
from typing import Any

import orjson

from hydra_ledger.record.jsonable import to_jsonable

LEDGER_DIR = ".ledger"
RUN_SCHEMA = "hydra-ledger/run"
SWEEP_SCHEMA = "hydra-ledger/sweep"
# Version 1 is the first released layout; readers accept every version up to this one.
SCHEMA_VERSION = 1

STATUSES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "INTERRUPTED", "TIMEOUT", "PREEMPTED", "DIED",
            # Slurm's final state of a job that died without writing (refined from DIED via sacct)
            "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL")
# PENDING is never written by a job: the loader derives it for sweep jobs not started yet.
FINAL_STATUSES = frozenset(STATUSES) - {"RUNNING", "PENDING"}
# Final statuses that mean the job did not produce its result: listed and counted as problems.
PROBLEM_STATUSES = tuple(s for s in STATUSES if s not in ("PENDING", "RUNNING", "COMPLETED"))


class RunPaths:
    """Owns the paths of one job's ledger files; nobody else joins these names."""

    RECORD = "run.json"
    HEARTBEAT = "heartbeat"
    PATCH = "git.patch"
    PACKAGES = "packages.json"
    METRICS = "metrics.jsonl"
    HISTORY = "history"
    UNTRACKED = "untracked"
    # Sidecars written by `hydra-ledger tag/untag/note`, never by the job (which rewrites run.json).
    TAGS = "tags.json"
    NOTES = "notes.jsonl"
    SIDECAR_LOCK = "sidecars.lock"  # flock'ed while tags.json or notes.jsonl is edited (hydra_ledger.record.sidecars)
    # `hydra-ledger conclude` (append-only) and the job's captured output (capture_output=true).
    CONCLUSIONS = "conclusions.jsonl"
    STDOUT = "stdout.log"
    STDERR = "stderr.log"
    # Everything that belongs to one run: moved to history/ when a new run reuses the output dir.
    PER_RUN = (METRICS, PATCH, UNTRACKED, TAGS, NOTES, CONCLUSIONS, STDOUT, STDERR)

    def __init__(self, job_dir: str | os.PathLike[str]) -> None:
        self.job_dir = Path(job_dir)
        self.ledger_dir = self.job_dir / LEDGER_DIR

    @classmethod
    def from_record_file(cls, record_file: str | os.PathLike[str]) -> RunPaths:
        return cls(Path(record_file).parent.parent)

    @property
    def record(self) -> Path:
        return self.ledger_dir / self.RECORD

    @property
    def heartbeat(self) -> Path:
        return self.ledger_dir / self.HEARTBEAT

    @property
    def patch(self) -> Path:
        return self.ledger_dir / self.PATCH

    @property
    def packages(self) -> Path:
        return self.ledger_dir / self.PACKAGES

    @property
    def metrics(self) -> Path:
        return self.ledger_dir / self.METRICS

    @property
    def tags(self) -> Path:
        return self.ledger_dir / self.TAGS

    @property
    def notes(self) -> Path:
        return self.ledger_dir / self.NOTES

    @property
    def sidecar_lock(self) -> Path:
        return self.ledger_dir / self.SIDECAR_LOCK

    @property
    def conclusions(self) -> Path:
        return self.ledger_dir / self.CONCLUSIONS

    @property
    def stdout(self) -> Path:
        return self.ledger_dir / self.STDOUT

    @property
    def stderr(self) -> Path:
        return self.ledger_dir / self.STDERR

    @property
    def untracked(self) -> Path:
        """Copies of the untracked files of the code the job ran (restored by an exact rerun)."""
        return self.ledger_dir / self.UNTRACKED

    def archived_record(self, run_id: str) -> Path:
        """Where an earlier run's record goes when a new run reuses this output dir."""
        return self.ledger_dir / self.HISTORY / f"{run_id}.json"

    def archived_file(self, run_id: str, name: str) -> Path:
        """Where an earlier run's per-run file (metrics, patch, ...) goes: ``history/<run_id>.<name>``."""
        return self.ledger_dir / self.HISTORY / f"{run_id}.{name}"

    def __repr__(self) -> str:
        return f"RunPaths({str(self.job_dir)!r})"


class SweepPaths:
    """Owns the paths of a sweep's ledger files, in the sweep dir."""

    RECORD = "sweep.json"
    CONCLUSIONS = RunPaths.CONCLUSIONS

    def __init__(self, sweep_dir: str | os.PathLike[str]) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.ledger_dir = self.sweep_dir / LEDGER_DIR

    @property
    def record(self) -> Path:
        return self.ledger_dir / self.RECORD

    @property
    def conclusions(self) -> Path:
        return self.ledger_dir / self.CONCLUSIONS


_temp_numbers = itertools.count()
# Errors that mean "no room": a full disk or an exhausted quota.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# Room kept at the end of a RUNNING record (trailing spaces, valid JSON): when the disk is full,
# the final status is written over it in place, since a temp file would need free space.
RECORD_RESERVE_BYTES = 8192
_BLOCK = 4096


def no_space(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the quota) is full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


def temp_name(path: Path) -> Path:
    """A temp file beside ``path``, unique per write (a signal handler may write the same file
    while the interrupted write is still open); ``.<name>.<pid>-<n>.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}-{next(_temp_numbers)}.tmp")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def padded(data: bytes, reserve: int = RECORD_RESERVE_BYTES) -> bytes:
    """``data`` with trailing spaces: at least ``reserve`` bytes more, up to a whole block."""
    size = -(-(len(data) + reserve) // _BLOCK) * _BLOCK
    return data + b" " * (size - len(data))


def rewrite_in_place(path: Path, data: bytes) -> bool:
    """Overwrite ``path`` with ``data`` padded with spaces to the file's current size, in the
    blocks it already has: needs no free space (for a full disk), but is not atomic. False,
    writing nothing, when ``data`` is larger than the file."""
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        if len(data) > size:
            return False
        view = memoryview(data + b" " * (size - len(data)))
        offset = 0
        while offset < len(view):
            offset += os.pwrite(fd, view[offset:], offset)
    finally:
        os.close(fd)
    return True


def remove_stale_temps(directory: Path) -> list[str]:
    """Delete the temp files left in ``directory`` by writers that were killed mid-write (their
    process is gone, or it is this one between jobs); returns their names. Never raises."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        parts = name[1:-4].split(".")  # .<file>.<pid>-<n>.tmp, or .<file>.<pid>.<thread>.tmp (older writers)
        owner = parts[-1].split("-")[0] if "-" in parts[-1] else parts[-2] if len(parts) > 2 else ""
        if owner.isdigit() and int(owner) != os.getpid() and _pid_alive(int(owner)):
            continue
        try:
            os.unlink(entry.path)
            removed.append(name)
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's process
        return True
    return True


def dump_json(value: Any) -> bytes:
    """Serialise a record: UTF-8 JSON, non-JSON values converted faithfully, never raising."""
    return json.dumps(value, ensure_ascii=False, indent=1, default=to_jsonable, allow_nan=True).encode()


def dump_json_compact(value: Any) -> bytes:
    """As :func:`dump_json` without indentation: a smaller record where room is short."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=to_jsonable, allow_nan=True).encode()


def write_json_atomic(path: Path, value: Any) -> None:
    write_atomic(path, dump_json(value))


def append_line(path: Path, value: Any) -> None:
    """Append one JSON line; a single ``write`` on an O_APPEND file keeps lines whole."""
    line = json.dumps(value, ensure_ascii=False, default=to_jsonable, separators=(",", ":")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class RecordError(ValueError):
    """A record file that cannot be used; the message names the file and what to do."""

    def __init__(self, path: Path | str, problem: str, hint: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        message = f"hydra-ledger: cannot read record {path}: {problem}"
        if hint:
            message += f" — {hint}"
        super().__init__(message)


class LedgerLoadWarning(UserWarning):
    """A record (or a field of it, or a file beside it) was skipped while loading; the message names
    the file and the fix."""


# Caps on what a reader takes in: a file larger than this is not what it is named after (a
# record of a 10,000-key config is 0.4 MB), and reading it whole could exhaust the memory.
MAX_RECORD_BYTES = 64 << 20
MAX_SIDECAR_BYTES = 16 << 20  # tags.json, packages.json
MAX_HEARTBEAT_BYTES = 4096
MAX_METRICS_BYTES = 4 << 30

_FILE_KINDS = ((_stat.S_ISFIFO, "a FIFO (named pipe)"), (_stat.S_ISCHR, "a character device"),
               (_stat.S_ISBLK, "a block device"), (_stat.S_ISSOCK, "a socket"), (_stat.S_ISDIR, "a directory"))


class NotARegularFile(OSError):
    """A file the loader will not read: not a regular file (a FIFO would block forever, ``/dev/zero``
    never end), or larger than its cap. ``problem`` says which, for the warning."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(problem)
        self.path, self.problem = str(path), problem


def read_regular_file(path: str | os.PathLike[str], max_bytes: int) -> tuple[os.stat_result, bytes]:
    """``(stat, content)`` of a regular file of at most ``max_bytes``, the very file read even if
    replaced meanwhile; raises NotARegularFile for anything else (opened non-blocking, so a
    FIFO never blocks), OSError when unreadable."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        stat = os.fstat(fd)
        problem = unreadable_problem(stat, max_bytes)
        if problem:
            raise NotARegularFile(path, problem)
        data = os.read(fd, stat.st_size + 1)
        if len(data) == stat.st_size:  # the whole file as stat-ed: no read just to meet its end
            return stat, data
        chunks, size = [data], len(data)
        while chunk := os.read(fd, 1 << 16):  # it grew meanwhile, or a short read: on to its end
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise NotARegularFile(path, f"larger than a record can be (over {max_bytes:,} bytes, growing)")
        return stat, b"".join(chunks)
    finally:
        os.close(fd)


def unreadable_problem(stat: os.stat_result, max_bytes: int) -> str | None:
    """Why a file of this stat is not read: not a regular file, or larger than ``max_bytes``; None: read it."""
    if not _stat.S_ISREG(stat.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(stat.st_mode)), "a special file")
        return f"not a regular file but {kind}"
    if stat.st_size > max_bytes:
        return f"larger than a record can be ({stat.st_size:,} bytes, the cap is {max_bytes:,})"
    return None


def warn_unread(path: str | os.PathLike[str], problem: str, what: str = "ignored") -> None:
    """One warning for a file beside a record that was not read (see :func:`read_regular_file`)."""
    warnings.warn(side_file_message(path, problem, what), LedgerLoadWarning, stacklevel=3)


def side_file_message(path: str | os.PathLike[str], problem: str, what: str = "ignored") -> str:
    """The warning of a file beside a record (heartbeat, tags.json...) left unread."""
    if problem.startswith("larger"):
        return f"hydra-ledger: record {path}: {problem} — {what}; is it what its name says? Delete or move it"
    return f"hydra-ledger: record {path}: {problem} — {what}; reading it could block or never end: delete it"


def loads(data: bytes) -> Any:
    """Parse JSON with orjson (3x faster than ``json`` on records: the loader's hot path);
    ``json`` takes over for the NaN/Infinity that records may hold and orjson rejects."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # may raise RecursionError: a text nested deeper than orjson's 1,024 levels


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
                     "unresolved", "inputs"), (dict,)),
    **dict.fromkeys(("overrides", "hydra_overrides", "attempts", "tags", "missing", "artifacts"), (list,)),
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
        if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
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
        _stat_result, data = read_regular_file(path, MAX_RECORD_BYTES)
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
        return float(read_regular_file(paths.heartbeat, MAX_HEARTBEAT_BYTES)[1].strip())
    except NotARegularFile as exc:
        warn_unread(paths.heartbeat, exc.problem)
        return None
    except (OSError, ValueError):
        return None
