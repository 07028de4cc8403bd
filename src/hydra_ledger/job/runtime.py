"""The job-side half of the ledger: the active run's record, heartbeat, exit handling, and the
API a task calls (``log_summary``, ``log_metrics``, ``run_dir``).

All state lives in this module, in the job process, never on the callback object: the
callback is pickled to joblib and submitit workers, and one instance serves every job of
a basic-launcher sweep.
"""
from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import CodeType, TracebackType
from typing import Any

from hydra_ledger.job import heartbeat
from hydra_ledger.job.source_files import format_exception
from hydra_ledger.record.changes import mark_changed
from hydra_ledger.record.files import (
    append_line,
    dump_json_compact,
    dump_record,
    no_space,
    padded,
    rewrite_in_place,
    write_atomic,
)
from hydra_ledger.record.flatten import flatten
from hydra_ledger.record.paths import RunPaths
from hydra_ledger.record.redact import Redactor
from hydra_ledger.record.row_journal import append_final_row
from hydra_ledger.record.schema import FINAL_STATUSES

log = logging.getLogger(__name__)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _seconds_between(start_iso: str, end_iso: str) -> float:
    return (_dt.datetime.fromisoformat(end_iso) - _dt.datetime.fromisoformat(start_iso)).total_seconds()


def error_info(exc: BaseException) -> dict[str, str]:
    """Type, message and traceback of the job's exception; an exception whose ``str()`` itself
    raises still gives a record (as Python's own traceback printing does)."""
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001
        message = f"<exception str() failed: {type(exc).__name__}>"
    return {
        "type": type(exc).__name__,
        "message": message,
        "traceback": format_exception(exc),
    }


def interrupted_outcome(run: ActiveRun, exc: BaseException) -> tuple[str, dict[str, str]]:
    """Status and error of a job that ends with ``exc`` (Ctrl-C, an exit) instead of its task's outcome.

    INTERRUPTED, unless the Ctrl-C came after the task had raised, while Hydra was storing the
    task's exception: the run then failed by itself, and its traceback is the one worth keeping
    (the SIGINT stays noted in the record's ``signals``).
    """
    failure = _task_failure_interrupted(exc, run.task_code)
    if failure is not None:
        from hydra_ledger.job.signals import failure_status

        return failure_status(run.record, failure), error_info(failure)
    return "INTERRUPTED", error_info(exc)


def _task_failure_interrupted(exc: BaseException, task_code: CodeType | None) -> Exception | None:
    """The task's own exception, when ``exc`` is a KeyboardInterrupt raised outside the task while
    that exception was being handled; else None (e.g. Ctrl-C inside the task's own except block)."""
    failure = exc.__context__
    if task_code is None or not isinstance(exc, KeyboardInterrupt) or not isinstance(failure, Exception):
        return None
    if _runs_through(exc.__traceback__, task_code) or not _runs_through(failure.__traceback__, task_code):
        return None
    return failure


def _runs_through(tb: TracebackType | None, code: CodeType) -> bool:
    """Whether a frame of traceback ``tb`` runs ``code``."""
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return True
        tb = tb.tb_next
    return False


