"""Statuses that only the scheduler knows: sacct's verdict on jobs that died without a word,
and the jobs of a sweep that have not started yet.

Called by the loader on its rows (flat dicts), in the process that loads, e.g. a login node:
- A row is *in doubt* when it is DIED (its heartbeat went stale: SIGKILL after ``scancel``
  and KillWait, a time limit, OOM, a node failure) or PREEMPTED (requeued, waiting to
  start again). For those with a Slurm job id, ONE ``sacct`` call (short time-out) gives
  Slurm's own state: DIED becomes CANCELLED, TIMEOUT, OUT_OF_MEMORY or NODE_FAIL.
- A sweep whose job list is known (``jobs`` in ``.ledger/sweep.json``, written by the
  launching process for Hydra's BasicSweeper) gets a PENDING row for each job with no
  record yet. For submitit on Slurm the pending jobs' Slurm ids come from the names of the
  ``.submitit/<array>_<task>/`` folders, which submitit creates at submission; they go in
  the same ``sacct`` call, so that a job cancelled while pending shows as CANCELLED.
- The same call gives, for the started jobs it covers (``usage=True``: every finished job
  with a Slurm job id, too), what ``seff`` shows: what the job asked for (ReqMem, ReqCPUS,
  Timelimit) against what it used (MaxRSS, TotalCPU, Elapsed), as ``slurm.*`` efficiency
  columns (:data:`USAGE_COLUMNS`).
Without ``sacct`` (no Slurm here, accounting disabled, time-out) statuses stay as derived.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra_ledger.record.paths import HYDRA_DIR, LEDGER_DIR, RunPaths, SweepPaths
from hydra_ledger.record.schema import FINAL_STATUSES, STATUSES, SWEEP_SCHEMA, RecordError, read_record

log = logging.getLogger(__name__)

SACCT_TIMEOUT_S = 5.0
SLURM_LAUNCHER = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
SUBMITIT_DIR = ".submitit"
# Statuses whose truth the scheduler may know better than the record.
IN_DOUBT = frozenset({"DIED", "PREEMPTED"})

# Slurm job state (sacct, first word) -> status, for a job that started (it has a record).
_STARTED = {
    "CANCELLED": "CANCELLED",
    "TIMEOUT": "TIMEOUT",
    "DEADLINE": "TIMEOUT",
    "OUT_OF_MEMORY": "OUT_OF_MEMORY",
    "NODE_FAIL": "NODE_FAIL",
    "BOOT_FAIL": "NODE_FAIL",
    "RUNNING": "RUNNING",
    "PREEMPTED": "PREEMPTED",
    "PENDING": "PREEMPTED",  # it ran before: requeued, waiting for its next attempt
    "REQUEUED": "PREEMPTED",
    "REQUEUE_HOLD": "PREEMPTED",
    "REQUEUE_FED": "PREEMPTED",
    "SUSPENDED": "PREEMPTED",
}
# ... for a job of a sweep that has no record yet.
_NOT_STARTED = {
    **_STARTED,
    "PENDING": "PENDING",
    "REQUEUED": "PENDING",
    "REQUEUE_HOLD": "PENDING",
    "REQUEUE_FED": "PENDING",
    "PREEMPTED": "PENDING",
    "SUSPENDED": "PENDING",
    "FAILED": "FAILED",  # it failed before Hydra's on_job_start (e.g. the environment)
    "COMPLETED": "COMPLETED",  # it ran between reading the records and asking sacct
}
assert set(_NOT_STARTED.values()) <= set(STATUSES)


# What sacct knows of a started job's use of its allocation: the columns the loader adds.
USAGE_COLUMNS = ("slurm.req_mem_bytes", "slurm.max_rss_bytes", "slurm.mem_efficiency", "slurm.req_cpus",
                 "slurm.alloc_cpus", "slurm.total_cpu_s", "slurm.elapsed_s", "slurm.cpu_efficiency",
                 "slurm.timelimit_s")
_SACCT_FIELDS = "JobIDRaw,JobID,State,ReqMem,ReqCPUS,AllocCPUS,Timelimit,Elapsed,TotalCPU,MaxRSS"


def refine(rows: list[dict[str, Any]], roots: Iterable[str | os.PathLike[str]],
           sweeps: list[tuple[Path, dict[str, Any]]] | None = None,
           started: dict[str, set[int]] | None = None, usage: bool = False) -> list[dict[str, Any]]:
    """Refine in-doubt statuses with one ``sacct`` call and append PENDING rows (see the module doc).

    ``sweeps`` and ``started`` (see :func:`pending_rows`) spare a walk when the caller has them.
    ``usage``: also ask about every finished row (status in FINAL_STATUSES) with a Slurm job
    id; the rows sacct knows get their :data:`USAGE_COLUMNS`, in-doubt ones included.
    """
    pending = pending_rows(rows, roots, sweeps, started)
    wanted = IN_DOUBT | FINAL_STATUSES if usage else IN_DOUBT
    queried = [r for r in rows if r.get("status") in wanted and r.get("slurm.job_id") is not None]
    queried += [r for r in pending if r.get("slurm.submitit_job_id") is not None]
    if queried:
        # asking for a pending task's array too lists all its tasks: a task missing there is gone
        arrays = {str(r["slurm.array_job_id"]) for r in pending if r.get("slurm.array_job_id") is not None}
        answer = sacct_query([_slurm_ref(r) for r in queried] + sorted(arrays))
        states, used = answer if answer is not None else (None, {})
        for row in queried:
            if row.get("run_id") is not None:
                row.update(used.get(str(row["slurm.job_id"]), {}))
                if row.get("status") not in IN_DOUBT:
                    continue
            state = states.get(_slurm_ref(row)) if states is not None else None
            if state is None and states is not None and row.get("run_id") is None:
                state = _vanished(row, states)
            if state is None:
                continue
            row["slurm.state"] = state
            table = _STARTED if row.get("run_id") is not None else _NOT_STARTED
            row["status"] = table.get(state.split()[0], row["status"])
    return rows + pending


def _slurm_ref(row: Mapping[str, Any]) -> str:
    """The id sacct is asked about: the raw job id of a started job, ``<array>_<task>`` otherwise."""
    job_id = row.get("slurm.job_id")
    return str(job_id) if job_id is not None else str(row["slurm.submitit_job_id"])


def _vanished(row: Mapping[str, Any], states: Mapping[str, str]) -> str | None:
    """A pending array task that sacct does not list while it lists its array: Slurm 22.05
    drops a task cancelled before it started without any accounting record."""
    array_id, task = row.get("slurm.array_job_id"), row.get("slurm.array_task_id")
    if array_id is None or task is None:
        return None
    if any(key.startswith(f"{array_id}_") for key in states):
        return "CANCELLED (while pending; sacct has no record)"
    return None


def sacct_query(job_ids: list[str], timeout: float = SACCT_TIMEOUT_S,
                ) -> tuple[dict[str, str], dict[str, dict[str, Any]]] | None:
    """``({job id: State}, {raw job id: usage columns})`` from one ``sacct`` call; None when
    sacct is missing, fails or is slow.

    State keys are both the raw id and submitit's ``<array>_<task>`` form; a pending array's
    ``57_[3-9%10]`` line is expanded to each task. Usage: see :func:`parse_usage`.
    """
    sacct = shutil.which("sacct")
    if sacct is None or not job_ids:
        return None
    import subprocess  # here only: a load that asks sacct nothing does without it

    # no -X: MaxRSS is measured per step (batch, the srun step), never on the job's own line
    command = [sacct, "-n", "-P", f"--format={_SACCT_FIELDS}", "-j", ",".join(sorted(set(job_ids)))]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("hydra-ledger: sacct gave no answer (%s): statuses of killed Slurm jobs stay DIED, and "
                    "finished jobs have no slurm efficiency columns", exc)
        return None
    if proc.returncode != 0:
        log.warning("hydra-ledger: sacct failed (%s): statuses of killed Slurm jobs stay DIED, and finished "
                    "jobs have no slurm efficiency columns",
                    proc.stderr.strip() or f"exit {proc.returncode}")
        return None
    return parse_sacct(proc.stdout), parse_usage(proc.stdout)


def parse_sacct(text: str) -> dict[str, str]:
    """The jobs' states in ``sacct -n -P --format=JobIDRaw,JobID,State,...`` output (steps' lines skipped)."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or "." in parts[0]:
            continue
        raw, job_id, state = parts[0], parts[1], parts[2]
        states[raw] = state
        states[job_id] = state
        match = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job_id)
        if match:
            for task in _expand(match.group(2)):
                states[f"{match.group(1)}_{task}"] = state
    return states


