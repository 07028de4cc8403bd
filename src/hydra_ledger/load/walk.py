"""Finding and reading job records under a root, incrementally: the walk behind the index.

One pass collects everything the loader needs from the tree: job dirs (a ``.ledger/run.json``),
the sidecars present beside each record (``tags.json``, ``notes.jsonl``: read only where they
exist), and sweep records (``.ledger/sweep.json``). Given the previous state, it re-reads only
what may have changed (see :mod:`hydra_ledger.load.index` for the rules); parsing is spread over
worker processes when there are many records. A new job dir whose sweep's row journal holds the
row of its very record (:mod:`hydra_ledger.record.row_journal`) is taken from there, unread.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from stat import S_ISREG
from typing import Any

from hydra_ledger.load.status import heartbeat_of
from hydra_ledger.record import files as _files
from hydra_ledger.record.files import MAX_SIDECAR_BYTES, read_regular_file, unreadable_problem
from hydra_ledger.record.paths import LEDGER_DIR, NO_RECORDS_BELOW, RunPaths, SweepPaths
from hydra_ledger.record.row_journal import JournalRow, KeyedValues, read_journal, stat_signature, subdirs_of
from hydra_ledger.record.rows import record_to_row, sweep_dir_of
from hydra_ledger.record.schema import SWEEP_SCHEMA, RecordError, parse_record, side_file_message, unreadable

log = logging.getLogger(__name__)

# Told of a long load's progress while worker processes read records (the command line draws a
# bar with it): called as ``progress(results, total)``, it yields the results as they come.
Progress = Callable[[Iterable[Any], int], Iterable[Any]]

# Modification times this close to the moment they were read may hide a later change made in
# the same clock tick (NFS and some filesystems keep whole seconds; FAT two): such a dir or
# record is looked at again by the next load, like git's "racily clean" index entries.
RACY_NS = 2_000_000_000
SIDECARS = (RunPaths.TAGS, RunPaths.NOTES)
# Below this many records to parse, worker processes cost more than they save.
PARALLEL_MIN = 2_000


def join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def under(root: str, rel: str) -> str:
    """``os.path.join(root, rel)`` of a walk's rel path (empty for the root itself), at a fifth of
    its cost: run per sweep dir at every load (1,000 of them here)."""
    if not rel:
        return root
    return f"{root}{rel}" if root.endswith(os.sep) else f"{root}{os.sep}{rel}"


def parent_of(rel: str) -> str:
    return rel.rpartition("/")[0]


def walk_key(rel: str) -> tuple[str, ...]:
    """Sort key giving the plain walk's order: depth first, children by name, a dir before its children."""
    return tuple(rel.split("/")) if rel else ()


@dataclass
class DirState:
    """What the index remembers of a directory that is not a job dir."""

    mtime_ns: int
    racy: bool
    subdirs: list[str]  # names of subdirs that are not job dirs: checked at each load
    sweep: bool = False  # holds .ledger/sweep.json

    def to_json(self) -> list[Any]:
        return [self.mtime_ns, self.racy, self.subdirs, self.sweep]

    @classmethod
    def from_json(cls, data: list[Any]) -> DirState:
        return cls(int(data[0]), bool(data[1]), [str(s) for s in data[2]], bool(data[3]))


@dataclass
class Scan:
    """What a walk found: dir states, job dirs to read, job dirs unchanged, what vanished."""

    dirs: dict[str, DirState] = field(default_factory=dict)
    to_read: list[tuple[str, list[str]]] = field(default_factory=list)  # (rel, names in its .ledger)
    gone: set[str] = field(default_factory=set)  # dirs whose whole sub-tree vanished
    not_jobs: set[str] = field(default_factory=set)  # known job dirs whose record is gone
    now_jobs: set[str] = field(default_factory=set)  # known plain dirs that now hold a record
    frontier: list[str] = field(default_factory=list)  # dirs not walked (below the depth asked)
    sweeps: dict[str, list[Any]] = field(default_factory=dict)  # sweep records read already (read_sweep)
    # new job dirs whose rows their sweep's journal gave: (rel, signature, racy, (names, values))
    journaled: list[tuple[str, str, bool, KeyedValues]] = field(default_factory=list)

    def merge(self, other: Scan) -> None:
        self.dirs.update(other.dirs)
        self.to_read += other.to_read
        self.journaled += other.journaled
        self.gone |= other.gone
        self.not_jobs |= other.not_jobs
        self.now_jobs |= other.now_jobs
        self.sweeps.update(other.sweeps)

    @property
    def changed(self) -> bool:
        return bool(self.to_read or self.journaled or self.gone or self.not_jobs or self.now_jobs)


