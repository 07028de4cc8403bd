"""Resuming a broken sweep: relaunch only its failed, dead, interrupted, timed-out or missing jobs.

The jobs keep their numbers and output dirs (the sweep dir is reused); each relaunched
job's earlier record is archived by the callback under ``.ledger/history/``. The launch goes
through Hydra itself, with the ``ledger_resume`` sweeper and the sweep's original launcher
(or another one), in the recorded code (a temporary worktree) or the current one.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hydra_ledger.load import load_runs, read_records
from hydra_ledger.load.status import derive_status
from hydra_ledger.record.lineage import ENV_RERUN_OF, ENV_RESUME, encode_rerun_of
from hydra_ledger.record.paths import RunPaths, SweepPaths
from hydra_ledger.record.process_identity import liveness
from hydra_ledger.record.redact import REDACTED, Redactor
from hydra_ledger.record.schema import SWEEP_SCHEMA, RecordError, read_record
from hydra_ledger.record.sweep_jobs import MISSING
from hydra_ledger.relaunch import launch as _launch
from hydra_ledger.relaunch.launch import Code, CodeSource, RerunError, hydra_dir, quote_value, read_yaml, without

log = logging.getLogger(__name__)

ENV_RESUME_JOBS = "HYDRA_LEDGER_RESUME_JOBS"  # read by hydra_plugins.hydra_ledger.resume_sweeper
# Statuses of jobs that did not complete and are relaunched; jobs with no record are too.
# PREEMPTED is not among them: Slurm requeued the job and will start it again, in the same dir.
RESUMABLE = ("FAILED", "DIED", "INTERRUPTED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL")
# sacct states (first word) saying a job has ended for good: a PREEMPTED job in one is relaunched.
_GONE = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "DEADLINE", "OUT_OF_MEMORY", "NODE_FAIL",
                   "BOOT_FAIL"})
_SWEEP_PLACEMENT = ("hydra.mode", "hydra.sweep.dir", "hydra/sweeper", "hydra.sweeper", "hydra.job.id",
                    "hydra.job.num")
_LAUNCHER = ("hydra/launcher", "hydra.launcher")


@dataclass
class ResumeJob:
    num: int
    status: str  # the recorded status, or MISSING
    overrides: list[str]
    run_id: str | None = None


@dataclass
class ResumePlan:
    """What a resume will relaunch and how (what ``--dry-run`` prints)."""

    sweep_dir: Path
    jobs: list[ResumeJob]
    skipped: dict[int, str]  # job num -> status of jobs left alone
    source: CodeSource
    hydra_overrides: list[str]
    extra: list[str]
    redactor: Redactor
    launcher: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def code(self) -> Code:
        return self.source.code

    def argv(self, root: Path) -> list[str]:
        return [*self.source.entry_argv(root), "-m", *self.hydra_overrides, "hydra/sweeper=ledger_resume",
                f"hydra.sweep.dir={quote_value(str(self.sweep_dir))}", *self.extra]

    def working_dir(self, root: Path) -> Path:
        return self.source.working_dir(root)

    def shown_overrides(self, job: ResumeJob) -> str:
        """A job's overrides as printed: secret values redacted."""
        return " ".join(self.redactor.overrides(job.overrides))

    def env(self) -> dict[str, str]:
        jobs = [{"num": j.num, "overrides": j.overrides} for j in self.jobs]
        rerun_of = {j.num: j.run_id for j in self.jobs if j.run_id}
        return {**os.environ, ENV_RESUME: str(self.sweep_dir), ENV_RESUME_JOBS: json.dumps(jobs),
                ENV_RERUN_OF: encode_rerun_of(rerun_of)}

    def commands(self) -> list[str]:
        """The shell commands of this resume, as ``--dry-run`` prints them (secret values redacted)."""
        nums = ",".join(str(j.num) for j in self.jobs)
        return self.source.commands(lambda root: [
            f"cd {shlex.quote(str(self.working_dir(root)))} && {ENV_RESUME_JOBS}='<jobs {nums}>' "
            + _launch.shown(self.argv(root), self.redactor)])


@dataclass
class ResumeResult:
    """The outcome: the relaunched jobs' rows (``runs``) and the whole sweep after the resume."""

    plan: ResumePlan
    returncode: int
    sweep: pd.DataFrame

    @property
    def runs(self) -> pd.DataFrame:
        nums = [j.num for j in self.plan.jobs]
        # pandas-stubs types indexing by a boolean mask, and reset_index, as Any
        rows: pd.DataFrame = self.sweep[self.sweep["job_num"].isin(nums)]
        # by job number, as the plan lists them: the loader orders by start time, which parallel
        # launchers shuffle
        ordered: pd.DataFrame = rows.sort_values("job_num", kind="stable").reset_index(drop=True)
        return ordered


