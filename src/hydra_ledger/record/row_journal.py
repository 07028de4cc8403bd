"""A sweep's row journal (``.ledger/rows.jsonl`` of the sweep dir): each job of a multirun
appends its final row there, so that a first load reads one file per sweep, not every record.

``run.json`` stays the truth. A line names its job dir (relative to the sweep dir) and the
signature (size, mtime, inode) of the very ``run.json`` its row was made from, and holds the row's
values, then, after a tab, the row's column names; the loader takes
the row only while that file is unchanged and no tag or note sidecar exists beside it, and reads
the record otherwise (a copied tree has new inodes: its records are read). A broken line, or one
made by other code than the loader's (:func:`row_format`), is skipped the same way. Writing a
line never fails the job.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from hydra_ledger.record.files import MAX_RECORD_BYTES, dump_record, loads, read_regular_file
from hydra_ledger.record.paths import LEDGER_DIR, NO_RECORDS_BELOW, RunPaths, SweepPaths
from hydra_ledger.record.rows import is_timestamp, record_to_row
from hydra_ledger.record.schema import FINAL_STATUSES, parse_record

log = logging.getLogger(__name__)

# A journal larger than this is not read (a sweep of 10,000 jobs writes ~26 MB here): its records are.
MAX_JOURNAL_BYTES = 4 * MAX_RECORD_BYTES
# The modules (of this package) whose code decides a row: see row_format.
_ROW_CODE = ("rows.py", "flatten.py", "schema.py", "sidecars.py", "files.py", "row_journal.py")


@functools.cache
def row_format() -> str | None:
    """A fingerprint of the code that makes rows, written in each line: a loader uses only the
    lines made by the very code it would read the records with (rows may gain columns from one
    version to the next), with no version number to forget to bump. None when that code cannot
    be read (then no line is written or used)."""
    digest = hashlib.blake2b(digest_size=8)
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        for name in _ROW_CODE:
            with open(os.path.join(here, name), "rb") as file:
                digest.update(file.read())
    except OSError:
        return None
    return digest.hexdigest()


def stat_signature(stat: os.stat_result) -> str:
    """What tells a file changed: its size, mtime and inode (a copy has a new inode)."""
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"


# A row as a journal gives it: its column names (one tuple shared by the lines that list the same
# ones) and its values, in that order. Parsing a list of values and leaving the names to be read
# once per sweep costs half of parsing the row as a mapping, and no dict is ever made of it.
KeyedValues = tuple[tuple[str, ...], list[Any]]


class RowKeys(NamedTuple):
    """The column names of journal rows, and where among them the fields the loader fills in
    (``path``, ``sweep``) or checks (status, dates, duration) are."""

    names: tuple[str, ...]
    path: int
    sweep: int
    status: int
    started_at: int | None
    ended_at: int | None
    duration_s: int | None


class JournalRow(NamedTuple):
    """One job's line: its record's signature, its row's names and values (``path``/``sweep`` to be
    filled in), where the job recorded its sweep and output dirs, and its dir's mtime and subdirs
    when written."""

    record_sig: str
    keys: RowKeys
    values: list[Any]
    place: dict[str, Any]
    dir_mtime_ns: int
    subdirs: list[str]


def append_final_row(paths: RunPaths, record: Mapping[str, Any], data: bytes) -> None:
    """Append the row of ``data`` (the final run.json just written) to its sweep's journal.

    Only for a multirun job whose sweep dir already has its ``.ledger/``; never raises.
    """
    job = record.get("job")
    if not isinstance(job, Mapping) or job.get("mode") != "MULTIRUN":
        return
    sweep, output = job.get("sweep_dir"), job.get("output_dir")
    if not isinstance(sweep, str) or not isinstance(output, str):
        return
    try:
        name = os.path.relpath(output, sweep)
        if name.startswith("..") or name == ".":
            return
        line = journal_line(str(paths.job_dir), name, data)
        if line is None:
            return
        # O_CREAT, not mkdir: a sweep dir without its .ledger/ (no sweep record) gets no journal
        fd = os.open(SweepPaths(sweep).rows, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write on an O_APPEND file: lines of parallel jobs stay whole
        finally:
            os.close(fd)
    except Exception as exc:  # noqa: BLE001 - the journal only saves a later load time: never the job's failure
        log.debug("hydra-ledger: no journal line for %s: %s", paths.job_dir, exc)


def journal_line(job_dir: str, name: str, data: bytes) -> bytes | None:
    """The journal line of a job dir's final record ``data`` (as on disk now), or None when the
    loader should read the record itself (its row is not final or has warnings)."""
    version = row_format()
    if version is None:
        return None
    record_file = os.path.join(job_dir, LEDGER_DIR, RunPaths.RECORD)
    stat = os.stat(record_file)
    record = parse_record(record_file, data)
    row = record_to_row(record, job_dir, ledger_names=())
    if "#warn" in row or row["status"] not in FINAL_STATUSES:
        return None
    row["path"] = row["sweep"] = None  # where the job is now: filled in at load
    job = record.get("job") or {}
    dir_stat = os.stat(job_dir)
    line = {"v": version, "job": name, "sig": stat_signature(stat),
            "place": {"sweep_dir": job.get("sweep_dir"), "output_dir": job.get("output_dir")},
            "dir": [dir_stat.st_mtime_ns, subdirs_of(job_dir)], "row": list(row.values())}
    # the names after a tab (JSON escapes any tab in a text): a reader parses them once per sweep
    return dump_record(line) + b"\t" + dump_record(list(row)) + b"\n"


def subdirs_of(job_dir: str) -> list[str]:
    """The subdirs of a job dir that may hold records (not ``.ledger``, ``.hydra`` and the like)."""
    names = []
    for entry in os.scandir(job_dir):
        if entry.name not in NO_RECORDS_BELOW:
            try:
                if entry.is_dir(follow_symlinks=False):
                    names.append(entry.name)
            except OSError:
                continue
    return names


def read_journal(sweep_dir: str) -> dict[str, JournalRow]:
    """The usable lines of a sweep dir's journal by job dir name (the last line of a job wins:
    a requeued job appends again); none when it is absent, unreadable, oversized or not a file.
    A line is usable when well formed and its row is one a record could give (a final status,
    dates and duration as :func:`~hydra_ledger.record.rows.record_to_row` leaves them)."""
    version = row_format()
    try:
        if version is None:
            return {}
        data = read_regular_file(os.path.join(sweep_dir, LEDGER_DIR, SweepPaths.ROWS), MAX_JOURNAL_BYTES)[1]
    except OSError:  # NotARegularFile included
        return {}
    entries: dict[str, JournalRow] = {}
    seen: dict[bytes, RowKeys | None] = {}
    last_names, keys = b"", None
    for raw in data.splitlines():
        head, _, names = raw.partition(b"\t")
        if names != last_names:  # the lines of a sweep mostly list the same names: compared, not parsed
            if names not in seen:
                seen[names] = _row_keys(names)
            last_names, keys = names, seen[names]
        if keys is None:
            continue
        try:
            line = loads(head)
            if line.get("v") != version:
                continue
            name, sig, values, place, (mtime_ns, subdirs) = (line["job"], line["sig"], line["row"], line["place"],
                                                             line["dir"])
            if not (type(name) is str and type(sig) is str and type(values) is list and type(place) is dict
                    and type(mtime_ns) is int and type(subdirs) is list and all(type(s) is str for s in subdirs)
                    and len(values) == len(keys.names) and _row_as_made(keys, values)):
                continue
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, UnicodeDecodeError):
            continue  # a torn or foreign line: that job's record is read instead
        entries[name] = JournalRow(sig, keys, values, place, mtime_ns, subdirs)
    return entries


def _row_keys(names: bytes) -> RowKeys | None:
    """The column names a line lists, or None when they are not a row's (not a list of distinct
    texts with ``path``, ``sweep`` and ``status``, or with the keys of a row that loads with warnings)."""
    try:
        listed = loads(names)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None
    if type(listed) is not list or not all(type(n) is str for n in listed) or len(set(listed)) != len(listed):
        return None
    if "#warn" in listed or "#hb" in listed or not {"path", "sweep", "status"} <= set(listed):
        return None
    where = {n: i for i, n in enumerate(listed)}
    return RowKeys(tuple(listed), where["path"], where["sweep"], where["status"], where.get("started_at"),
                   where.get("ended_at"), where.get("duration_s"))


def _row_as_made(keys: RowKeys, values: list[Any]) -> bool:
    """Whether a journal's row has what record_to_row gives a final record: a row edited into
    something else (a status the loader does not know, a date the frame cannot hold) is not used."""
    if values[keys.status] not in FINAL_STATUSES:
        return False
    started = None if keys.started_at is None else values[keys.started_at]
    ended = None if keys.ended_at is None else values[keys.ended_at]
    duration = None if keys.duration_s is None else values[keys.duration_s]
    return ((started is None or is_timestamp(started)) and (ended is None or is_timestamp(ended))
            and (duration is None or (type(duration) in (int, float) and math.isfinite(duration))))
