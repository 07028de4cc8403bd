"""One heartbeat thread per process, beating for the job that runs in it.

Every job of a basic-launcher sweep runs in the same process: starting a thread for each job
and joining it at its end cost ~0.3 ms per job. The thread is started with the first job and
kept; released by a job, it waits for the next one. Nor is it woken at each job's start and
end, which would cost two thread switches per job (while the job's hooks wait for the
interpreter lock): asleep until an earlier job's next beat, it finds the job it serves then.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Protocol

log = logging.getLogger(__name__)


class Beating(Protocol):
    """What the thread needs of a job: its interval, and what to do at each beat."""

    heartbeat_s: float

    def beat(self) -> None: ...

    def sample_resources(self) -> None: ...


class _HeartbeatThread:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._job: Beating | None = None  # the job served
        self._next_beat = math.inf  # when the served job beats next (time.monotonic())
        self._wakes_at = math.inf  # when the thread wakes by itself (-inf: it is beating)
        self._busy: Beating | None = None  # the job whose beat runs now, outside the lock
        self.thread = threading.Thread(target=self._loop, name="hydra-ledger-heartbeat", daemon=True)
        self.thread.start()

    def serve(self, job: Beating) -> None:
        with self._cond:
            self._job = job
            self._next_beat = time.monotonic() + job.heartbeat_s
            if self._wakes_at > self._next_beat:  # asleep past this job's first beat
                self._cond.notify_all()

    def release(self, job: Beating, timeout: float) -> None:
        """Stop beating for ``job``; return once no beat of it runs (or after ``timeout`` s).
        The thread is not woken: when it wakes, it finds no job, or the next one."""
        with self._cond:
            if self._job is job:
                self._job = None
            if threading.current_thread() is not self.thread:
                self._cond.wait_for(lambda: self._busy is not job, timeout)

    def _loop(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while (job := self._job) is None or (left := self._next_beat - time.monotonic()) > 0:
                    self._wakes_at = math.inf if job is None else self._next_beat
                    cond.wait(None if job is None else left)
                self._busy, self._wakes_at = job, -math.inf
            try:
                job.beat()
                job.sample_resources()
            except Exception as exc:  # noqa: BLE001 - both warn themselves; the thread must live on
                log.debug("hydra-ledger: heartbeat failed (%s: %s)", type(exc).__name__, exc)
            finally:
                with cond:
                    self._busy = None
                    if self._job is job:
                        self._next_beat = time.monotonic() + job.heartbeat_s
                    cond.notify_all()


_thread: _HeartbeatThread | None = None


def serve(job: Beating) -> None:
    """Beat for ``job`` every ``job.heartbeat_s`` seconds from now on (instead of any other job)."""
    global _thread
    current = _thread
    if current is None or current.pid != os.getpid() or not current.thread.is_alive():  # first, or forked
        current = _HeartbeatThread()  # kept only once started (a Ctrl-C inside start() leaves none)
        _thread = current
    current.serve(job)


def release(job: Beating, timeout: float = 2.0) -> None:
    """Stop beating for ``job``; wait up to ``timeout`` s for a beat of it in progress."""
    current = _thread
    if current is not None and current.pid == os.getpid():
        current.release(job, timeout)