def _hydra_files(sweep_dir: Path, job_dirs: Sequence[Path]) -> list[Path]:
    """Where Hydra saved the sweep's hydra config: ``multirun.yaml``, then each job's ``hydra.yaml``."""
    return [sweep_dir / "multirun.yaml", *[(hydra_dir(d) or RunPaths(d).hydra_dir) / "hydra.yaml" for d in job_dirs]]


def _hydra_overrides(sweep: Mapping[str, Any], hydra_files: Sequence[Path]) -> list[str]:
    """The sweep's hydra overrides, unredacted where Hydra saved them (multirun.yaml or a job's hydra.yaml)."""
    for source in hydra_files:
        value = read_yaml(source, required=False) if source.is_file() else None
        if isinstance(value, dict) and "hydra" in value:
            return [str(o) for o in ((value["hydra"].get("overrides") or {}).get("hydra") or [])]
    return [str(o) for o in sweep.get("hydra_overrides") or []]


def _statuses(sweep_dir: Path, sweep: dict[str, Any], stale_after: float | None) -> dict[Any, Any]:
    """``{num: (job dir, record, status)}`` of the recorded jobs, and under the key None
    ``{num: status}`` of the listed jobs without a record, as ``load_runs`` gives them: a
    stale RUNNING job is DIED, and sacct has its say on DIED and PREEMPTED jobs and on jobs
    not started (see :mod:`hydra_ledger.load.slurm`). A PREEMPTED job stays resumable only
    when sacct says it has ended for good."""
    from hydra_ledger.load.slurm import refine

    now = time.time()
    records: dict[int, tuple[Path, dict[str, Any]]] = {}
    rows = []
    for record_file, record in read_records([sweep_dir], errors="warn"):
        num = (record.get("job") or {}).get("num")
        if num is None:
            continue
        job_dir = RunPaths.from_record_file(record_file).job_dir
        records[int(num)] = (job_dir, record)
        rows.append({"run_id": record.get("run_id"), "sweep": str(sweep_dir), "job_num": int(num),
                     "status": derive_status(record, job_dir, now, stale_after),
                     "slurm.job_id": (record.get("slurm") or {}).get("job_id")})
    refined = refine(rows, [], sweeps=[(sweep_dir, sweep)], started={os.path.realpath(sweep_dir): set(records)})
    out: dict[Any, Any] = {None: {}}
    for row in refined:
        num, status = int(row["job_num"]), str(row["status"])
        if row.get("run_id") is None:
            out[None][num] = status
            continue
        state = str(row.get("slurm.state") or "").split()
        if status == "PREEMPTED" and state and state[0] in _GONE:
            status = f"PREEMPTED ({row['slurm.state']} in Slurm)"
        out[num] = (*records[num], status)
    return out


def _liveness_note(num: int, record: Mapping[str, Any], status: str) -> str | None:
    """Why a job recorded RUNNING is left alone, or why relaunching it may launch it twice."""
    attempts = record.get("attempts") or []
    if record.get("status") != "RUNNING" or not attempts or not isinstance(attempts[-1], dict):
        return None
    attempt = attempts[-1]
    state = liveness(attempt)
    if status == "RUNNING" and state == "alive":
        return f"job {num} is left alone: its process (pid {attempt.get('pid')}) still runs on this host"
    if status in RESUMABLE and state == "unknown" and attempt.get("hostname"):
        return (f"job {num} ran on {attempt.get('hostname')} (pid {attempt.get('pid')}) and its heartbeat stopped; "
                "this host cannot tell whether it still runs: check before resuming, or it may run twice")
    return None