class ActiveRun:
    """The record of the job running in this process, and the heartbeat that keeps it alive."""

    redactor: Redactor | None = None  # the job's; summary and metrics are redacted when written
    task_code: CodeType | None = None  # the task function's code: did a Ctrl-C stop the task, or come after?

    def __init__(self, paths: RunPaths, record: dict[str, Any], heartbeat_s: float) -> None:
        self.paths = paths
        self.record = record
        self.pid = os.getpid()
        self.heartbeat_s = heartbeat_s
        self._lock = threading.RLock()
        self._warned: set[str] = set()
        self.sampler: Any = None  # a ResourceSampler once the heartbeat runs (in the job process only)

    # -- writing ---------------------------------------------------------------------------
    def save(self, final: bool = False) -> None:
        """Atomically rewrite run.json; a failure is one warning, never the job's failure.

        A RUNNING record keeps room at its end (trailing spaces) so that, on a full disk, the
        final status still lands in place: the atomic rewrite needs room for a temp file.
        """
        with self._lock, signals_deferred():
            self._note_resources()
            data = dump_record(self.record)
            try:
                write_atomic(self.paths.record, data if final else padded(data))
            except Exception as exc:  # noqa: BLE001
                if not (no_space(exc) and self._save_in_place()):
                    self._warn_once(f"cannot write {self.paths.record}: {exc}", "record")
                    return
            else:
                if final:  # the sweep's row journal: a first load of the sweep need not read this record
                    append_final_row(self.paths, self.record, data)
            mark_changed(self.paths.job_dir)  # tells loaders' indexes to look at this sweep again

    def _save_in_place(self) -> bool:
        """The disk is full: write the record over its reserved room, smaller versions if need be."""
        for data in _shrinking(self.record):
            try:
                if rewrite_in_place(self.paths.record, data):
                    self._warn_once(f"the disk of {self.paths.record} is full: the record is rewritten in place "
                                    "(not atomically) until there is room again", "space", unrecorded=False)
                    return True
            except OSError:
                return False
        return False

    def _warn_once(self, message: str, kind: str = "record", unrecorded: bool = True) -> None:
        """One warning per kind of failure (record, heartbeat, metrics, packages, space) and job."""
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("hydra-ledger: %s — the job runs on%s", message, ", unrecorded" if unrecorded else "")

    def beat(self) -> None:
        data = f"{time.time():.3f}\n".encode()
        try:
            write_atomic(self.paths.heartbeat, data)
        except Exception as exc:  # noqa: BLE001
            try:  # a full disk: the old heartbeat's own bytes still take the new one
                if no_space(exc) and rewrite_in_place(self.paths.heartbeat, data):
                    return
            except OSError:
                pass
            self._warn_once(f"cannot write heartbeat {self.paths.heartbeat}: {exc}", "heartbeat", unrecorded=False)

    def start_heartbeat(self, beat_now: bool = True) -> None:
        """Beat every ``heartbeat_s`` from now on; at once too when ``beat_now`` (a heartbeat file
        of an earlier run or attempt in the dir must not speak for this one)."""
        if beat_now:
            self.beat()
        try:
            from hydra_ledger.job.resources import ResourceSampler

            self.sampler = ResourceSampler()
        except Exception as exc:  # noqa: BLE001
            self._warn_once(f"cannot sample the job's resources: {exc}", "resources", unrecorded=False)
        # the process's heartbeat thread (hydra_ledger.job.heartbeat); its lock is not reentrant,
        # so a signal handler must not reach it while this thread holds it
        with signals_deferred():
            heartbeat.serve(self)

    def sample_resources(self, final: bool = False) -> None:
        """One resource sample (heartbeat thread, and once at the end), a bounded line of
        ``.ledger/resources.jsonl``; a failure is one warning. A job whose final sample is its
        only one (it ended before its first heartbeat) has no series: its totals are in run.json."""
        sampler = self.sampler
        if sampler is None:
            return
        try:
            point = sampler.sample()
            if (not final or sampler.samples > 1) and sampler.worth_writing():
                append_line(self.paths.resources, point)
        except Exception as exc:  # noqa: BLE001
            self._warn_once(f"cannot sample the job's resources into {self.paths.resources}: {exc}",
                            "resources", unrecorded=False)

    def _note_resources(self) -> None:
        """The resources used so far into the record (``resources`` of run.json)."""
        if self.sampler is None:
            return
        try:
            self.record["resources"] = self.sampler.summary()
        except Exception as exc:  # noqa: BLE001
            self._warn_once(f"cannot summarise the job's resources: {exc}", "resources", unrecorded=False)

    def stop_heartbeat(self) -> None:
        """No heartbeat from now on; a beat in progress ends first (up to 2 s). The heartbeat
        thread's lock is not reentrant: a signal handler that stopped it again on this thread
        would deadlock, hence the deferral of signals around it."""
        with signals_deferred():
            heartbeat.release(self)

    # -- updating ------------------------------------------------------------------------
    def update_summary(self, values: Mapping[str, Any]) -> None:
        with self._lock:
            self.record.setdefault("summary", {}).update(redacted(self, flatten(values)))
            self.save()

    def finish(self, status: str, error: dict[str, Any] | None = None, **extra: Any) -> None:
        """Write the final status once; later calls (e.g. atexit after on_job_end) do nothing.

        SIGTERM and Ctrl-C wait until the status is on disk (:func:`signals_deferred`): a handler
        run between setting the status and saving it would otherwise see the job finished and
        let the process die with RUNNING on disk.
        """
        with self._lock, signals_deferred():
            if self.record.get("status") in FINAL_STATUSES:
                return
            self.stop_heartbeat()
            self.sample_resources(final=True)
            ended = utc_now()
            self.record["status"] = status
            self.record["ended_at"] = ended
            self.record["duration_s"] = _seconds_between(self.record["started_at"], ended)
            if error is not None:
                self.record["error"] = error
            self.record.update(extra)
            attempts = self.record.get("attempts") or []
            if attempts:
                attempts[-1].update({"ended_at": ended, "status": status})
            self.save(final=True)

    @property
    def finished(self) -> bool:
        return self.record.get("status") in FINAL_STATUSES