def _scandir(path: str) -> tuple[list[str], list[str] | None, bool]:
    """``(subdirs to walk, names in .ledger or None, has a run record)``; raises OSError if unreadable."""
    subdirs: list[str] = []
    ledger: list[str] | None = None
    record = False
    for entry in os.scandir(path):
        name = entry.name
        if name == LEDGER_DIR:
            try:
                inner = list(os.scandir(entry.path))
            except OSError:  # a .ledger file, or unreadable: no record here, as for the plain walk
                continue
            ledger = [e.name for e in inner]
            for e in inner:
                if e.name == RunPaths.RECORD:
                    try:  # a dangling symlink counts (reported unreadable); a directory does not
                        record = not e.is_dir()
                    except OSError:
                        record = True
            # neither a run's nor a sweep's record: a job killed before its first write, or a
            # partial copy; read_job reports it, naming the dir, rather than it vanishing silently
            record = record or not (set(ledger) & {RunPaths.RECORD, SweepPaths.RECORD})
        elif name not in NO_RECORDS_BELOW:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(name)
            except OSError:
                continue
    return subdirs, ledger, record


def job_signature(job_dir: str, ledger: Iterable[str]) -> tuple[str, int]:
    """``(signature, newest mtime_ns)`` of a job's record and sidecars: size, mtime and inode of each."""
    parts, newest = [], 0
    names = set(ledger)
    for name in (RunPaths.RECORD, *SIDECARS):
        if name not in names:
            continue
        try:
            stat = os.stat(os.path.join(job_dir, LEDGER_DIR, name))
        except OSError:
            parts.append(f"{name}=?")
            continue
        parts.append(f"{name}={stat_signature(stat)}")
        newest = max(newest, stat.st_mtime_ns)
    return ";".join(parts), newest


def walk(root: str, previous: Mapping[str, DirState], known: Mapping[str, str], untrusted: set[str],
         now_ns: int, start: Iterable[str] = ("",), depth: int | None = None) -> Scan:
    """Walk ``root`` against the previous state, reading as little as the rules allow.

    ``previous``: states of plain dirs; ``known``: job dir -> signature of what the index
    holds; ``untrusted``: job dirs examined even under an unchanged parent (RUNNING, racy,
    broken). A plain dir whose mtime is unchanged (and was not racy) has the same entries:
    its job dirs stand as indexed, its plain subdirs are checked the same way. A changed or
    new dir is listed again and each job dir in it has its record's signature compared; a new
    job dir of a sweep with a journal gets its row from it (``scan.journaled``) when the line is
    of its record as it is now, and is read otherwise (``scan.to_read``).
    ``start``: the dirs to walk from; ``depth``: go no deeper (the dirs left are in ``scan.frontier``).
    """
    scan = Scan()
    by_parent: dict[str, list[str]] = {}
    for rel in untrusted:
        by_parent.setdefault(parent_of(rel), []).append(rel)
    known_children: dict[str, list[str]] | None = None
    stack: list[tuple[str, bool]] = [(rel, rel in previous) for rel in start]  # (rel, check mtime first)
    while stack:
        rel, check = stack.pop()
        if depth is not None and rel.count("/") + bool(rel) > depth:
            scan.frontier.append(rel)
            continue
        path = under(root, rel)
        old = previous.get(rel)
        if check and old is not None:
            try:
                mtime_ns = os.stat(path).st_mtime_ns
            except OSError:
                scan.gone.add(rel)
                continue
            if mtime_ns == old.mtime_ns and not old.racy:
                scan.dirs[rel] = old
                stack.extend((join(rel, name), True) for name in old.subdirs if join(rel, name) in previous)
                stack.extend((job, False) for job in by_parent.get(rel, ()) if job != rel)
                continue
        try:
            subdirs, ledger, record = _scandir(path)
            mtime_ns = 0 if record else os.stat(path).st_mtime_ns  # a job dir's own mtime tells nothing
        except OSError:
            scan.gone.add(rel)
            continue
        if record:
            if old is not None:
                scan.now_jobs.add(rel)
            sig = known.get(rel)
            if sig is None or rel in untrusted or job_signature(path, ledger or ())[0] != sig:
                scan.to_read.append((rel, ledger or []))
        else:
            if rel in known:
                scan.not_jobs.add(rel)
            scan.dirs[rel] = DirState(mtime_ns, mtime_ns >= now_ns - RACY_NS, subdirs,
                                      sweep=ledger is not None and SweepPaths.RECORD in ledger)
        if old is not None or rel in known:  # what was here before and is not any more
            if known_children is None:
                known_children = {}
                for job in known:
                    known_children.setdefault(job.rpartition("/")[0], []).append(job)  # parent_of, inlined
            present = set(subdirs)
            before = [join(rel, n) for n in (old.subdirs if old is not None else ())]
            before += [j for j in known_children.get(rel, ()) if j != rel]
            scan.gone.update(child for child in before if child.rpartition("/")[2] not in present)
        if record or ledger is None or SweepPaths.ROWS not in ledger:
            stack.extend((join(rel, name), True) for name in subdirs)
            continue
        journal = None  # read once a new job dir needs it: a re-listed sweep of indexed jobs never does
        limit_ns = now_ns - RACY_NS
        for name in subdirs:
            child = join(rel, name)
            taken = None
            if child not in known and child not in previous and child not in untrusted:
                if journal is None:
                    journal = read_journal(path)
                entry = journal.get(name)
                if entry is not None:
                    taken = _journaled_job(under(path, name), entry, limit_ns)
            if taken is None:
                stack.append((child, True))
                continue
            sig, racy, row, below = taken
            scan.journaled.append((child, sig, racy, row))
            stack.extend((join(child, sub), True) for sub in below)
    return scan