def parse_usage(text: str) -> dict[str, dict[str, Any]]:
    """``{raw job id: {slurm.req_mem_bytes: ..., ...}}`` from ``sacct -n -P --format=`` :data:`_SACCT_FIELDS`
    output, as ``seff`` computes it: MaxRSS is the largest of the job's steps, the memory
    efficiency MaxRSS / ReqMem, the CPU efficiency TotalCPU / (Elapsed x AllocCPUS). A value
    sacct leaves empty (MaxRSS of a job shorter than JobAcctGatherFrequency, a time limit of
    UNLIMITED) is left out."""
    jobs: dict[str, dict[str, Any]] = {}
    steps_rss: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 10:
            continue
        raw, _, _, req_mem, req_cpus, alloc_cpus, limit, elapsed, total_cpu, max_rss = parts[:10]
        job, _, step = raw.partition(".")
        rss = _bytes(max_rss)
        if rss is not None:
            steps_rss[job] = max(steps_rss.get(job, 0), rss)
        if step:
            continue
        usage: dict[str, Any] = {
            "slurm.req_cpus": _int(req_cpus),
            "slurm.alloc_cpus": _int(alloc_cpus),
            "slurm.timelimit_s": _seconds(limit),
            "slurm.elapsed_s": _seconds(elapsed),
            "slurm.total_cpu_s": _seconds(total_cpu),
        }
        memory = _bytes(req_mem.rstrip("nc"))
        if memory is not None and req_mem.endswith("c"):  # per CPU (Slurm before 21.08 marks it)
            memory *= usage["slurm.alloc_cpus"] or usage["slurm.req_cpus"] or 1
        usage["slurm.req_mem_bytes"] = memory
        jobs[job] = usage
    for job, usage in jobs.items():
        rss = steps_rss.get(job)
        usage["slurm.max_rss_bytes"] = rss
        memory = usage["slurm.req_mem_bytes"]
        usage["slurm.mem_efficiency"] = round(rss / memory, 4) if rss is not None and memory else None
        cpu, wall, cpus = usage["slurm.total_cpu_s"], usage["slurm.elapsed_s"], usage["slurm.alloc_cpus"]
        usage["slurm.cpu_efficiency"] = round(cpu / (wall * cpus), 4) if cpu is not None and wall and cpus else None
        jobs[job] = {k: v for k, v in usage.items() if v is not None}
    return jobs