def _shrinking(record: dict[str, Any]) -> Iterator[bytes]:
    """The record as JSON, then smaller and smaller (traceback trimmed, artifacts and summary
    dropped), for the room left in a full disk."""
    yield dump_record(record)
    smaller = dict(record)
    error = smaller.get("error")
    if isinstance(error, dict) and len(str(error.get("traceback") or "")) > 2000:
        smaller["error"] = {**error, "traceback": "…" + str(error["traceback"])[-2000:]}
        yield dump_json_compact(smaller)
    for key, empty in (("artifacts", []), ("summary", {})):
        if smaller.get(key):
            smaller[key] = empty
            yield dump_json_compact(smaller)


# -- signals while the record is written -------------------------------------------------------
# Python runs signal handlers in the main thread, between any two bytecodes: inside a write, or
# inside threading.Event.set() holding its lock. While the main thread is in such a section, the
# ledger's SIGTERM handler, the SIGINT handler and the wrapper of submitit's SIGUSR2 handler only
# note the signal; it is acted upon, by the same handlers, as soon as the section ends. (Blocking
# with pthread_sigmask would not do: the kernel then hands the signal to another thread, and Python
# still runs the handler here.)

_section_depth = 0
_pending_signals: list[tuple[Any, int, Any]] = []  # (handler, or None for SIGINT; signum; frame)
_saved_sigint: Any = None


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """In the main thread: SIGTERM and SIGINT that arrive inside the block are handled after it."""
    global _section_depth, _saved_sigint
    if not _in_main_thread():
        yield
        return
    _section_depth += 1  # first: from here on, a SIGTERM waits
    try:
        if _section_depth == 1:
            try:
                current = signal.getsignal(signal.SIGINT)
                if callable(current) and current is not _defer_signal:
                    signal.signal(signal.SIGINT, _defer_signal)
                    _saved_sigint = current
            except (ValueError, OSError):  # not the main interpreter
                _saved_sigint = None
        yield
    finally:
        _section_depth -= 1
        if _section_depth == 0:
            _end_section()


def _end_section() -> None:
    global _saved_sigint
    restored, _saved_sigint = _saved_sigint, None
    if restored is not None:
        try:
            signal.signal(signal.SIGINT, restored)
        except (ValueError, OSError):
            pass
    pending = list(_pending_signals)
    _pending_signals.clear()
    for handler, signum, frame in pending:
        if handler is None:  # SIGINT, deferred by swapping its handler
            handler = restored
        if callable(handler):
            handler(signum, frame)  # e.g. Python's default SIGINT handler: KeyboardInterrupt, now


