"""Chaining submitit's preemption/time-out signal handler, to record what Slurm did to a job.

submitit installs ``SignalHandler.checkpoint_and_try_requeue`` for ``SIGUSR2`` (or
``SUBMITIT_PREEMPT_SIGNAL``) before the task starts. When it fires, submitit decides
"timed-out" or "preempted" (``has_timed_out()``: walltime >= min(0.8 * limit, limit - 10 min)),
then either requeues the job and exits (``SystemExit``; Hydra's ``on_job_end`` never runs)
or raises ``UncompletedJobError`` inside the task (Hydra reports FAILED). When Slurm's own
preemption requeue comes first (a partition with no GraceTime), submitit's ``scontrol requeue``
fails inside the handler; the job is requeued all the same and recorded so. The wrapper here
notes the case in the record, then calls the original handler unchanged and records how it
ended. It never replaces submitit's behaviour.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

# The submitit error raised inside the task when a job is not requeued (submitit.core.utils).
UNCOMPLETED_ERROR = "UncompletedJobError"
# How a signal entry's outcome starts when submitit gave up on the job (no requeue).
NOT_REQUEUED = "not requeued"


class _Usr2Wrapper:
    """Calls submitit's handler after recording the signal in the active run's record."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def __call__(self, signum: int, frame: Any) -> None:
        from hydra_ledger.job import runtime

        if runtime.defer_if_busy(self, signum, frame):  # the record is being written: right after it
            return
        run = runtime.active_run()
        entry: dict[str, Any] | None = None
        if run is not None and not run.finished:
            entry = {"signal": signal.Signals(signum).name, "at": runtime.utc_now(), "case": _case(self.original)}
            _note(run, entry)
        try:
            self.original(signum, frame)
        except SystemExit:
            # submitit requeued the job (scontrol requeue on Slurm, exit code 144 locally) and exits.
            if run is not None and entry is not None:
                _requeued(run, entry, "requeued")
            raise
        except BaseException as exc:
            if run is None or entry is None:
                raise
            if type(exc).__name__ != UNCOMPLETED_ERROR and _requeued_by_slurm():
                # Slurm's own preemption requeue came first (GraceTime 0 or short), so submitit's
                # `scontrol requeue` failed; the job starts again all the same.
                _requeued(run, entry, f"requeued by Slurm (submitit's own requeue failed: {exc})")
            else:
                # Not requeued: submitit raises UncompletedJobError into the task; on_job_end records it.
                with run._lock:
                    entry["outcome"] = f"{NOT_REQUEUED}: {exc}"
                    run.save()
            raise
        else:
            if run is not None and entry is not None:  # e.g. a task of rank > 0: submitit only logs
                with run._lock:
                    entry["outcome"] = "ignored"
                    run.save()


def _requeued(run: Any, entry: dict[str, Any], outcome: str) -> None:
    """PREEMPTED means "requeued, will start again", whatever the cause; the attempt keeps the
    cause (submitit requeues a time-out while retries are left)."""
    with run._lock:
        entry["outcome"] = outcome
        attempts = run.record.get("attempts") or []
        if attempts:
            attempts[-1].update({"requeued": True, "ended_by": f"{entry['signal']}: {entry['case']}"})
    run.finish("PREEMPTED")


def _requeued_by_slurm(timeout_s: float = 5.0) -> bool:
    """Whether Slurm has already requeued this job: it is pending again, or restarted since it began."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return False
    try:
        out = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True,
                             timeout=timeout_s, check=False).stdout
        fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
        restarts = fields.get("Restarts", "")
        if restarts.isdigit() and int(restarts) > int(os.environ.get("SLURM_RESTART_COUNT") or 0):
            return True
    except Exception:  # noqa: BLE001 - no answer: submitit's error stands, as before
        return False
    return fields.get("JobState") in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED")


def _case(handler: Any) -> str:
    """submitit's own verdict: "timed-out" or "preempted" (its logic, not a copy of it)."""
    owner = getattr(handler, "__self__", None)
    try:
        return "timed-out" if owner.has_timed_out() else "preempted"  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - an unknown submitit version: say so rather than guess
        return "unknown"


def _note(run: Any, entry: dict[str, Any]) -> None:
    with run._lock:
        run.record.setdefault("signals", []).append(entry)
        run.save()


def install_usr2_wrapper() -> bool:
    """In a submitit job's main thread, wrap submitit's requeue handler once; True when installed."""
    if not os.environ.get("SUBMITIT_EXECUTOR") or threading.current_thread() is not threading.main_thread():
        return False
    name = "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    signum = getattr(signal, name, None)
    if signum is None:
        return False
    try:
        current = signal.getsignal(signum)
    except (ValueError, OSError):
        return False
    if isinstance(current, _Usr2Wrapper):
        return True
    if getattr(current, "__name__", None) != "checkpoint_and_try_requeue":
        return False  # not submitit's handler: leave whatever is there alone
    try:
        signal.signal(signum, _Usr2Wrapper(current))
    except (ValueError, OSError) as exc:
        log.warning("hydra-ledger: cannot watch %s (%s): preemption and time-outs will show as DIED", name, exc)
        return False
    return True


def failure_status(record: dict[str, Any], exc: BaseException) -> str:
    """FAILED, or TIMEOUT when the task failed because submitit gave up after a time-out signal.

    submitit raises ``UncompletedJobError("Job not requeued because: timed-out too many times.")``
    inside the task; it is recorded as TIMEOUT with the traceback kept in ``error``.
    """
    if type(exc).__name__ != UNCOMPLETED_ERROR or not type(exc).__module__.startswith("submitit"):
        return "FAILED"
    cases = [s.get("case") for s in record.get("signals") or () if s.get("signal", "").startswith("SIGUSR")]
    if cases and cases[-1] == "preempted":
        return "FAILED"  # preempted and not requeued (the checkpoint failed): the error says why
    return "TIMEOUT" if cases or "timed-out" in str(exc) else "FAILED"


def gave_up_at_time_out(record: Mapping[str, Any]) -> bool:
    """Whether submitit's last word on this attempt was "timed out, not requeued": the job then
    ends at its time limit, even when its error never reached the task (a task that catches
    every Exception, or the error raised inside a logging call, which swallows it)."""
    usr = [s for s in record.get("signals") or ()
           if isinstance(s, dict) and str(s.get("signal", "")).startswith("SIGUSR")]
    return bool(usr) and usr[-1].get("case") == "timed-out" and str(usr[-1].get("outcome", "")).startswith(NOT_REQUEUED)


def close_previous_attempt(record: dict[str, Any], heartbeat: float | None) -> None:
    """The job starts again in its output dir (a requeue): close the earlier attempt, keeping its evidence.

    An attempt still RUNNING was killed without a word (SIGKILL after a preemption's grace
    time, ``scontrol requeue``, a node failure) and then requeued: PREEMPTED, ended at its
    last heartbeat. Its signals and error move into the attempt so the new one starts clean.
    """
    import datetime as _dt

    attempts = record.get("attempts") or []
    if not attempts:
        return
    attempt = attempts[-1]
    if attempt.get("status") == "RUNNING":
        ended = None if heartbeat is None else _dt.datetime.fromtimestamp(heartbeat, _dt.timezone.utc)
        attempt.update({
            "status": "PREEMPTED",
            "ended_at": None if ended is None else ended.isoformat(timespec="microseconds"),
            "requeued": True,
            "ended_by": "killed without a signal the ledger saw, then started again (ended_at: last heartbeat)",
        })
    for key in ("signals", "error"):
        if record.get(key):
            attempt[key] = record.pop(key)