_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4, "P": 1024 ** 5}


def _bytes(text: str) -> int | None:
    """``218264K``, ``2G``, ``1.50M`` (sacct's 1024-based sizes) in bytes; None if empty or not a size."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTP]?)", text.strip())
    return round(float(match.group(1)) * _UNITS[match.group(2)]) if match else None


def _int(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def _seconds(text: str) -> float | None:
    """``[D-][HH:]MM:SS[.mmm]`` (Elapsed, TotalCPU, Timelimit) in seconds; None for UNLIMITED and the like."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+(?::\d+){0,2}(?:\.\d+)?)", text.strip())
    if not match:
        return None
    seconds = 0.0
    for part in match.group(2).split(":"):
        seconds = seconds * 60 + float(part)
    if match.group(1) and match.group(2).count(":") == 0:  # "D-HH": days and hours
        seconds *= 3600
    elif match.group(1) and match.group(2).count(":") == 1:  # "D-HH:MM"
        seconds *= 60
    return seconds + int(match.group(1) or 0) * 86400


def _expand(ranges: str) -> Iterable[int]:
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        yield from range(int(first), int(last or first) + 1)


# -- pending jobs ---------------------------------------------------------------------------


def pending_rows(rows: list[dict[str, Any]], roots: Iterable[str | os.PathLike[str]],
                 sweeps: list[tuple[Path, dict[str, Any]]] | None = None,
                 started: dict[str, set[int]] | None = None) -> list[dict[str, Any]]:
    """A PENDING row per job of a known sweep job list that has no record yet.

    ``started``: sweep dir (real path) -> job nums with a record, else taken from ``rows``;
    ``sweeps``: the sweep records to consult, else found under ``roots``.
    """
    if started is None:
        started = {}
        for given in rows:
            if given.get("sweep") and given.get("job_num") is not None:
                started.setdefault(_key(given["sweep"]), set()).add(int(given["job_num"]))
    out: list[dict[str, Any]] = []
    for sweep_dir, record in (_sweep_records(started, roots) if sweeps is None else sweeps):
        jobs = record.get("jobs")
        if not isinstance(jobs, list):
            continue
        done = started.get(_key(sweep_dir), set())
        missing = [job for job in jobs if isinstance(job, dict) and job.get("num") not in done]
        if not missing:
            continue
        ids = _submitted_ids(sweep_dir, len(jobs)) if record.get("launcher") == SLURM_LAUNCHER else None
        if ids is None and not _launcher_may_run(record):
            continue  # its launcher is gone and nothing was queued: these jobs will never start
        for job in missing:
            row: dict[str, Any] = {
                "run_id": None,
                "path": None,
                "sweep": str(sweep_dir),
                "job_num": job.get("num"),
                "status": "PENDING",
                "overrides": list(job.get("overrides") or []),
            }
            if ids is not None and job.get("num") in ids:
                array_id, task = ids[job["num"]]
                row["slurm.submitit_job_id"] = f"{array_id}_{task}" if task is not None else array_id
                if task is not None:
                    row["slurm.array_job_id"] = array_id
                    row["slurm.array_task_id"] = task
            out.append(row)
    return out


