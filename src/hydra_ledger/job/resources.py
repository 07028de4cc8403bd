"""What a job used: CPU time and peak memory of its process tree, sampled by the heartbeat thread.

Linux: read from ``/proc`` (no dependency); the job process's own peak is the kernel's
high-water mark (``VmHWM``, reset when the job starts, so each job of a basic-launcher sweep,
which share a process, gets its own). Elsewhere: ``resource.getrusage`` of the process and
its waited-for children. GPUs: :mod:`hydra_ledger.job.gpu` (NVML, optional).

A sample costs well under a millisecond of CPU (``bench/bench_resources.py``): at the default
heartbeat of 10 s, far below 1% of a core.
"""
from __future__ import annotations

import os
import resource
import threading
import time
from typing import Any

from hydra_ledger.job import gpu

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = resource.getpagesize()
# The time series is bounded: after every SERIES_BLOCK lines written, only every 2nd, then
# 4th, ... sample is written (a week at 10 s is ~6,000 lines), and never more than SERIES_MAX.
SERIES_BLOCK = 1000
SERIES_MAX = 10_000


_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _read(path: str) -> bytes:
    """A /proc file's bytes, by system calls: each job reads several, and a file object (let
    alone a ``Path``) costs more than the read."""
    fd = os.open(path, _READ)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _stat(pid: int | str) -> tuple[float, int] | None:
    """(CPU seconds of the process and its waited-for children, RSS bytes) from /proc/<pid>/stat."""
    try:
        text = _read(f"/proc/{pid}/stat")
    except OSError:
        return None
    fields = text[text.rfind(b")") + 2:].split()  # the command name may hold spaces and ')'
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are 14-17, rss is 24
    ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return ticks / _TICKS, int(fields[21]) * _PAGE


def _children(pid: int | str) -> list[str]:
    """The children of every thread of ``pid`` (``/proc/<pid>/task/<tid>/children``)."""
    out: list[str] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            out += _read(f"/proc/{pid}/task/{tid}/children").decode().split()
        except OSError:
            continue
    return out


def _high_water_mark(pid: int) -> int | None:
    """The process's peak RSS in bytes (``VmHWM``), or None."""
    try:
        text = _read(f"/proc/{pid}/status")
        start = text.index(b"\nVmHWM:") + len(b"\nVmHWM:")
        return int(text[start:text.index(b"\n", start)].split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None


def _reset_high_water_mark(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux >= 4.0: ``5`` into clear_refs)."""
    try:
        fd = os.open(f"/proc/{pid}/clear_refs", os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        os.write(fd, b"5")
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


class ResourceSampler:
    """The resources one job used, from its start: summary for run.json, one point per sample."""

    def __init__(self, pid: int | None = None, gpus: gpu.GpuSampler | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.linux = True
        self.hwm_exact = _reset_high_water_mark(self.pid)
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self.samples = 0
        self.peak_rss = 0
        self.peak_processes = 1
        self.last_rss = 0
        cpu0, _, found = self._tree()
        self.linux = found > 0  # no /proc (or not this process's): getrusage from now on
        self._cpu0 = cpu0 if self.linux else self._tree()[0]
        self.cpu_s = 0.0
        self.gpus = gpus if gpus is not None else gpu.GpuSampler()
        self._written = 0
        self._skipped = 0

    def _tree(self) -> tuple[float, int, int]:
        """(CPU seconds, RSS bytes, processes) of the job process and all its descendants now."""
        if not self.linux:
            own = resource.getrusage(resource.RUSAGE_SELF)
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            rss = own.ru_maxrss * (1 if os.uname().sysname == "Darwin" else 1024)
            return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, rss, 1
        cpu, rss, count = 0.0, 0, 0
        todo: list[int | str] = [self.pid]
        seen: set[str] = set()
        while todo:
            pid = todo.pop()
            if str(pid) in seen:
                continue
            seen.add(str(pid))
            stat = _stat(pid)
            if stat is None:  # exited meanwhile: its time is in its parent's cutime once reaped
                continue
            cpu, rss, count = cpu + stat[0], rss + stat[1], count + 1
            todo += _children(pid)
        return cpu, rss, count

    def sample(self) -> dict[str, Any]:
        """Take one sample; return its point of the time series."""
        cpu, rss, count = self._tree()
        gpu_point = self.gpus.sample()
        with self._lock:
            self.samples += 1
            # max: a reaped child's time moves into cutime only when waited for, so never go back
            self.cpu_s = max(self.cpu_s, cpu - self._cpu0)
            self.last_rss = rss
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_processes = max(self.peak_processes, count)
            point: dict[str, Any] = {"time": round(time.time(), 3), "cpu_s": round(self.cpu_s, 3),
                                     "rss_bytes": rss, "processes": count}
        if gpu_point:
            point["gpu"] = gpu_point
        return point

    def worth_writing(self) -> bool:
        """Whether the latest point goes to the bounded time series (see ``SERIES_BLOCK``)."""
        if self._written >= SERIES_MAX:
            return False
        stride = 2 ** (self._written // SERIES_BLOCK)
        self._skipped += 1
        if self._skipped >= stride:
            self._skipped = 0
            self._written += 1
            return True
        return False

    def summary(self) -> dict[str, Any]:
        """``resources`` of run.json: totals since the job started."""
        with self._lock:
            wall = time.monotonic() - self.started
            peak = self.peak_rss
            if self.linux:
                hwm = _high_water_mark(self.pid)
                if hwm is not None and self.hwm_exact:
                    peak = max(peak, hwm)
            out: dict[str, Any] = {
                "cpu_s": round(self.cpu_s, 3),
                "wall_s": round(wall, 3),
                "cpu_cores_mean": round(self.cpu_s / wall, 3) if wall > 0 else None,
                "peak_rss_bytes": peak,
                "rss_bytes": self.last_rss,
                "peak_processes": self.peak_processes,
                "samples": self.samples,
                "source": "proc" if self.linux else "getrusage",
            }
        out.update(self.gpus.summary())
        return out
