"""Jobs lost when a sweep is stopped with Ctrl-C in the launching process.

With the joblib launcher, Ctrl-C reaches the launching process only (loky's workers ignore
SIGINT); joblib then SIGKILLs its workers, so no hook runs in them and their jobs would stay
RUNNING and load as DIED. The launching process notes the KeyboardInterrupt and, on its way
out, marks INTERRUPTED each RUNNING job of the sweep whose process was its own child on this
host and is gone. A job still alive is left alone: it records its own end.
"""
from __future__ import annotations

import atexit
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from hydra_ledger.record.paths import LEDGER_DIR, RunPaths
from hydra_ledger.record.schema import RecordError, read_record

log = logging.getLogger(__name__)

STOPPED_MESSAGE = "the sweep was stopped with Ctrl-C; the launcher then killed this job's worker process"

_sweep_dir: str | None = None
_sweep_id: str | None = None
_interrupted = False
_hooks_installed = False
_previous_excepthook: Any = None


def watch(sweep_dir: str, sweep_id: str) -> None:
    """Launching process, at the start of a sweep: arm the hooks that record its lost jobs.

    Nothing disarms them: Hydra 1.4 calls ``on_multirun_end`` after a Ctrl-C too, and a sweep
    that ended normally leaves no RUNNING job behind.
    """
    global _sweep_dir, _sweep_id, _interrupted, _hooks_installed, _previous_excepthook
    _sweep_dir, _sweep_id, _interrupted = sweep_dir, sweep_id, False
    if not _hooks_installed:
        _hooks_installed = True
        _previous_excepthook = sys.excepthook
        sys.excepthook = _excepthook
        atexit.register(_at_exit)


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    global _interrupted
    if issubclass(exc_type, KeyboardInterrupt):
        _interrupted = True
    (_previous_excepthook or sys.__excepthook__)(exc_type, exc, tb)


def _at_exit() -> None:
    if _sweep_dir is None or not _interrupted:
        return
    try:
        mark_lost_jobs(Path(_sweep_dir), _sweep_id, os.getpid())
    except KeyboardInterrupt:  # a second Ctrl-C: the user wants out now
        pass
    except Exception as exc:  # noqa: BLE001 - never turn a Ctrl-C into a ledger traceback
        log.warning("hydra-ledger: could not mark the interrupted jobs of %s: %s", _sweep_dir, exc)


def mark_lost_jobs(sweep_dir: Path, sweep_id: str | None, parent_pid: int, wait_s: float = 2.0) -> list[Path]:
    """Mark INTERRUPTED the RUNNING jobs of sweep ``sweep_id`` under ``sweep_dir`` run by a child of
    ``parent_pid`` on this host that has gone (waiting up to ``wait_s`` for killed children to go);
    returns their dirs. Jobs of earlier launches into the same dir are not this sweep's."""
    from hydra_ledger.job.runtime import ActiveRun

    hostname = socket.gethostname()
    lost: dict[Path, int] = {}
    for job_dir in _job_dirs(sweep_dir):
        record = _running_record(job_dir)
        if record is None or (record.get("job") or {}).get("sweep_id") != sweep_id:
            continue
        host = record.get("host") or {}
        if host.get("hostname") == hostname and host.get("ppid") == parent_pid and isinstance(host.get("pid"), int):
            lost[job_dir] = host["pid"]
    deadline = time.monotonic() + wait_s
    while any(not _process_gone(pid, parent_pid) for pid in lost.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    marked = []
    for job_dir, pid in lost.items():
        record = _running_record(job_dir)  # read again: the job may have ended meanwhile
        if record is None or not _process_gone(pid, parent_pid):
            continue
        error = {"type": "KeyboardInterrupt", "message": STOPPED_MESSAGE, "traceback": ""}
        ActiveRun(RunPaths(job_dir), record, float(record.get("heartbeat_s") or 0)).finish("INTERRUPTED", error)
        marked.append(job_dir)
    return marked


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Job dirs under the sweep dir (subdirs may nest), not looking inside hidden dirs."""
    found = []
    for dirpath, dirnames, _ in os.walk(sweep_dir):
        if LEDGER_DIR in dirnames:
            found.append(Path(dirpath))
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    return found


def _running_record(job_dir: Path) -> dict[str, Any] | None:
    try:
        record = read_record(RunPaths(job_dir).record)
    except (OSError, RecordError):
        return None
    return record if record.get("status") == "RUNNING" else None


def _process_gone(pid: int, parent_pid: int) -> bool:
    """True once ``pid`` is no longer a live child of ``parent_pid``: exited, a zombie, or reused."""
    if not os.path.isdir("/proc/self"):  # no /proc (macOS): a zombie cannot be told from a live process
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            stat = stat_file.read()
    except OSError:
        return True
    state, ppid = stat[stat.rindex(b")") + 2:].split()[:2]
    return state in (b"Z", b"X") or int(ppid) != parent_pid
