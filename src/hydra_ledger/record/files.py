"""Writing and reading ledger files safely: atomic replaces, whole-line appends, capped reads.

Every file is either replaced atomically (temp file + ``os.replace``) or appended to with one
``write``, so a reader never sees half a file and a killed job never leaves a corrupt record.
Readers take in regular files only, up to a cap, so a FIFO or ``/dev/zero`` never hangs them.
"""
from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import stat as _stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from hydra_ledger.errors import LedgerError
from hydra_ledger.record.jsonable import to_jsonable

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


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temp file beside ``path`` to write, then moved over ``path`` in one ``os.replace``: readers
    see the old or the new file, never half. On an error the temp file is removed and the error raised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half.

    As :func:`replacing`, with plain system calls and the directory made only when missing: a
    job writes its record several times, and each ``mkdir`` of an existing dir and buffered
    file object cost more than the write itself.
    """
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, _CREATE, 0o666)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, _CREATE, 0o666)
    try:
        try:
            view = memoryview(data)
            written = 0
            while written < len(view):
                written += os.write(fd, view[written:])
        finally:
            os.close(fd)
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
    removed: list[str] = []
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


# orjson writes integers of 64 bits at most (it raises beyond), and nothing nested deeper than this.
_ORJSON_INTS = range(-(1 << 63), 1 << 64)
_ORJSON_DEPTH = 200


def dump_record(value: Any) -> bytes:
    """Serialise a record that programs read (run.json, packages.json): compact UTF-8 JSON,
    with orjson (a run.json in ~20 us, against ~0.4 ms for ``json`` with indentation).

    orjson is taken only for plain JSON values, where its output means the same as
    :func:`dump_json_compact`'s: for anything else (NaN and infinities, which orjson would
    write as ``null`` and ``json`` writes as ``NaN``/``Infinity`` and the loader reads back as
    floats; enums, which orjson writes by value and :func:`to_jsonable` by name; numpy values,
    non-string keys, integers beyond 64 bits) ``json`` writes it as before.
    """
    if _plain_json(value, 0):
        return orjson.dumps(value)
    return dump_json_compact(value)


def _plain_json(value: Any, depth: int) -> bool:
    """Whether ``value`` holds only str, bool, None, finite floats, 64-bit ints, lists, tuples
    and dicts with str keys, nested at most ``_ORJSON_DEPTH`` deep."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is float:
        return bool(value - value == 0.0)  # NaN and infinities give NaN
    if kind is int:
        return value in _ORJSON_INTS
    if depth >= _ORJSON_DEPTH:
        return False
    # loops, not all(): a generator per container costs more on this path (every record write)
    if kind is dict:
        for key, item in value.items():  # noqa: SIM110
            if type(key) is not str or not _plain_json(item, depth + 1):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:  # noqa: SIM110
            if not _plain_json(item, depth + 1):
                return False
        return True
    return False


def write_json_atomic(path: Path, value: Any) -> None:
    write_atomic(path, dump_json(value))


def append_line(path: Path, value: Any) -> None:
    """Append one JSON line; a single ``write`` on an O_APPEND file keeps lines whole. The
    directory is made only when missing (as in :func:`write_atomic`)."""
    line = json.dumps(value, ensure_ascii=False, default=to_jsonable, separators=(",", ":")) + "\n"
    try:
        fd = os.open(path, _APPEND, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, _APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


# Caps on what a reader takes in: a file larger than this is not what it is named after (a
# record of a 10,000-key config is 0.4 MB), and reading it whole could exhaust the memory.
MAX_RECORD_BYTES = 64 << 20
MAX_SIDECAR_BYTES = 16 << 20  # tags.json, packages.json
MAX_HEARTBEAT_BYTES = 4096
MAX_METRICS_BYTES = 4 << 30

_FILE_KINDS = ((_stat.S_ISFIFO, "a FIFO (named pipe)"), (_stat.S_ISCHR, "a character device"),
               (_stat.S_ISBLK, "a block device"), (_stat.S_ISSOCK, "a socket"), (_stat.S_ISDIR, "a directory"))


class NotARegularFile(LedgerError, OSError):
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



def metric_entries(metrics_file: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    """``(line number, entry, its values)`` of each line of a ``metrics.jsonl`` that is a JSON object
    with a ``values`` mapping; other lines are skipped, an unreadable file (or a FIFO) gives none:
    ``load_metrics`` warns of both, the views that read metrics show what there is."""
    try:
        lines = read_regular_file(metrics_file, MAX_METRICS_BYTES)[1].splitlines()
    except OSError:
        return []
    out = []
    for index, line in enumerate(lines):
        try:
            entry = json.loads(line)
            values = entry["values"]
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
        if isinstance(values, dict):
            out.append((index, entry, values))
    return out

def unreadable_problem(stat: os.stat_result, max_bytes: int) -> str | None:
    """Why a file of this stat is not read: not a regular file, or larger than ``max_bytes``; None: read it."""
    if not _stat.S_ISREG(stat.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(stat.st_mode)), "a special file")
        return f"not a regular file but {kind}"
    if stat.st_size > max_bytes:
        return f"larger than a record can be ({stat.st_size:,} bytes, the cap is {max_bytes:,})"
    return None


def loads(data: bytes | str) -> Any:
    """Parse JSON with orjson (3x faster than ``json`` on records: the loader's hot path);
    ``json`` takes over for the NaN/Infinity that records may hold and orjson rejects."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # may raise RecursionError: a text nested deeper than orjson's 1,024 levels