def _journaled_job(job_dir: str, entry: JournalRow,
                   limit_ns: int) -> tuple[str, bool, KeyedValues, list[str]] | None:
    """``(signature, racy, row, subdirs)`` of a new job dir from its sweep's journal, or None to
    read its record: the line must be of the very run.json there, with no tag or note sidecar.

    Four stats instead of listing the job dir and its ``.ledger/`` and reading and parsing the
    record; the subdirs (walked as ever) are the line's while the job dir's mtime is.
    """
    ledger_dir = f"{job_dir}{os.sep}{LEDGER_DIR}{os.sep}"  # joined by hand: os.path.join costs as much as a stat
    try:
        stat = os.stat(ledger_dir + RunPaths.RECORD)
        if stat_signature(stat) != entry.record_sig or not S_ISREG(stat.st_mode):
            return None
        for name in SIDECARS:
            try:
                os.lstat(ledger_dir + name)
            except FileNotFoundError:
                continue
            return None  # a tag or note (or something unreadable in its place): the record is read with it
        dir_mtime_ns = os.stat(job_dir).st_mtime_ns
        fresh = dir_mtime_ns == entry.dir_mtime_ns and dir_mtime_ns < limit_ns
        subdirs = entry.subdirs if fresh else subdirs_of(job_dir)
    except OSError:
        return None
    keys, values = entry.keys, entry.values
    values[keys.path] = job_dir
    values[keys.sweep] = sweep_dir_of(job_dir, entry.place)
    return f"{RunPaths.RECORD}={entry.record_sig}", stat.st_mtime_ns >= limit_ns, (keys.names, values), subdirs


# -- reading records ------------------------------------------------------------------------


MISSING_RECORD = "missing: the job's .ledger/ dir has no run.json (killed before its first write, or a partial copy?)"
MISSING_RECORD_HINT = "skipped; rerun the job, or delete the dir"
# A job writes its first record moments after creating .ledger/: until the dir is as old as a
# dead job's heartbeat would be (stale_after_s of the default heartbeat), it is starting, not lost.
STARTING_RECORD = "not written yet (the job is starting)"
STARTING_GRACE_S = 30.0


def missing_record_problem(record_file: str | os.PathLike[str], now: float) -> str:
    """Why a job dir's record is absent: MISSING_RECORD, or STARTING_RECORD (not reported) for a young .ledger/."""
    try:
        created = os.stat(os.path.dirname(record_file)).st_mtime
    except OSError:
        return MISSING_RECORD
    return STARTING_RECORD if now - created < STARTING_GRACE_S else MISSING_RECORD