def _defer_signal(signum: int, frame: Any, handler: Any = None) -> None:
    _pending_signals.append((handler, signum, frame))


def defer_if_busy(handler: Any, signum: int, frame: Any) -> bool:
    """For a signal handler: True (and ``handler`` called later) when the main thread is writing
    the record, e.g. submitit's preemption signal arriving while the final status is saved."""
    if _section_depth > 0:
        _defer_signal(signum, frame, handler)
        return True
    return False


_active: ActiveRun | None = None
_hooks_installed = False
_previous_sigterm: Any = None
_previous_sigint: Any = None
_previous_excepthook: Any = None


def activate(run: ActiveRun, beat_now: bool = True) -> None:
    """Make ``run`` the job of this process: arm the exit handlers, write the first record, start
    the heartbeat. The handlers come first: a signal that arrives as soon as the record is
    visible (a ``scancel`` right after the job shows up) is still noted in it. Without
    ``beat_now`` (a fresh ``.ledger/``), the first heartbeat comes one interval later: until then
    the record's start time stands for it (hydra_ledger.load.status)."""
    global _active
    _active = run
    _install_exit_hooks()
    run.save()
    run.start_heartbeat(beat_now)


def deactivate(run: ActiveRun) -> None:
    global _active
    run.stop_heartbeat()
    if _active is run:
        _active = None


def active_run() -> ActiveRun | None:
    run = _active
    return run if run is not None and run.pid == os.getpid() else None


def _install_exit_hooks() -> None:
    """Once per process: record Ctrl-C, SIGTERM and early exits that Hydra 1.3 never reports.

    Hydra 1.3 calls no end hook on KeyboardInterrupt, SystemExit or signals
    (hydra-ecosystem/hydra#3078), so without these a job would stay RUNNING forever.
    """
    global _hooks_installed, _previous_sigterm, _previous_sigint, _previous_excepthook
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    if threading.current_thread() is threading.main_thread():
        try:
            _previous_sigterm = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # not the main thread of the main interpreter
            _previous_sigterm = None
        try:
            current = signal.getsignal(signal.SIGINT)
            if callable(current):  # Python's KeyboardInterrupt, or the app's own handler
                _previous_sigint = current
                signal.signal(signal.SIGINT, _on_sigint)
        except (ValueError, OSError):
            _previous_sigint = None


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    run = active_run()
    if run is not None and not run.finished:
        if issubclass(exc_type, KeyboardInterrupt):
            run.finish(*interrupted_outcome(run, exc))
        else:
            run.finish("FAILED", error_info(exc))
    (_previous_excepthook or sys.__excepthook__)(exc_type, exc, tb)


def _at_exit() -> None:
    run = active_run()
    if run is not None and not run.finished:
        run.finish(
            "INTERRUPTED",
            {
                "type": "SystemExit",
                "message": "the process exited before the job finished (sys.exit() or a signal handler)",
                "traceback": "",
            },
        )


def note_signal(run: ActiveRun, name: str) -> None:
    """Write into the running job's record that ``name`` arrived: a trace that stays even when
    the app catches it (``except KeyboardInterrupt``, its own SIGTERM handler) and completes."""
    with run._lock:
        run.record.setdefault("signals", []).append({"signal": name, "at": utc_now()})
        run.save()