def plan_resume(
    sweep_dir: str | os.PathLike[str],
    *,
    launcher: str | None = None,
    code: Code = "recorded",
    overrides: Sequence[str] = (),
    stale_after: float | None = None,
) -> ResumePlan:
    """Decide which jobs of ``sweep_dir`` to relaunch and how (see :func:`resume`); runs nothing."""
    sweep_dir = Path(sweep_dir).absolute()
    paths = SweepPaths(sweep_dir)
    try:
        sweep = read_record(paths.record, SWEEP_SCHEMA)
    except RecordError as exc:
        raise RerunError(f"{sweep_dir} is not a recorded sweep: {exc}") from None
    recorded = _statuses(sweep_dir, sweep, stale_after)
    pending = recorded.pop(None, {})
    job_list = {int(j["num"]): [str(o) for o in j["overrides"]] for j in sweep.get("jobs") or []}
    notes = []
    if not sweep.get("jobs"):
        notes.append(f"{paths.record} holds no job list (a sweeper other than Hydra's basic one): "
                     "only recorded jobs can be resumed; jobs that never started are unknown")
    jobs: list[ResumeJob] = []
    skipped: dict[int, str] = {}
    for num in sorted(job_list.keys() | recorded.keys()):
        if num in recorded:
            job_dir, record, status = recorded[num]
            note = _liveness_note(num, record, status)
            if note:
                notes.append(note)
            if status not in RESUMABLE and not status.startswith("PREEMPTED ("):
                skipped[num] = status
                continue
            saved = read_yaml((hydra_dir(job_dir) or RunPaths(job_dir).hydra_dir) / "overrides.yaml", required=False)
            job_overrides = [str(o) for o in saved] if isinstance(saved, list) else job_list.get(
                num, [str(o) for o in record.get("overrides") or []])
            jobs.append(ResumeJob(num, status, job_overrides, str(record.get("run_id"))))
        elif pending.get(num, MISSING) in ("PENDING", "RUNNING", "COMPLETED"):
            skipped[num] = pending[num]  # queued in Slurm, or its launcher may still start it
        else:
            jobs.append(ResumeJob(num, pending.get(num, MISSING), job_list[num]))
    secret = [f"job {j.num}: {o}" for j in jobs for o in j.overrides if o.endswith("=" + REDACTED)]
    if secret:
        raise RerunError("redacted override values cannot be relaunched (" + "; ".join(secret[:3])
                         + "): pass the values as extra overrides after --")
    if not recorded:
        raise RerunError(f"no job of {sweep_dir} has a record, so its entry point is unknown: "
                         f"rerun the sweep's command instead: {' '.join(sweep.get('argv') or [])}")
    num = min(recorded)
    job_dir, sample, _ = recorded[num]
    hydra_files = _hydra_files(sweep_dir, [v[0] for v in recorded.values()])
    hydra_overrides = without(_hydra_overrides(sweep, hydra_files), _SWEEP_PLACEMENT)
    if launcher is not None:
        hydra_overrides = [*without(hydra_overrides, _LAUNCHER), f"hydra/launcher={launcher}"]
    if not (sample.get("launch") or {}).get("cwd") and sweep.get("cwd"):
        sample = {**sample, "launch": {**(sample.get("launch") or {}), "cwd": sweep["cwd"]}}
    source = _launch.code_source(code, job_dir, sample, subject=f"the sweep {sweep_dir} (job {num})", verb="resume")
    return ResumePlan(sweep_dir=sweep_dir, jobs=jobs, skipped=skipped, source=source, hydra_overrides=hydra_overrides,
                      extra=list(overrides), redactor=_launch.redactor_for(hydra_files), launcher=launcher,
                      notes=notes)


def execute_resume(plan: ResumePlan, *, capture: bool = False) -> ResumeResult:
    """Relaunch the planned jobs (nothing when none is left) and reload the sweep."""
    returncode = 0
    if plan.jobs:
        with plan.source.checked_out() as root:
            what = f"resume of {plan.sweep_dir} (jobs {', '.join(str(j.num) for j in plan.jobs)})"
            returncode = _launch.run(plan.argv(root), plan.working_dir(root), plan.env(), what=what,
                                     redactor=plan.redactor, capture=capture)
    return ResumeResult(plan, returncode, load_runs(plan.sweep_dir))


def resume(
    sweep_dir: str | os.PathLike[str],
    *overrides: str,
    launcher: str | None = None,
    code: Code = "recorded",
    stale_after: float | None = None,
    capture: bool = False,
) -> ResumeResult:
    """Relaunch the jobs of a sweep that are FAILED, DIED, INTERRUPTED, TIMEOUT or never started.

    Jobs keep their numbers and output dirs; completed jobs never rerun. ``launcher`` names
    another Hydra launcher (e.g. ``submitit_slurm``); default: the sweep's own. ``code`` is
    ``"recorded"`` (the sweep's commit, in a temporary worktree) or ``"current"``.
    ``stale_after``: seconds without heartbeat after which a RUNNING job counts as DIED.

    Example
    -------
    >>> result = hydra_ledger.resume("multirun/2024-05-01/12-00-00")  # doctest: +SKIP
    >>> result.runs[["job_num", "status"]]                            # doctest: +SKIP
    """
    plan = plan_resume(sweep_dir, launcher=launcher, code=code, overrides=overrides, stale_after=stale_after)
    return execute_resume(plan, capture=capture)
