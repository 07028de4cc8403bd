"""The git state of a sweep's code, captured once by the launching process and reused by its jobs
while the work tree has not changed.

``git status`` costs a process start per job (2-3 ms, more on a big repo). A sweep's jobs mostly
run the very tree the sweep started from, but not always: joblib and submitit/Slurm workers
import the code from disk when they start, so an edit made while the sweep runs is the code
of the later jobs. The launching process therefore keeps, beside the git state, a fingerprint
of everything that state depends on: ``lstat`` of every tracked file, of the directories that
hold tracked or untracked files (a file added or removed changes its directory), and of git's
own HEAD, index, refs, config and info/exclude. A job reuses the state only when the
fingerprint it takes is the same, else it runs git itself, as a single run does. A process
that runs several jobs watches those paths' directories from its second job on
(hydra_ledger.job.tree_watch, local file systems): a job after a quiet watch takes no fingerprint.

Stored as ``<sweep>/.ledger/git.json`` (and the patch of a dirty tree as ``git.patch``) and read
once per process. Left out (each job runs git, as before): repositories with submodules (a
submodule's changes do not show in the stat of its directory), more untracked files than are
listed, and files changed so shortly before the sweep started that their timestamps may not tell a
later edit apart (the "racy git" problem of coarse file clocks): within a few clock ticks, or
within seconds when the sweep dir is on another file system than the repository.
"""
from __future__ import annotations

import contextlib
import logging
import operator
import os
import stat
import time
from pathlib import Path
from typing import Any

import orjson

from hydra_ledger.job import tree_watch
from hydra_ledger.job.capture.git import UNTRACKED_LIMIT, _git, capture_git, find_repo_root
from hydra_ledger.record.files import read_regular_file, temp_name, write_atomic
from hydra_ledger.record.paths import SweepPaths

log = logging.getLogger(__name__)

STATE_VERSION = 1
# A file changed within a tick of the file system's clock before the fingerprint may change again
# within the same tick, unseen in its timestamp ("racy git"). How recent is too recent: judged by
# the mtime of a file just written on the same file system, a few coarse clock ticks; judged by
# this host's clock (the sweep dir is on another file system, whose server's clock may be off),
# seconds.
RACY_SAME_FS_NS = 50_000_000
RACY_OTHER_FS_NS = 2_000_000_000
_MAX_STATE_BYTES = 256 << 20


# What a path's lstat is compared by: it changes when the file is edited, replaced, or has its mode changed.
_facts = operator.attrgetter("st_mtime_ns", "st_ctime_ns", "st_size", "st_ino", "st_mode")


def _stat(path: str) -> list[int] | None:
    try:
        return list(_facts(os.lstat(path)))
    except OSError:
        return None


def fingerprint(root: str, paths: list[str]) -> list[list[int] | None]:
    """``lstat`` facts of ``paths`` (relative to ``root``, or absolute): what changes when a file
    is edited, replaced, added to or removed from a directory, or has its mode changed."""
    return [_stat(os.path.join(root, p)) for p in paths]


