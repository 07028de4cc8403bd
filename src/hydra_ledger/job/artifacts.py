"""Artifacts: files a job writes into its output dir, opened safely and listed in its record.

``hydra_ledger.open("model.pt", "wb")`` (inside a job) opens a file relative to the run's
output dir and refuses paths that would land outside it. At job end (``on_job_end``, job
process) the record lists every file the run wrote there: path, size, and a content hash
for files up to ``artifact_hash_max_bytes``.
"""
from __future__ import annotations

import builtins
import datetime as _dt
import functools
import logging
import os
from pathlib import Path
from typing import IO, Any

from hydra_ledger.errors import LedgerError
from hydra_ledger.record.paths import HYDRA_DIR, LEDGER_DIR, is_within

log = logging.getLogger(__name__)

# Listing stops here: an output dir with more files is probably not one job's artifacts.
MAX_FILES = 10_000
# File systems with coarse timestamps (FAT: 2 s) may date a file written at start a bit earlier.
_MTIME_SLACK_S = 2.0
_WRITE_MODES = frozenset("wax+")


class ArtifactPathError(LedgerError, ValueError):
    """A path given to ``hydra_ledger.open`` that is not inside the run's output dir."""


def resolve_in_run(path: str | os.PathLike[str], run_dir: str | os.PathLike[str]) -> Path:
    """``path`` (relative to ``run_dir``, or absolute) as a real path inside ``run_dir``; raise otherwise.

    Symbolic links and ``..`` are resolved first, so neither can lead out of the dir.
    """
    root = Path(os.path.realpath(run_dir))
    candidate = Path(os.path.expanduser(os.fspath(path)))
    target = Path(os.path.realpath(candidate if candidate.is_absolute() else root / candidate))
    if target == root or root not in target.parents:
        raise ArtifactPathError(
            f"hydra_ledger.open: {os.fspath(path)!r} resolves to {target}, outside the run's output dir {root}; "
            "give a path inside it, e.g. hydra_ledger.open('model.pt', 'wb')"
        )
    relative = target.relative_to(root)
    if relative.parts[0] in (LEDGER_DIR, HYDRA_DIR):
        raise ArtifactPathError(
            f"hydra_ledger.open: {os.fspath(path)!r} is inside {relative.parts[0]}/, which Hydra and "
            "hydra-ledger own; choose another name"
        )
    return target


def open(file: str | os.PathLike[str], mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
    """Open ``file`` inside the current run's output dir (like the built-in ``open``).

    Relative paths are relative to the output dir, whatever the cwd; missing parent dirs are
    created for writing. Paths leading outside the dir raise ``ArtifactPathError`` (a
    ``ValueError``). Example: ``with hydra_ledger.open("ckpt/model.pt", "wb") as f: ...``.
    """
    from hydra_ledger.job.runtime import run_dir

    target = resolve_in_run(file, run_dir())
    if _WRITE_MODES & set(mode):
        target.parent.mkdir(parents=True, exist_ok=True)
    return builtins.open(target, mode, *args, **kwargs)


def list_artifacts(job_dir: str | os.PathLike[str], since: float | None, hash_max_bytes: int,
                   skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Files under ``job_dir`` modified at or after ``since`` (epoch s): ``[{"path", "size", "hash"}]``.

    Left out: ``.ledger/``, ``.hydra/``, paths in ``skip`` (relative: the job's logs), and
    subdirectories that are themselves job dirs (a sweep written into one dir). ``hash``
    is None above ``hash_max_bytes``.
    """
    from hydra_ledger.job.inputs import digest_file

    root = os.path.abspath(job_dir)
    threshold = None if since is None else since - _MTIME_SLACK_S
    found: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in (LEDGER_DIR, HYDRA_DIR) and not _is_job_dir(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rel in skip:
                continue
            try:
                st = os.stat(full)
            except OSError:
                continue
            if threshold is not None and st.st_mtime < threshold:
                continue
            if len(found) >= MAX_FILES:
                log.warning("hydra-ledger: more than %d files in %s; the artifact list stops there", MAX_FILES, root)
                return sorted(found, key=lambda a: a["path"])
            digest = None
            if st.st_size <= hash_max_bytes:
                try:
                    digest = digest_file(full)  # not cached: artifacts are new files
                except OSError as exc:
                    log.warning("hydra-ledger: cannot hash artifact %s: %s", full, exc)
            found.append({"path": rel, "size": st.st_size, "hash": digest,
                          "mtime": _dt.datetime.fromtimestamp(st.st_mtime, _dt.timezone.utc).isoformat()})
    return sorted(found, key=lambda a: a["path"])


def _log_files_under(root: str, spelled: str) -> list[str]:
    """The files the job's logging writes to under ``root`` (its job log, whatever
    ``hydra.job_logging`` names it), relative: logs, not artifacts. ``spelled`` is the job dir
    as Hydra names it, which the log files' names usually start with: no path resolved then."""
    found = []
    for handler in logging.getLogger().handlers:
        name = getattr(handler, "baseFilename", None)
        if isinstance(handler, logging.FileHandler) and name:
            for base, path in ((spelled, name), (root, os.path.realpath(name))):
                if is_within(path, base):
                    found.append(os.path.relpath(path, base).replace(os.sep, "/"))
                    break
    return found


@functools.lru_cache(maxsize=16)
def _launch_dir(cwd: str) -> str:
    """The launch dir resolved: the same for every job of a sweep a process runs."""
    return os.path.realpath(cwd)


def _is_job_dir(path: str) -> bool:
    return os.path.isdir(os.path.join(path, LEDGER_DIR)) or os.path.isdir(os.path.join(path, HYDRA_DIR))


def record_artifacts(record: dict[str, Any], job_dir: str | os.PathLike[str], job_name: str | None,
                     hash_max_bytes: int) -> None:
    """Job process, ``on_job_end``: put the artifact list in ``record["artifacts"]``; never raises.

    Skipped when the output dir is the launch dir or holds it (``hydra.run.dir=.``): that
    would list the project, not the run's files.
    """
    try:
        spelled = os.path.abspath(job_dir)
        root = os.path.realpath(spelled)
        launch = _launch_dir(str((record.get("launch") or {}).get("cwd") or os.getcwd()))
        if is_within(launch, root):
            log.info("hydra-ledger: the output dir %s is the launch dir; artifacts are not listed", root)
            return
        attempts = record.get("attempts") or [{}]
        started = attempts[0].get("started_at") or record.get("started_at")  # a requeued job's first start
        since = _dt.datetime.fromisoformat(started).timestamp() if isinstance(started, str) else None
        skip = (*((f"{job_name}.log",) if job_name else ()), *_log_files_under(root, spelled))
        record["artifacts"] = list_artifacts(root, since, hash_max_bytes, skip)
    except Exception as exc:  # noqa: BLE001 - never the job's failure
        log.warning("hydra-ledger: cannot list the artifacts of %s: %s", job_dir, exc)