def _key(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(path)


def _sweep_records(started: Mapping[str, set[int]],
                   roots: Iterable[str | os.PathLike[str]]) -> Iterable[tuple[Path, dict[str, Any]]]:
    """Sweep records in the loaded rows' sweep dirs, and in the roots down to two levels
    (``multirun/<date>/<time>``, Hydra's default), where a sweep with no started job lives."""
    candidates: dict[str, Path] = {key: Path(key) for key in started}
    for root in roots:
        for directory in _dirs(Path(root), depth=2):
            candidates.setdefault(_key(directory), directory)
    for key in sorted(candidates):
        paths = SweepPaths(candidates[key])
        if not paths.record.is_file():
            continue
        try:
            yield candidates[key], read_record(paths.record, SWEEP_SCHEMA)
        except RecordError as exc:
            log.warning("%s", exc)


def _dirs(root: Path, depth: int) -> Iterable[Path]:
    if not root.is_dir():
        return
    yield root
    if depth == 0:
        return
    try:
        children = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for entry in children:
        if entry.name not in (LEDGER_DIR, HYDRA_DIR, SUBMITIT_DIR) and not RunPaths(entry.path).record.exists():
            yield from _dirs(Path(entry.path), depth - 1)


def _submitted_ids(sweep_dir: Path, job_count: int) -> dict[int, tuple[str, int | None]] | None:
    """job num -> (Slurm job id, array task or None), from ``.submitit/`` folder names.

    submitit makes ``<array>_<task>/`` (or ``<job>/`` for a one-job batch) holding
    ``*_submitted.pkl`` right after ``sbatch``. Each ``launch()`` batch is one array and
    batches are submitted in job-number order, so sorting arrays by id gives the numbers.
    Only trusted when the folders account for exactly the sweep's jobs.
    """
    try:
        names = [e.name for e in os.scandir(sweep_dir / SUBMITIT_DIR) if e.is_dir()]
    except OSError:
        return None
    arrays: dict[int, list[int]] = {}
    singles: list[int] = []
    for name in names:
        match = re.fullmatch(r"(\d+)_(\d+)", name)
        if match:
            arrays.setdefault(int(match.group(1)), []).append(int(match.group(2)))
        elif name.isdigit() and (sweep_dir / SUBMITIT_DIR / name / f"{name}_submitted.pkl").exists():
            singles.append(int(name))
    batches: list[tuple[int, list[int | None]]] = [(a, [*sorted(t)]) for a, t in arrays.items()]
    batches += [(s, [None]) for s in singles]
    batches.sort()
    if sum(len(tasks) for _, tasks in batches) != job_count:
        return None
    ids: dict[int, tuple[str, int | None]] = {}
    num = 0
    for job_id, tasks in batches:
        for task in tasks:
            ids[num] = (str(job_id), task)
            num += 1
    return ids


def _launcher_may_run(record: Mapping[str, Any]) -> bool:
    """False only when the launching process is known dead (same host, pid gone)."""
    pid, host = record.get("launcher_pid"), record.get("launcher_host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return _alive(pid)


def _alive(pid: int) -> bool:
    """A zombie (exited, not reaped yet) counts as dead: /proc/<pid>/stat's state is Z."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]