def capture_sweep_git(sweep_dir: str, sweep_id: str, start: str, cwd: str, exclude: list[Path],
                      patch_max_bytes: int, save_patch: bool = True) -> bool:
    """Launching process: capture the git state of ``start``'s repository for the sweep's jobs
    and store it with its fingerprint (the patch only if ``save_patch``: it holds uncommitted
    secrets verbatim); False (nothing stored) where jobs must run git themselves."""
    paths = SweepPaths(sweep_dir)
    for stale in (paths.git_state, paths.git_patch):
        stale.unlink(missing_ok=True)  # an earlier sweep's state in this dir must not be reused
    found = find_repo_root(start)
    if found is None or (found / ".gitmodules").exists():
        return False
    root = str(found)
    git_dir, common_dir = _git(found, "rev-parse", "--absolute-git-dir", "--git-common-dir").decode(
        errors="surrogateescape").splitlines()
    common_dir = os.path.join(root, common_dir)  # relative to the root unless absolute
    tracked = [p for p in _git(found, "ls-files", "-z").decode(errors="surrogateescape").split("\0") if p]
    root_dev = os.stat(root).st_dev
    untracked: list[str] = []
    for _ in range(2):  # again if untracked files turn up in directories not watched yet
        watched = _watched(root, git_dir, common_dir, tracked, untracked)
        # the fingerprint first, the state after it: an edit in between shows as a changed fingerprint
        stats = _settled_fingerprint(root, watched, paths, root_dev)
        if stats is None:
            log.debug("hydra-ledger: files changed just before the sweep started: each job captures its git state")
            return False
        info, patch = capture_git(start, patch_max_bytes, exclude)
        if info.get("state") not in ("ok", "no-commits") or info.get("untracked_count", 0) > UNTRACKED_LIMIT:
            return False
        if set(_dirs(info.get("untracked") or ())) <= set(_dirs([*tracked, *untracked])):
            break
        untracked = list(info.get("untracked") or ())
    else:
        return False
    if not save_patch:
        patch = None
    if patch is not None:
        write_atomic(paths.git_patch, patch)
    state = {
        "version": STATE_VERSION, "sweep_id": sweep_id, "start": start, "cwd": cwd, "root": root,
        "info": info, "patch": patch is not None, "paths": watched, "stats": stats,
    }
    write_atomic(paths.git_state, orjson.dumps(state))
    return True


def _settled_fingerprint(root: str, watched: list[str], paths: SweepPaths,
                         root_dev: int) -> list[list[int] | None] | None:
    """The fingerprint once no entry is so recent that a later change could keep its timestamp
    (waiting a few ticks for that on the repository's own file system); None if it stays so."""
    for _ in range(3):
        stats = fingerprint(root, watched)
        now, margin = _fs_now(paths, root_dev)
        if not any(s is not None and max(s[0], s[1]) > now - margin for s in stats):
            return stats
        if margin > RACY_SAME_FS_NS:
            return None
        time.sleep(2 * margin / 1e9)
    return None


def _fs_now(paths: SweepPaths, root_dev: int) -> tuple[int, int]:
    """``(now, margin)`` in ns: the mtime of a file written now beside the sweep's record when
    that is the repository's file system, else this host's clock with a wide margin."""
    probe = temp_name(paths.git_state)
    try:
        with open(probe, "wb") as f:
            f.write(b"now")
            st = os.fstat(f.fileno())
    except OSError:
        return time.time_ns(), RACY_OTHER_FS_NS
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
    if st.st_dev == root_dev:
        return st.st_mtime_ns, RACY_SAME_FS_NS
    return time.time_ns(), RACY_OTHER_FS_NS


def _dirs(files: Any) -> list[str]:
    """The directories holding ``files`` and their ancestors, up to the root (``""``)."""
    found = {""}
    for f in files:
        parent = os.path.dirname(f)
        while parent not in found:
            found.add(parent)
            parent = os.path.dirname(parent)
    return sorted(found)


def _watched(root: str, git_dir: str, common_dir: str, tracked: list[str], untracked: list[str]) -> list[str]:
    """What the git state depends on: git's own files (HEAD, the branch it names, the index,
    refs, config, info/exclude), the directories of the tracked and untracked files, the tracked files."""
    meta = [os.path.join(git_dir, "HEAD"), os.path.join(git_dir, "index"), os.path.join(common_dir, "packed-refs"),
            os.path.join(common_dir, "config"), os.path.join(common_dir, "info", "exclude")]
    try:
        head = Path(git_dir, "HEAD").read_text(errors="surrogateescape").strip()
    except OSError:
        head = ""
    if head.startswith("ref: "):
        meta.append(os.path.join(common_dir, head[len("ref: "):]))
    return meta + _dirs([*tracked, *untracked]) + tracked


# Up to this many watched paths, a job checks the fingerprint before its first record is written
# (a few milliseconds at most), and that record already holds the git state.
QUICK_CHECK_PATHS = 5000


