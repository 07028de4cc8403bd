"""An incremental columnar index of the records under a root: what makes loading 100k runs fast.

The per-job files stay the truth; the index is a cache that deleting changes no result of.

- **What**: one Arrow IPC file per root (absolute path), holding a row per job dir as the
  loader flattens it (``cfg.``, ``summary.``... columns, typed natively where a column's
  values share one type, JSON text otherwise), plus what is needed to tell what changed:
  each record's signature (size, mtime, inode of ``run.json`` and its sidecars), the mtimes
  and subdirs of the plain dirs (sweeps, dates), the sweep records, the broken records.
  Uncompressed and memory-mapped: a load maps the columns it reads instead of decompressing
  the whole file (103 MB for 100k runs against 25 MB with LZ4: ~1 KB per run).
- **Where**: ``$HYDRA_LEDGER_CACHE`` or ``${XDG_CACHE_HOME:-~/.cache}/hydra-ledger/index/``,
  a file named by a hash of the root's absolute path; nothing is written into the run
  tree. Unwritable: the load works from memory. ``HYDRA_LEDGER_CACHE=off`` disables it.
- **Change detection** without a stat per job: a plain dir whose mtime is unchanged has
  the same entries, so its finished job dirs stand as indexed; a job's every record write
  also touches its parent dir (:func:`hydra_ledger.record.changes.mark_changed`), as do tag and
  note edits; a changed dir has each of its job dirs' signatures compared. RUNNING, broken
  and racily-recent records (mtime within 2 s of the read: clock-tick granularity) are
  examined at every load.
- **Concurrency**: readers see the old or the new file (written to a temp file, then
  ``os.replace``); two loaders may both write, the last one wins, both are complete. No locks
  (NFS has none to rely on). A corrupt or foreign file is rebuilt with a warning.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from hydra_ledger.errors import LedgerWarning
from hydra_ledger.load import kernels, walk
from hydra_ledger.load.encode import INTERNAL, LAYOUT, RACY, REL, SIG, concat, encode_rows, no_gc
from hydra_ledger.record.files import replacing
from hydra_ledger.record.paths import LEDGER_DIR, RunPaths
from hydra_ledger.record.row_journal import stat_signature
from hydra_ledger.record.schema import RecordError

log = logging.getLogger(__name__)

INDEX_FORMAT = 1
META_KEY = b"hydra-ledger-index"
# The modules whose code decides the rows: an index made by other code is rebuilt.
_CODE = ("load/index.py", "load/encode.py", "load/walk.py", "record/rows.py", "load/__init__.py", "record/flatten.py",
         "record/sidecars.py", "record/schema.py", "record/files.py", "record/paths.py", "load/status.py",
         "record/row_journal.py")


class IndexWarning(LedgerWarning):
    """The index of a root was unusable (corrupt, foreign) and is rebuilt; results are unaffected."""


# -- the index of one root -------------------------------------------------------------------


@dataclass
class RootIndex:
    """The indexed state of one root: rows (walk order), key layouts, dir states, sweeps, broken records."""

    root: str
    table: pa.Table
    layouts: list[list[str]]
    dirs: dict[str, walk.DirState] = field(default_factory=dict)
    sweeps: dict[str, list[Any]] = field(default_factory=dict)  # rel -> [signature, job nums, error text]
    broken: dict[str, list[Any]] = field(default_factory=dict)
    warned: dict[str, list[str]] = field(default_factory=dict)  # rel -> warnings of an indexed row


def report_broken(indexes: Sequence[RootIndex], errors: str) -> None:
    """Warn about (or raise for) each broken record, and each record loaded with a field left
    empty, in walk order, as the plain loader does."""
    from hydra_ledger.record.schema import LedgerLoadWarning

    seen: set[str] = set()
    for index in indexes:
        rels = sorted({*index.broken, *index.warned}, key=walk.walk_key)
        for rel in rels:
            if rel in index.broken:
                _sig, path, problem, hint = index.broken[rel]
                if path in seen or problem == walk.STARTING_RECORD:  # re-read by the next load
                    continue
                seen.add(path)
                exc = RecordError(path, problem, hint)
                if errors == "raise":
                    raise exc
                if errors == "warn":
                    warnings.warn(str(exc), LedgerLoadWarning, stacklevel=4)
                continue
            for message in index.warned[rel]:
                if message in seen:  # a job under two of the roots
                    continue
                seen.add(message)
                if errors == "raise":
                    raise RecordError(Path(index.root, rel, LEDGER_DIR, RunPaths.RECORD), message.split(": ", 2)[-1])
                if errors == "warn":
                    warnings.warn(message, LedgerLoadWarning, stacklevel=4)


def _empty_table() -> pa.Table:
    return encode_rows([]).table


def code_fingerprint() -> str:
    from hydra_ledger._version import __version__

    digest = hashlib.sha256(f"{INDEX_FORMAT}:{__version__}".encode())
    here = Path(__file__).parent.parent  # the package's root: _CODE names files under it
    for name in _CODE:
        try:
            digest.update((here / name).read_bytes())
        except OSError:
            digest.update(name.encode())
    return digest.hexdigest()[:16]


def cache_dir() -> Path | None:
    """Where indexes live: ``$HYDRA_LEDGER_CACHE``, else the user's cache dir; None when turned off."""
    setting = os.environ.get("HYDRA_LEDGER_CACHE")
    if setting is not None and setting.strip().lower() in ("off", "0", "false", "no", ""):
        return None
    if setting:
        return Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hydra-ledger" / "index"


