"""Whether a recorded job's process still lives: the same pid, boot and start time, on this host.

A stale heartbeat alone does not prove a job dead: a task holding the GIL (a long C call), a
stopped process (Ctrl-Z, SIGSTOP) or a starved machine stops the heartbeat of a process that
lives, and calling it DIED invites ``resume`` to launch it twice. A pid alone does not prove it
alive either: pids are reused. The kernel's start time of the process (``/proc/<pid>/stat``,
field 22, in clock ticks since boot) plus the boot id tell the very process apart.
"""
from __future__ import annotations

import functools
import os
import socket
from collections.abc import Mapping
from typing import Any, Literal

Liveness = Literal["alive", "gone", "unknown"]


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or None (no such process, no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # the command name is in parentheses and may itself hold spaces and parentheses
    return data[data.rfind(b")") + 2:].decode("ascii", "replace").split()


def start_ticks(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot, or None where unknown."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None  # field 22 overall; fields[0] is field 3 (state)
    except (IndexError, ValueError):
        return None


@functools.lru_cache(maxsize=1)
def boot_id() -> str | None:
    """This boot's id: start times count from boot, so they compare only within one."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def identity(pid: int | None = None) -> dict[str, Any]:
    """What a job records at its start to be recognised later: ``pid_start`` and ``boot_id``."""
    if pid is None:
        pid = os.getpid()
        if pid not in _own_start:  # read once per process: every job of a sweep records it
            _own_start.clear()
            _own_start[pid] = start_ticks(pid)
        return {"pid_start": _own_start[pid], "boot_id": boot_id()}
    return {"pid_start": start_ticks(pid), "boot_id": boot_id()}


_own_start: dict[int, int | None] = {}  # this process's pid -> its start time (a forked child has another pid)


def liveness(attempt: Mapping[str, Any]) -> Liveness:
    """``alive`` when the attempt's process runs on this host (same boot, pid and start time; a
    zombie counts as gone), ``gone`` when it surely does not, ``unknown`` when this host cannot
    tell (another host, or a record without a start time)."""
    pid, start = attempt.get("pid"), attempt.get("pid_start")
    if not isinstance(pid, int) or not isinstance(start, int) or attempt.get("hostname") != _hostname():
        return "unknown"
    recorded_boot = attempt.get("boot_id")
    if recorded_boot is not None and boot_id() is not None and recorded_boot != boot_id():
        return "gone"  # rebooted since
    fields = _stat_fields(pid)
    if fields is None:
        return "gone" if os.path.isdir("/proc/self") else "unknown"
    try:
        state, ticks = fields[0], int(fields[19])
    except (IndexError, ValueError):
        return "unknown"
    return "alive" if ticks == start and state not in ("Z", "X", "x") else "gone"


@functools.lru_cache(maxsize=1)
def _hostname() -> str:
    return socket.gethostname()