def read_job(root: str, rel: str, ledger: Iterable[str], now: float,
             record_file: str | None = None) -> tuple[str, bool, dict[str, Any] | RecordError]:
    """``(signature, racy, row or error)`` of one job dir; the signature covers the record and its sidecars.

    Paths stay plain strings and the file is read with ``os`` calls: this runs once per record
    on a cold load, where pathlib and buffered file objects cost as much as the parsing.
    """
    job_dir = under(root, rel)
    ledger_dir = os.path.join(job_dir, LEDGER_DIR)
    if record_file is None:
        record_file = os.path.join(ledger_dir, RunPaths.RECORD)
    limit = int(now * 1e9) - RACY_NS
    names = set(ledger)
    try:
        stat, data = _read_file(record_file)
    except OSError as exc:
        if not os.path.lexists(record_file):  # not even a dangling symlink: never written
            return "", True, RecordError(record_file, missing_record_problem(record_file, now), MISSING_RECORD_HINT)
        if not isinstance(exc, FileNotFoundError):
            return "", True, unreadable(record_file, exc)
        try:  # absent when opened, there now: the job's first write landed in between
            stat, data = _read_file(record_file)
        except OSError as again:  # a dangling symlink, say
            return "", True, unreadable(record_file, again)
    parts = [f"{RunPaths.RECORD}={stat_signature(stat)}"]
    racy = stat.st_mtime_ns >= limit
    unread = []
    for name in SIDECARS:
        if name in names:
            try:
                side = os.stat(os.path.join(ledger_dir, name))
            except OSError:
                parts.append(f"{name}=?")
                continue
            parts.append(f"{name}={stat_signature(side)}")
            racy = racy or side.st_mtime_ns >= limit
            problem = unreadable_problem(side, MAX_SIDECAR_BYTES)
            if problem:  # a FIFO would block the read forever: the sidecar is left out, with a warning
                names.discard(name)
                unread.append(side_file_message(os.path.join(ledger_dir, name), problem))
    try:
        record = parse_record(record_file, data)
    except RecordError as exc:
        return ";".join(parts), True, exc
    row = record_to_row(record, job_dir, ledger_names=names, date_fallback=pandas_reads_date)
    if unread:
        row.setdefault("#warn", []).extend(unread)
    if row["status"] == "RUNNING":  # derived again at each load, from its heartbeat then
        row["#hb"] = heartbeat_of(record)
    return ";".join(parts), racy, row