def cache_file(root: str) -> Path | None:
    """The index file of ``root`` (an absolute path), or None when caching is off."""
    directory = cache_dir()
    if directory is None:
        return None
    return directory / f"{hashlib.sha256(root.encode()).hexdigest()[:24]}.arrow"


def read_index(path: Path, root: str, fingerprint: str) -> RootIndex | None:
    """The stored index of ``root``, or None: absent, stale code (silently), corrupt or foreign (a warning)."""
    try:
        source = pa.memory_map(str(path), "r")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        _warn_rebuild(path, f"unreadable ({exc})")
        return None
    try:
        reader = pa.ipc.open_file(source)
        meta = orjson.loads((reader.schema.metadata or {})[META_KEY])
        if meta.get("format") != INDEX_FORMAT or meta.get("code") != fingerprint:
            log.info("hydra-ledger: index %s was made by another version: rebuilding", path)
            return None
        if meta.get("root") != root:
            _warn_rebuild(path, f"an index of {meta.get('root')!r}, not of {root!r}")
            return None
        table = reader.read_all()
        if table.column_names[:len(INTERNAL)] != list(INTERNAL):
            raise ValueError("internal columns missing")
        return RootIndex(root, table, meta["layouts"],
                         {rel: walk.DirState.from_json(v) for rel, v in meta["dirs"].items()},
                         meta["sweeps"], meta["broken"], meta.get("warned", {}))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a damaged file
        _warn_rebuild(path, f"corrupt ({type(exc).__name__}: {exc})")
        return None


def _warn_rebuild(path: Path, problem: str) -> None:
    warnings.warn(f"hydra-ledger: index {path} is {problem} — rebuilding it from the records (results are "
                  "unaffected; delete the file to silence this)", IndexWarning, stacklevel=5)



