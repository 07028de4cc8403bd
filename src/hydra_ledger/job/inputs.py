"""Fingerprints of a job's input data: path, size, modification time and content hash.

``hydra.callbacks.ledger.inputs=[data.train_path, ...]`` names config keys whose values
are files or directories. The job process (``on_job_start``) records, per key, what the
path held when the job started; a directory is hashed as a tree of its files.

Hashing is the expensive part, so file hashes are cached per user, keyed by
(real path, size, mtime, inode, device): a sweep of 100 jobs over a 10 GB dataset reads
it once. The cache is one small JSON file per key, written atomically, so concurrent jobs
never corrupt it; a job that finds another job hashing the same file (a lock file next to
the entry) waits for its result instead of reading the file again.
"""
from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra_ledger.record.files import write_atomic

log = logging.getLogger(__name__)

ALGORITHM = "sha256"
_CHUNK = 1 << 20
# A lock whose holder has not touched it for this long belongs to a dead process.
LOCK_STALE_S = 60.0
_LOCK_TOUCH_S = 5.0


def cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/hydra-ledger/hashes``: per user, shared by all their jobs."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "hydra-ledger", "hashes")


class HashStats:
    """What one fingerprinting did: files whose content was read, bytes read, seconds spent."""

    def __init__(self) -> None:
        self.files_hashed = 0
        self.bytes_hashed = 0
        self.cache_hits = 0
        self.seconds = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"files_hashed": self.files_hashed, "bytes_hashed": self.bytes_hashed,
                "cache_hits": self.cache_hits, "seconds": round(self.seconds, 6)}


def _iso(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).isoformat(timespec="microseconds")


# -- one file ---------------------------------------------------------------------------------

def digest_file(path: str | os.PathLike[str], on_chunk: Any = None) -> str:
    """``sha256:<hex>`` of a file's content, read in 1 MiB chunks (no cache)."""
    h = hashlib.new(ALGORITHM)
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buffer)
            if not n:
                break
            h.update(view[:n])
            if on_chunk is not None:
                on_chunk()
    return f"{ALGORITHM}:{h.hexdigest()}"


def _key(real: str, st: os.stat_result) -> tuple[str, dict[str, Any]]:
    identity = {"path": real, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino,
                "device": st.st_dev, "algorithm": ALGORITHM}
    name = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:40]
    return name, identity


def _read_entry(entry: Path, identity: Mapping[str, Any]) -> str | None:
    try:
        data = json.loads(entry.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in identity.items()):
        return None  # a foreign or colliding entry: hash again
    value = data.get("hash")
    return value if isinstance(value, str) else None


def _write_entry(entry: Path, identity: Mapping[str, Any], value: str) -> None:
    write_atomic(entry, json.dumps({**identity, "hash": value}).encode())


def hash_file(path: str | os.PathLike[str], stats: HashStats | None = None,
              cache: Path | None = None) -> str:
    """The content hash of one file (``sha256:<hex>``), from the cache when size, mtime and inode match."""
    stats = stats if stats is not None else HashStats()
    real = os.path.realpath(path)
    st = os.stat(real)
    cache = cache_dir() if cache is None else cache
    name, identity = _key(real, st)
    entry = cache / name[:2] / f"{name}.json"
    lock = entry.with_suffix(".lock")
    waited = False
    while True:
        found = _read_entry(entry, identity)
        if found is not None:
            stats.cache_hits += 1
            return found
        got_lock = _try_lock(lock)
        if got_lock is None:  # the cache dir is unusable (read-only home?): hash without it
            return _hash_counted(real, st, stats, None)
        if got_lock:
            try:
                found = _read_entry(entry, identity)  # written while we took the lock
                if found is not None:
                    stats.cache_hits += 1
                    return found
                value = _hash_counted(real, st, stats, lock)
                try:
                    _write_entry(entry, identity, value)
                except OSError as exc:
                    log.warning("hydra-ledger: cannot write the hash cache entry %s: %s", entry, exc)
                return value
            finally:
                try:
                    lock.unlink()
                except OSError:
                    pass
        # another process is hashing this very file: wait for its entry
        if not waited:
            log.info("hydra-ledger: waiting for another job hashing %s", real)
            waited = True
        time.sleep(0.2)
        _break_stale(lock)


def _hash_counted(real: str, st: os.stat_result, stats: HashStats, lock: Path | None) -> str:
    last_touch = [time.monotonic()]

    def keep_lock() -> None:  # show waiting jobs that the holder is alive
        now = time.monotonic()
        if lock is not None and now - last_touch[0] > _LOCK_TOUCH_S:
            last_touch[0] = now
            try:
                os.utime(lock)
            except OSError:
                pass

    start = time.perf_counter()
    value = digest_file(real, keep_lock)
    spent = time.perf_counter() - start
    stats.files_hashed += 1
    stats.bytes_hashed += st.st_size
    stats.seconds += spent
    log.info("hydra-ledger: hashed %s (%d bytes) in %.3f s", real, st.st_size, spent)
    return value


def _try_lock(lock: Path) -> bool | None:
    """True: we hold the lock; False: someone else does; None: no cache is possible here."""
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM, errno.ENOSPC):
            return None
        raise
    with os.fdopen(fd, "w") as f:
        f.write(f"{socket.gethostname()} {os.getpid()}\n")
    return True


def _break_stale(lock: Path) -> None:
    try:
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return
    if age > LOCK_STALE_S:
        log.warning("hydra-ledger: removing stale hash lock %s (%.0f s old; its job died?)", lock, age)
        try:
            lock.unlink()
        except OSError:
            pass


# -- files and directories --------------------------------------------------------------------