def pandas_reads_date(value: str) -> bool:
    """Whether pandas' ISO 8601 parser (the frame's) reads a date Python's refused (e.g. a ``Z``
    suffix on Python 3.10)."""
    import pandas as pd

    try:
        pd.to_datetime([value], utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _read_file(path: str) -> tuple[os.stat_result, bytes]:
    """``(stat, content)`` of the very file read, even if it is replaced meanwhile; a FIFO, device
    or oversized file raises :class:`~hydra_ledger.record.schema.NotARegularFile` unread."""
    return read_regular_file(path, _files.MAX_RECORD_BYTES)


def read_sweep(root: str, rel: str) -> list[Any]:
    """``[signature, job nums or None, error or None]`` of a sweep dir's record: what tells
    whether it can have PENDING jobs (None: read it to know); the record is read when needed."""
    path = SweepPaths(under(root, rel)).record
    try:
        stat, data = _read_file(str(path))
    except OSError as exc:
        return ["", None, str(unreadable(path, exc))]
    sig = stat_signature(stat)
    try:
        record = parse_record(path, data, SWEEP_SCHEMA)
    except RecordError as exc:
        return [sig, None, str(exc)]
    jobs = record.get("jobs")
    if not isinstance(jobs, list):
        return [sig, [], None]
    nums = [job.get("num") for job in jobs if isinstance(job, dict)]
    return [sig, nums if all(type(n) is int for n in nums) else None, None]


def _read_chunk(root: str, jobs: list[tuple[str, list[str]]], now: float) -> Any:
    """Worker process: read and encode a chunk of job dirs as one Arrow table (compact to send back)."""
    from hydra_ledger.load.encode import encode_rows

    return encode_rows([(rel, *read_job(root, rel, ledger, now)) for rel, ledger in jobs])


def read_jobs(root: str, jobs: list[tuple[str, list[str]]], now: float, progress: Progress | None = None,
              journaled: list[tuple[str, str, bool, KeyedValues]] | None = None) -> list[Any]:
    """Encoded chunks for ``jobs``, read in worker processes when there are many and cores to use,
    and for the ``journaled`` rows (:attr:`Scan.journaled`), which need no reading.

    Workers send back Arrow tables, not rows: a chunk of 10k rows pickles as a few buffers.
    ``progress`` is told of the chunks as they come back (see :data:`Progress`).
    """
    from hydra_ledger.load.encode import encode_rows

    workers = _pool_size()
    if len(jobs) < PARALLEL_MIN or workers < 2:
        return [encode_rows([*(journaled or ()), *((rel, *read_job(root, rel, ledger, now)) for rel, ledger in jobs)])]
    if journaled:
        return [encode_rows(journaled), *read_jobs(root, jobs, now, progress)]
    size = max(500, -(-len(jobs) // (workers * 4)))
    chunks = [jobs[i:i + size] for i in range(0, len(jobs), size)]
    try:
        import multiprocessing  # with the pool, here only: 20 ms a warm load never needs
        from concurrent.futures import ProcessPoolExecutor

        # fork: the workers start with this process's imports (pandas, pyarrow) already done
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)) as pool:
            return _reported(pool.map(_read_chunk, [root] * len(chunks), chunks, [now] * len(chunks)), len(chunks),
                             progress)
    except (OSError, RuntimeError) as exc:  # no worker processes here (a sandbox?): read in this one
        log.info("hydra-ledger: reading %d records in one process (%s)", len(jobs), exc)
        return [encode_rows([(rel, *read_job(root, rel, ledger, now)) for rel, ledger in jobs])]


def _walk_and_read(root: str, units: list[str], now: float) -> tuple[Scan, Any]:
    """Worker process: walk some sub-trees of a root not indexed yet, and read their records."""
    from hydra_ledger.load.encode import encode_rows

    scan = walk(root, {}, {}, set(), int(now * 1e9), start=list(reversed(units)))
    items = [*scan.journaled, *((rel, *read_job(root, rel, ledger, now)) for rel, ledger in scan.to_read)]
    items.sort(key=lambda item: walk_key(item[0]))  # units are whole sub-trees: rows come in walk order
    chunk = encode_rows(items)
    scan.to_read, scan.journaled = [], []
    scan.sweeps = {rel: read_sweep(root, rel) for rel, state in scan.dirs.items() if state.sweep}
    return scan, chunk


def cold_scan(root: str, now: float, progress: Progress | None = None) -> tuple[Scan, list[Any], bool]:
    """Walk and read a whole root with no index yet: the sub-trees are shared among worker processes.

    ``(scan, chunks, ordered)``; ``ordered``: the chunks' rows, stacked, are in walk order already.
    """
    now_ns = int(now * 1e9)
    workers = _pool_size()
    scan = walk(root, {}, {}, set(), now_ns, depth=0 if workers > 1 else None)
    while workers > 1 and 0 < len(scan.frontier) < 16 * workers:  # fewer sub-trees than to share well
        deeper = walk(root, {}, {}, set(), now_ns, start=list(reversed(scan.frontier)),
                      depth=max(f.count("/") + 1 for f in scan.frontier))
        scan.frontier = []
        scan.merge(deeper)
        scan.frontier = deeper.frontier
        if not deeper.frontier:
            break
    # Units are sub-trees, none inside another: in walk order, so are their rows one after the other.
    units = sorted(scan.frontier, key=walk_key)
    scan.frontier = []
    ordered = not scan.to_read and not scan.journaled  # jobs above the units would have to be merged in
    chunks = read_jobs(root, scan.to_read, now, progress, scan.journaled) if scan.to_read or scan.journaled else []
    scan.to_read, scan.journaled = [], []
    if not units:
        return scan, chunks, False
    if workers < 2 or len(units) < 2:
        rest, chunk = _walk_and_read(root, units, now)
        scan.merge(rest)
        return scan, [*chunks, chunk], ordered
    count = min(len(units), workers * 4)  # tasks handed out as workers free up: uneven sub-trees even out
    groups = [units[len(units) * i // count:len(units) * (i + 1) // count] for i in range(count)]
    try:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)) as pool:
            results = _reported(pool.map(_walk_and_read, [root] * len(groups), groups, [now] * len(groups)),
                                len(groups), progress)
    except (OSError, RuntimeError) as exc:  # no worker processes here (a sandbox?): all in this one
        log.info("hydra-ledger: reading records in one process (%s)", exc)
        results = [_walk_and_read(root, units, now)]
    for rest, chunk in results:
        scan.merge(rest)
        chunks.append(chunk)
    return scan, chunks, ordered


def _reported(results: Iterable[Any], total: int, progress: Progress | None) -> list[Any]:
    return list(progress(results, total) if progress is not None else results)


def _pool_size() -> int:
    """Worker processes reading records: two per core (up to 8), one process on a single core.

    With the page cache cold, each worker waits on the disk about half the time: two per core
    keep the cores busy (100k records: 15.2-16.3 s instead of 18.7-19.0 s; no slower when the
    files are cached: 6.3-6.4 s).
    """
    cores = _cores()
    return 1 if cores < 2 else min(2 * cores, 8)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