def write_index(path: Path, index: RootIndex, fingerprint: str) -> None:
    """Atomically replace ``path``; failure (read-only, full disk) leaves the load in memory only."""
    meta = {
        "format": INDEX_FORMAT, "code": fingerprint, "root": index.root, "written_at": time.time(),
        "layouts": index.layouts, "dirs": {rel: st.to_json() for rel, st in index.dirs.items()},
        "sweeps": index.sweeps, "broken": index.broken, "warned": index.warned,
    }
    table = index.table.replace_schema_metadata({META_KEY: orjson.dumps(meta)})
    if table.num_columns and table.column(0).num_chunks > 1:
        # one chunk per column, copied once here: a load then takes each column as it is mapped
        # (16 chunks of 10,000 runs were copied into one at every load; 16 chunks of a 10,000-key
        # config took 2 s to read, one 0.08 s)
        table = table.combine_chunks()
    try:
        with replacing(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    except OSError as exc:
        log.info("hydra-ledger: cannot write the index %s (%s): loading from memory", path, exc)


def _under(rel: str, prefixes: set[str]) -> bool:
    if "" in prefixes:
        return True
    while True:
        if rel in prefixes:
            return True
        if not rel:
            return False
        rel = walk.parent_of(rel)


def update(root: str, prior: RootIndex | None, now: float,
           progress: walk.Progress | None = None) -> tuple[RootIndex, bool]:
    """Bring the index of ``root`` up to date with the tree; ``(index, changed)``."""
    if prior is None:
        prior = RootIndex(root, _empty_table(), [])
    table = prior.table
    known = _Known(table, prior.broken)
    untrusted = set(prior.broken)
    if table.num_rows:
        untrusted.update(kernels.take(table.column(REL), _in_doubt(table)).to_pylist())
    if not table.num_rows and not prior.broken and not prior.dirs:  # nothing indexed: walk, read in worker processes
        scan, chunks, ordered = walk.cold_scan(root, now, progress)
    else:
        scan = walk.walk(root, prior.dirs, known, untrusted, int(now * 1e9))
        chunks = walk.read_jobs(root, scan.to_read, now, progress, scan.journaled) \
            if scan.to_read or scan.journaled else []
        ordered = False
    dropped = {rel for rel, _ in scan.to_read} | {item[0] for item in scan.journaled} | scan.not_jobs
    if scan.gone:
        dropped.update(rel for rel in known if _under(rel, scan.gone))
    layouts = list(prior.layouts)
    indexed = [rel for rel in dropped if rel in known and rel not in prior.broken]  # new jobs are in no row
    parts = [table]
    if indexed:
        gone = kernels.SetLookupOptions(pa.array(sorted(indexed), pa.string()))
        parts = [kernels.filter(table, kernels.invert(kernels.is_in(table.column(REL), options=gone)))]
    for chunk in chunks:
        remap = np.array([_layout_id(layouts, keys) for keys in chunk.layouts] or [0], dtype=np.int32)
        t = chunk.table
        if t.num_rows:
            ids = remap[t.column(LAYOUT).to_numpy()]
            t = t.set_column(t.column_names.index(LAYOUT), LAYOUT, pa.array(ids, pa.int32()))
        parts.append(t)
    table = (concat(parts) if ordered else _in_walk_order(parts)) if chunks else parts[0]
    broken = {rel: v for rel, v in prior.broken.items() if rel not in dropped}
    warned = {rel: v for rel, v in prior.warned.items() if rel not in dropped}
    for chunk in chunks:
        broken.update(chunk.broken)
        warned.update(chunk.warned)
    dirs = {rel: st for rel, st in prior.dirs.items() if rel not in scan.now_jobs}
    if scan.gone:
        dirs = {rel: st for rel, st in dirs.items() if not _under(rel, scan.gone)}
    dirs.update(scan.dirs)
    changed = scan.changed or bool(chunks) or dirs.keys() != prior.dirs.keys() or any(
        prior.dirs.get(rel) is not st for rel, st in scan.dirs.items())
    for rel, st in dirs.items():
        st.subdirs = [n for n in st.subdirs if walk.join(rel, n) in dirs]
    sweeps: dict[str, list[Any]] = {}
    for rel, st in dirs.items():
        if not st.sweep:
            continue
        if rel in scan.sweeps:  # read along with its jobs
            sweeps[rel] = scan.sweeps[rel]
            changed = True
            continue
        old = prior.sweeps.get(rel)
        sig = _stat_sig(root, rel)
        if old is not None and old[0] == sig and sig:
            sweeps[rel] = old
        else:
            sweeps[rel] = walk.read_sweep(root, rel)
            changed = True
    changed = changed or sweeps.keys() != prior.sweeps.keys()
    used = sorted(kernels.unique(table.column(LAYOUT)).to_pylist()) if table.num_rows else []
    if changed and len(used) < len(layouts):  # drop layouts no row uses any more
        remap = np.zeros(len(layouts), dtype=np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        table = table.set_column(table.column_names.index(LAYOUT), LAYOUT,
                                 pa.array(remap[table.column(LAYOUT).to_numpy()], pa.int32()))
        layouts = [layouts[i] for i in used]
    return RootIndex(root, table, layouts, dirs, sweeps, broken, warned), changed


def _in_doubt(table: pa.Table) -> pa.Array:
    """Positions of the rows to read again: RUNNING or unknown status, or a record changed too
    shortly before it was indexed to trust its timestamp (racy). Computed without a Python value
    given to Arrow: pyarrow imports pandas (0.3-0.5 s) to convert one, and a warm load that finds
    nothing changed needs no pandas."""
    status = table.column("status")
    if not pa.types.is_string(status.type) and not pa.types.is_large_string(status.type):  # no status at all
        return kernels.indices_nonzero(kernels.is_null(status))
    running = kernels.match_substring_regex(status, options=kernels.MatchSubstringOptions("^RUNNING$"))
    trusted = kernels.and_(kernels.invert(table.column(RACY)), kernels.invert(running))
    return kernels.indices_nonzero(kernels.invert(kernels.and_kleene(kernels.is_valid(trusted), trusted)))


def _in_walk_order(parts: list[pa.Table]) -> pa.Table:
    """The kept rows (``parts[0]``, in walk order) and the new ones, stacked in walk order.

    New jobs mostly come after every indexed one (new sweeps, new dates): then only the new
    rows are ordered, and the 100k indexed rows are neither keyed nor copied.
    """
    old = parts[0]
    new = concat(parts[1:]) if len(parts) > 2 else parts[1]
    new_keys = [walk.walk_key(r) for r in new.column(REL).to_pylist()]
    last = walk.walk_key(old.column(REL)[old.num_rows - 1].as_py()) if old.num_rows else None
    if new.num_rows and (last is None or min(new_keys) > last):
        order = sorted(range(len(new_keys)), key=new_keys.__getitem__)
        if order != list(range(len(order))):
            new = kernels.take(new, pa.array(order, pa.int64()))
        return concat([old, new])
    table = concat(parts)
    keys = [walk.walk_key(r) for r in table.column(REL).to_pylist()]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return kernels.take(table, pa.array(order, pa.int64()))


class _Known(Mapping[str, str]):
    """Job dir -> signature of the indexed rows and broken records, built on first use: a warm
    load that finds nothing changed never needs it."""

    def __init__(self, table: pa.Table, broken: dict[str, list[Any]]) -> None:
        self._table, self._broken = table, broken
        self._map: dict[str, str] | None = None

    def _get(self) -> dict[str, str]:
        if self._map is None:
            known = dict(zip(self._table.column(REL).to_pylist(), self._table.column(SIG).to_pylist()))
            known.update((rel, v[0]) for rel, v in self._broken.items())
            self._map = known
        return self._map

    def __getitem__(self, rel: str) -> str:
        return self._get()[rel]

    def __contains__(self, rel: object) -> bool:
        return rel in self._get()

    def __iter__(self) -> Any:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def _layout_id(layouts: list[list[str]], keys: list[str]) -> int:
    try:
        return layouts.index(keys)
    except ValueError:
        layouts.append(keys)
        return len(layouts) - 1


def _stat_sig(root: str, rel: str) -> str:
    """The signature of a sweep's record (plain strings: pathlib cost more than the stat, 1,000 times a load)."""
    from hydra_ledger.record.paths import SweepPaths

    try:
        return stat_signature(os.stat(f"{walk.under(root, rel)}{os.sep}{LEDGER_DIR}{os.sep}{SweepPaths.RECORD}"))
    except OSError:
        return ""


def load_root(root: str, *, rebuild: bool = False, now: float | None = None,
              progress: walk.Progress | None = None, writes: list[Callable[[], None]] | None = None) -> RootIndex:
    """The up-to-date index of ``root`` (absolute), read from and written back to the cache;
    ``writes``: where to leave the write instead of doing it (see :func:`writing_meanwhile`)."""
    now = time.time() if now is None else now
    path = cache_file(root)
    fingerprint = code_fingerprint()
    prior = None if path is None or rebuild else read_index(path, root, fingerprint)
    with no_gc():
        index, changed = update(root, prior, now, progress)
    if path is not None and (changed or prior is None):
        if writes is None:
            write_index(path, index, fingerprint)
        else:
            writes.append(functools.partial(write_index, path, index, fingerprint))
    return index


@contextlib.contextmanager
def writing_meanwhile(writes: list[Callable[[], None]]) -> Iterator[None]:
    """Do ``writes`` (index writes left by :func:`load_roots`) in a thread while the block runs,
    e.g. while the frame is built: Arrow writes without holding the GIL, and after a first load's
    worker processes the other core is idle. All done when the block ends; a write's unexpected
    error is raised then. Started only after the loading, which may fork worker processes."""
    if not writes:
        yield
        return
    failed: list[BaseException] = []

    def write_all() -> None:
        try:
            for write in writes:
                write()
        except BaseException as exc:  # noqa: BLE001 - raised in the loading thread below
            failed.append(exc)

    thread = threading.Thread(target=write_all, name="hydra-ledger-index-writer")
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if failed:
        raise failed[0]


def load_file(record_file: str, now: float) -> RootIndex:
    """A record file given directly: read it, no index."""
    job_dir = os.path.dirname(os.path.dirname(os.path.abspath(record_file)))
    try:
        ledger = os.listdir(os.path.dirname(os.path.abspath(record_file)))
    except OSError:
        ledger = []
    chunk = encode_rows([("", *walk.read_job(job_dir, "", ledger, now, record_file))])
    return RootIndex(job_dir, chunk.table, chunk.layouts, broken=chunk.broken, warned=chunk.warned)


def load_roots(paths: Sequence[str | os.PathLike[str]], now: float, cache: str = "auto",
               progress: walk.Progress | None = None,
               writes: list[Callable[[], None]] | None = None) -> list[RootIndex]:
    """The up-to-date index of each path (a record file given directly is just read); ``writes``:
    see :func:`load_root`."""
    out = []
    for given in paths:
        path = Path(given)
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(f"hydra-ledger: no such file or directory: {path}")
        if path.is_file():
            out.append(load_file(str(path), now))
        elif cache == "off":
            out.append(update(os.path.abspath(path), None, now, progress)[0])
        else:
            out.append(load_root(os.path.abspath(path), rebuild=cache == "rebuild", progress=progress,
                                 writes=writes))
    return out