def fingerprint_path(path: str | os.PathLike[str], stats: HashStats | None = None,
                     cache: Path | None = None) -> dict[str, Any]:
    """``{"path", "kind", "size", "mtime", "hash"}`` of a file, or of a directory as a tree
    (``files``: how many); ``{"path", "kind": "missing", "hash": None}`` when nothing is there."""
    stats = stats if stats is not None else HashStats()
    resolved = os.path.abspath(path)
    if os.path.isfile(resolved):
        st = os.stat(resolved)
        return {"path": resolved, "kind": "file", "size": st.st_size, "mtime": _iso(st.st_mtime),
                "hash": hash_file(resolved, stats, cache)}
    if os.path.isdir(resolved):
        return _fingerprint_tree(resolved, stats, cache)
    return {"path": resolved, "kind": "missing", "hash": None}


def _fingerprint_tree(root: str, stats: HashStats, cache: Path | None) -> dict[str, Any]:
    """A directory's hash: over the sorted (relative path, file hash) pairs of its regular files;
    symbolic links to directories count by their target text and are not followed (no cycles).

    The tree's hash is cached too, keyed by a manifest of every file's (path, size, mtime,
    inode): an unchanged tree costs a walk of ``stat`` calls and one cache read.
    """
    lines: list[tuple[str, str, str | None]] = []  # (kind, relative path, full path or link text)
    manifest = hashlib.sha256()
    size = files = 0
    newest = os.stat(root).st_mtime
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            lines.append(("L", rel, os.readlink(full)))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            try:
                st = os.stat(full)
            except OSError:  # a dangling link
                lines.append(("D", rel, os.readlink(full) if os.path.islink(full) else ""))
                continue
            if not os.path.isfile(full):
                continue  # sockets, fifos
            lines.append(("F", rel, full))
            manifest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_dev}\n".encode())
            size += st.st_size
            files += 1
            newest = max(newest, st.st_mtime)
    for kind, rel, target in lines:
        if kind != "F":
            manifest.update(f"{kind} {rel}\0{target}\n".encode())
    cache = cache_dir() if cache is None else cache
    identity = {"tree": os.path.realpath(root), "manifest": manifest.hexdigest(), "algorithm": ALGORITHM}
    name = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:40]
    entry = cache / name[:2] / f"{name}.json"
    value = _read_entry(entry, identity)
    if value is not None:
        stats.cache_hits += 1
    else:
        tree = hashlib.new(ALGORITHM)
        for kind, rel, target in lines:
            text = hash_file(target, stats, cache) if kind == "F" and target is not None else target
            tree.update(f"{kind} {rel}\0{text}\n".encode())
        value = f"{ALGORITHM}:{tree.hexdigest()}"
        try:
            _write_entry(entry, identity, value)
        except OSError as exc:
            log.warning("hydra-ledger: cannot write the hash cache entry %s: %s", entry, exc)
    return {"path": root, "kind": "dir", "size": size, "mtime": _iso(newest), "files": files, "hash": value}


def fingerprint_inputs(values: Mapping[str, Any], base_dir: str | os.PathLike[str],
                       cache: Path | None = None) -> tuple[dict[str, dict[str, Any]], HashStats]:
    """Fingerprints of ``{config key: path value}``; relative paths are taken from ``base_dir``
    (the launch dir, as ``hydra.utils.to_absolute_path`` does). Missing paths warn, never raise."""
    stats = HashStats()
    out: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if value is ABSENT:
            log.warning("hydra-ledger: input %s is not a key of the config — recorded as missing "
                        "(check hydra.callbacks.ledger.inputs)", key)
            out[key] = {"path": None, "kind": "missing", "hash": None}
            continue
        if value is None or not isinstance(value, (str, os.PathLike)) or not str(value):
            log.warning("hydra-ledger: input %s is %r, not a path — recorded as missing", key, value)
            out[key] = {"path": None, "kind": "missing", "hash": None}
            continue
        path = Path(os.path.expanduser(str(value)))
        if not path.is_absolute():
            path = Path(base_dir, path)
        try:
            entry = fingerprint_path(path, stats, cache)
        except OSError as exc:
            log.warning("hydra-ledger: cannot fingerprint input %s (%s): %s — recorded as unreadable",
                        key, path, exc)
            entry = {"path": os.path.abspath(path), "kind": "unreadable", "hash": None, "error": str(exc)}
        if entry["kind"] == "missing":
            log.warning("hydra-ledger: input %s: %s does not exist — recorded as missing", key, entry["path"])
        out[key] = entry
    return out, stats


def select_inputs(config: Any, keys: Iterable[str]) -> dict[str, Any]:
    """``{key: value}`` of the named config keys, resolved; :data:`ABSENT` for a key the config lacks."""
    from omegaconf import OmegaConf

    values: dict[str, Any] = {}
    for key in keys:
        try:
            value = OmegaConf.select(config, key, throw_on_missing=False, default=ABSENT)
        except Exception as exc:  # noqa: BLE001 - an interpolation that fails to resolve
            log.warning("hydra-ledger: input %s cannot be resolved (%s)", key, exc)
            value = None
        values[key] = None if value == "???" else value
    return values


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def record_inputs(config: Any, keys: Iterable[str]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Job process, ``on_job_start``: ``(inputs, hashing cost)`` for the record's ``inputs`` and
    ``input_hashing`` fields. Relative paths are taken from the launch dir (``hydra.runtime.cwd``)."""
    base = str(config.hydra.runtime.cwd)
    fingerprints, stats = fingerprint_inputs(select_inputs(config, keys), base)
    return fingerprints, stats.as_dict()
