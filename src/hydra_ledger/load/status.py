"""A job's status as the loader reports it: the one place that decides it from a record.

A record says what the job last wrote. At load time a RUNNING job whose heartbeat went stale
is DIED (or TIMEOUT, when submitit had given up at its time-out signal), unless its very
process still lives on this host; a status this version does not know is DIED. Slurm's own
verdict on the jobs in doubt is added by :mod:`hydra_ledger.load.slurm`.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra_ledger.record.paths import RunPaths
from hydra_ledger.record.process_identity import liveness
from hydra_ledger.record.schema import (
    DEFAULT_HEARTBEAT_S,
    NOT_REQUEUED,
    RecordError,
    read_heartbeat,
    read_record,
    recorded_status,
)


def heartbeat_of(record: Mapping[str, Any]) -> float:
    """The seconds between a job's heartbeats, as it recorded them."""
    return float(record.get("heartbeat_s") or DEFAULT_HEARTBEAT_S)


def stale_after_s(heartbeat_s: float) -> float:
    """Heartbeat age after which a RUNNING job is taken as dead."""
    return max(3 * heartbeat_s, heartbeat_s + 5)


def derive_status(record: Mapping[str, Any], job_dir: str | Path, now: float, stale_after: float | None) -> str:
    """The record's status, with RUNNING turned into DIED once its heartbeat has gone stale."""
    status = recorded_status(record.get("status"))
    if status != "RUNNING":
        return status
    beat = read_heartbeat(RunPaths(job_dir))
    if beat is None:
        beat = _epoch(record.get("started_at"))
    limit = stale_after if stale_after is not None else stale_after_s(heartbeat_of(record))
    return _died_or_timeout(record, job_dir) if beat is None or now - beat > limit else "RUNNING"


def _died_or_timeout(record: Mapping[str, Any], job_dir: str | Path) -> str:
    """DIED, or TIMEOUT when submitit had given up on the job at its time-out signal and Slurm
    ended it at its limit without the task hearing of it (see :func:`gave_up_at_time_out`);
    RUNNING after all when its very process still lives on this host (a task holding the GIL or
    a stopped process beats no more, yet is not dead: see :mod:`hydra_ledger.record.process_identity`)."""
    if "signals" not in record or "attempts" not in record:  # a row from the index: read for stale jobs only
        try:
            record = read_record(RunPaths(job_dir).record)
        except RecordError:
            return "DIED"
    attempts = record.get("attempts")
    if attempts and isinstance(attempts[-1], dict) and liveness(attempts[-1]) == "alive":
        return "RUNNING"
    return "TIMEOUT" if gave_up_at_time_out(record) else "DIED"


def _epoch(iso: Any) -> float | None:
    try:
        moment = _dt.datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # the records' times are UTC; a naive one is read as such, as pandas does
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.timestamp()


def gave_up_at_time_out(record: Mapping[str, Any]) -> bool:
    """Whether submitit's last word on this attempt was "timed out, not requeued": the job then
    ends at its time limit, even when its error never reached the task (a task that catches
    every Exception, or the error raised inside a logging call, which swallows it)."""
    usr = [s for s in record.get("signals") or ()
           if isinstance(s, dict) and str(s.get("signal", "")).startswith("SIGUSR")]
    return bool(usr) and usr[-1].get("case") == "timed-out" and str(usr[-1].get("outcome", "")).startswith(NOT_REQUEUED)