class _SweepState:
    """A sweep's stored git state, made ready for the per-job check: absolute paths, expected stats.

    The first job of a process checks every path; from the second on, the process also watches
    their directories (hydra_ledger.job.tree_watch) and a job after a quiet watch checks nothing.
    Once a check fails, the state stays stale for this process: the tree is no longer the one
    captured.
    """

    def __init__(self, info: dict[str, Any], patch: bytes | None, start: str, cwd: str, paths: list[str],
                 stats: list[tuple[int, ...] | None]) -> None:
        self.info, self.patch, self.start, self.cwd = info, patch, start, cwd
        self.paths, self.stats = paths, stats
        self.checks = 0
        self.stale = False
        self.watch: tree_watch.TreeWatch | None = None

    def unchanged(self) -> bool:
        """Whether the tree is still the captured one."""
        if self.stale:
            return False
        if self.watch is not None and self.watch.quiet():
            return True
        if self.watch is None and self.checks == 1:  # a second job in this process: watch from now on,
            self.watch = tree_watch.watch(self._directories())  # then check all (what came before the watch)
        self.checks += 1
        if self._stats_unchanged():
            return True
        self.stale = True
        self.close()
        return False

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch = None

    def _stats_unchanged(self) -> bool:
        """Whether every watched path has the ``lstat`` facts it had (stops at the first change)."""
        lstat, facts = os.lstat, _facts
        for path, expected in zip(self.paths, self.stats):
            try:
                st = lstat(path)
            except OSError:
                if expected is not None:
                    return False
                continue
            if expected is None or facts(st) != expected:
                return False
        return True

    def _directories(self) -> set[str]:
        """Where a change to a watched path shows: its directory, and each watched directory itself."""
        found = {os.path.dirname(path) for path in self.paths}
        found.update(os.path.normpath(path) for path, st in zip(self.paths, self.stats)  # the root: "<root>/"
                     if st is not None and stat.S_ISDIR(st[4]))
        return found


# The state read by this process: (path, sweep id) -> state; one sweep at a time.
_loaded: dict[tuple[str, str], _SweepState | None] = {}


def _load(sweep_dir: str, sweep_id: str) -> _SweepState | None:
    key = (sweep_dir, sweep_id)
    if key not in _loaded:
        for earlier in _loaded.values():
            if earlier is not None:
                earlier.close()
        _loaded.clear()
        _loaded[key] = None
        paths = SweepPaths(sweep_dir)
        try:
            state = orjson.loads(read_regular_file(paths.git_state, _MAX_STATE_BYTES)[1])
        except (OSError, orjson.JSONDecodeError):
            return None  # not captured for this sweep (or a sweep without it): the job runs git
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION or state.get("sweep_id") != sweep_id:
            return None
        patch = read_regular_file(paths.git_patch, _MAX_STATE_BYTES)[1] if state.get("patch") else None
        if len(state["paths"]) != len(state["stats"]):
            raise ValueError(f"{paths.git_state}: {len(state['paths'])} paths but {len(state['stats'])} stats")
        _loaded[key] = _SweepState(
            info=state["info"], patch=patch, start=state["start"], cwd=state["cwd"],
            paths=[os.path.join(state["root"], p) for p in state["paths"]],
            stats=[None if s is None else tuple(s) for s in state["stats"]],
        )
    return _loaded[key]


def reuse_sweep_git(sweep_dir: str, sweep_id: str | None, start: str, cwd: str, job_dir: str,
                    max_paths: int | None = None) -> tuple[dict[str, Any], bytes | None] | None:
    """Job process: ``(git_info, patch)`` as the launching process captured them, when this job
    runs the same code from the same place, in an output dir within the sweep's, and the tree
    is unchanged since; else None (the job runs git itself). With ``max_paths``, also None
    (nothing checked) when the state watches more paths than that."""
    if sweep_id is None:
        return None
    try:
        state = _load(sweep_dir, sweep_id)
        if state is None or (max_paths is not None and len(state.paths) > max_paths):
            return None
        if state.start != start or state.cwd != cwd or not job_dir.startswith(sweep_dir.rstrip(os.sep) + os.sep):
            return None  # another script, launch dir, or an output dir whose untracked files were not excluded
        if not state.unchanged():
            return None
        return dict(state.info), state.patch
    except Exception as exc:  # noqa: BLE001 - e.g. a state file damaged by hand: the job runs git
        log.debug("hydra-ledger: sweep git state not used (%s: %s)", type(exc).__name__, exc)
        return None