def _on_sigint(signum: int, frame: Any) -> None:
    """Note Ctrl-C in the record, then hand it on: Python's handler raises KeyboardInterrupt,
    which the app may catch; an uncaught one is recorded INTERRUPTED by the end hooks."""
    if defer_if_busy(_on_sigint, signum, frame):
        return
    run = active_run()
    if run is not None and not run.finished:
        note_signal(run, "SIGINT")
    previous = _previous_sigint
    if callable(previous):
        previous(signum, frame)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Record the signal, then behave exactly as the previous handler would have (once the
    record being written, if any, is on disk)."""
    if defer_if_busy(_on_sigterm, signum, frame):
        return
    run = active_run()
    previous = _previous_sigterm
    if run is not None and not run.finished:
        if callable(previous):
            # Someone else handles SIGTERM (submitit ignores it; Slurm SIGKILLs after KillWait):
            # note it, keep RUNNING; the loader shows DIED if the process then vanishes.
            note_signal(run, "SIGTERM")
        elif previous != signal.SIG_IGN:
            run.finish("INTERRUPTED", {"type": "SIGTERM", "message": "terminated by SIGTERM", "traceback": ""})
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    else:  # SIG_DFL (or unknown): die by the signal, as the process would have without us
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


# -- the API used inside a job ---------------------------------------------------------------

_warned_inactive = False


def quiet_unrecorded() -> None:
    """The ledger already warned that this job is not recorded: calls to the API stay silent."""
    global _warned_inactive
    _warned_inactive = True


def _require_active(what: str) -> ActiveRun | None:
    global _warned_inactive
    run = active_run()
    if run is None and not _warned_inactive:
        _warned_inactive = True
        log.warning(
            "hydra-ledger: %s() called outside a recorded Hydra job — nothing is recorded. "
            "Enable the ledger with `- override hydra/callbacks: ledger` in your config's defaults "
            "or `hydra/callbacks=ledger` on the command line.",
            what,
        )
    return run


def redacted(run: ActiveRun, values: dict[str, Any]) -> dict[str, Any]:
    """Flat summary or metric values as they may be written: secret-named keys, URL credentials
    and authorization values redacted with the job's redactor (the default one when unset)."""
    redactor = run.redactor
    if redactor is None:
        from hydra_plugins.hydra_ledger import DEFAULT_REDACT_KEYS

        redactor = run.redactor = Redactor(DEFAULT_REDACT_KEYS)
    return redactor.mapping(values)


def log_summary(**values: Any) -> None:
    """Add values to the current job's summary (``summary.<name>`` columns); nested dicts are dotted.

    Example: ``hydra_ledger.log_summary(val_loss=0.12, best={"epoch": 7})``.
    """
    run = _require_active("log_summary")
    if run is not None:
        run.update_summary(values)


def log_metrics(values: Mapping[str, Any], step: int | None = None) -> None:
    """Append one row of time-series values to the current job's ``.ledger/metrics.jsonl``.

    Example: ``hydra_ledger.log_metrics({"loss": loss, "lr": lr}, step=epoch)``.
    """
    if not isinstance(values, Mapping):
        raise TypeError(f"log_metrics(values, step=...) takes a mapping of name -> value, got {type(values).__name__}")
    run = _require_active("log_metrics")
    if run is None:
        return
    try:
        append_line(run.paths.metrics,
                    {"step": step, "time": time.time(), "values": redacted(run, flatten(dict(values)))})
    except Exception as exc:  # noqa: BLE001
        run._warn_once(f"cannot append to {run.paths.metrics}: {exc}", "metrics", unrecorded=False)


def run_dir() -> Path:
    """The output directory of the current Hydra job (where ``.hydra/`` and ``.ledger/`` are)."""
    run = active_run()
    if run is not None:
        return run.paths.job_dir
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:
        raise RuntimeError(
            "hydra_ledger.run_dir() works only inside a Hydra job (a function decorated with @hydra.main)"
        ) from None


_warned_kinds: set[str] = set()


def warn_once_per_process(kind: str, message: str) -> None:
    """Log ``message`` the first time only: e.g. low disk space, for every job of a sweep alike."""
    if kind not in _warned_kinds:
        _warned_kinds.add(kind)
        log.warning("%s", message)
