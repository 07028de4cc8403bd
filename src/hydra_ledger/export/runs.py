"""The runs to export, as plain values: what every target needs of a record, read once.

A run's values come from its record (config, summary, git, host, status), its sidecars (tags,
notes) and its ``metrics.jsonl``; the status is the loader's (a stale RUNNING job is DIED).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra_ledger.load import read_records
from hydra_ledger.load.roots import default_roots
from hydra_ledger.load.runs import resolve_run
from hydra_ledger.load.status import derive_status
from hydra_ledger.record.files import metric_entries
from hydra_ledger.record.flatten import flatten
from hydra_ledger.record.paths import RunPaths
from hydra_ledger.record.rows import sweep_dir_of
from hydra_ledger.record.sidecars import annotate

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Point:
    """One value of a metric logged with ``log_metrics``: its step and wall time (seconds)."""

    name: str
    step: int
    time: float
    value: float


@dataclass
class ExportRun:
    """One recorded job, as the exporters write it."""

    run_id: str
    path: Path  # the job dir, absolute
    status: str  # the ledger's: COMPLETED, FAILED, RUNNING, DIED, ...
    started_at: float | None  # seconds since the epoch
    ended_at: float | None
    name: str  # the job's overrides (``model=small seed=0``), else its dir name
    experiment: str  # the sweep dir relative to where it was launched, else the job's name
    sweep: str | None  # the sweep dir, absolute (None for a single run)
    params: dict[str, Scalar] = field(default_factory=dict)  # the resolved config, flattened
    summary: dict[str, float] = field(default_factory=dict)  # the summary's numeric values
    metrics: list[Point] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)  # git, host, job number: what the tags say
    tags: list[str] = field(default_factory=list)  # the user's (launch and `hydra-ledger tag`)
    note: str | None = None
    error: str | None = None  # "Type: message" of a failed job

    @property
    def last_step(self) -> int:
        """The last step a metric was logged at (0 without metrics): where the summary goes."""
        return max((p.step for p in self.metrics), default=0)


def select(arguments: Sequence[str], roots: Sequence[str] = (), include_debug: bool = False) -> list[ExportRun]:
    """The runs that ``arguments`` name: job, sweep or root dirs, or run id prefixes (looked up in
    ``roots``, default the project's); every run of the default roots when there are none.
    A run named twice is exported once. Raises SelectError for an argument that names nothing."""
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    dirs = [a for a in arguments if os.path.isdir(a) or os.path.isfile(a)] if arguments else default_roots()
    for record_file, record in read_records(dirs):
        found.setdefault(os.path.abspath(record_file), (Path(record_file), record))
    for argument in arguments:
        if os.path.exists(argument):
            continue
        paths, record = resolve_run(argument, roots)
        found.setdefault(os.path.abspath(paths.record), (paths.record, record))
    now = time.time()
    runs = [to_export(RunPaths.from_record_file(f), r, now) for f, r in found.values()
            if include_debug or not r.get("debug")]
    seen: set[str] = set()
    unique = []
    for run in sorted(runs, key=lambda r: (r.started_at or 0.0, str(r.path))):
        if run.run_id not in seen:  # a copied run dir holds the same run
            seen.add(run.run_id)
            unique.append(run)
    return unique


def to_export(paths: RunPaths, record: Mapping[str, Any], now: float) -> ExportRun:
    """The export values of one run from its record and files."""
    job_dir = paths.job_dir.absolute()
    job = record.get("job") or {}
    overrides = [str(o) for o in record.get("overrides") or ()]
    sweep = _sweep_dir(job_dir, job)
    git = record.get("git") or {}
    host = record.get("host") or {}
    info = {
        "job_num": job.get("num"),
        "git.commit": git.get("commit"),
        "git.branch": git.get("branch"),
        "git.dirty": git.get("dirty"),
        "git.remote": git.get("remote"),
        "host": host.get("hostname"),
        "user": host.get("user"),
        "script": (record.get("launch") or {}).get("script"),
        "slurm.job_id": (record.get("slurm") or {}).get("job_id"),
    }
    error = record.get("error") or {}
    tags, note = annotate(record, paths)
    summary = {str(k): float(v) for k, v in flatten(record.get("summary") or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return ExportRun(
        run_id=str(record.get("run_id") or ""),
        path=job_dir,
        status=derive_status(record, job_dir, now, None),
        started_at=_epoch(record.get("started_at")),
        ended_at=_epoch(record.get("ended_at")),
        name=" ".join(overrides) or job_dir.name,
        experiment=_experiment(record),
        sweep=sweep,
        params={k: _param(v) for k, v in flatten(record.get("config") or {}).items()},
        summary=summary,
        metrics=read_points(paths.metrics),
        info={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in info.items() if v is not None},
        tags=tags,
        note=note,
        error=f"{error.get('type')}: {error.get('message')}" if isinstance(error, dict) and error else None,
    )


def _sweep_dir(job_dir: Path, job: Mapping[str, Any]) -> str | None:
    """Where the job's sweep dir is now (the recorded path may predate a copy or an rsync)."""
    return sweep_dir_of(str(job_dir), job) if job.get("mode") == "MULTIRUN" else None


def _experiment(record: Mapping[str, Any]) -> str:
    """The sweep dir as the user named it (relative to where the sweep was launched, as recorded, so
    that the name depends neither on where the export runs nor where the runs were copied), or the
    job's name for a single run."""
    job = record.get("job") or {}
    sweep = job.get("sweep_dir")
    if job.get("mode") != "MULTIRUN" or not sweep:
        return str(job.get("name") or "hydra-ledger")
    base = job.get("working_dir") or (record.get("launch") or {}).get("cwd")
    if base:
        try:
            return str(Path(sweep).relative_to(base))
        except ValueError:
            pass
    return str(sweep)


def _param(value: Any) -> Scalar:
    """A config value as one parameter: scalars as they are, lists, mappings and null as JSON."""
    if isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _epoch(iso: Any) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        moment = _dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # the records' times are UTC
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.timestamp()


def read_points(metrics_file: Path) -> list[Point]:
    """The numeric values of ``metrics.jsonl``, in order; a line without a step counts as its line
    number (as the report does). Broken lines are skipped: ``load_metrics`` warns of them."""
    points = []
    for index, entry, values in metric_entries(metrics_file):
        step = entry.get("step")
        step = int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) \
            and math.isfinite(step) else index
        moment = entry.get("time")
        moment = float(moment) if isinstance(moment, (int, float)) and not isinstance(moment, bool) else 0.0
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                points.append(Point(str(name), step, moment, float(value)))
    return points
