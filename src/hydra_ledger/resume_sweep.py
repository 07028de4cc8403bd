"""Resuming a broken sweep: relaunch only its failed, dead, interrupted, timed-out or missing jobs.

The jobs keep their numbers and output dirs (the sweep dir is reused); each relaunched
job's earlier record is archived by the callback under ``.ledger/history/``. The launch goes
through Hydra itself, with the ``ledger_resume`` sweeper and the sweep's original launcher
(or another one), in the recorded code (a temporary worktree) or the current one.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from hydra_ledger.lineage import ENV_RERUN_OF, ENV_RESUME, encode_rerun_of
from hydra_ledger.load import derive_status, load_runs, read_records
from hydra_ledger.record import SWEEP_SCHEMA, RecordError, RunPaths, SweepPaths, read_record
from hydra_ledger.redact import REDACTED
from hydra_ledger.reproduce import Code, RerunError, _map_into, _quote_value, checkout_repo, hydra_dir
from hydra_ledger.worktree import CodeSnapshot, checked_out

log = logging.getLogger(__name__)

ENV_RESUME_JOBS = "HYDRA_LEDGER_RESUME_JOBS"  # read by hydra_plugins.hydra_ledger.resume_sweeper
# Statuses of jobs that did not complete and are relaunched; jobs with no record are too.
RESUMABLE = ("FAILED", "DIED", "INTERRUPTED", "TIMEOUT", "PREEMPTED", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL")
MISSING = "MISSING"
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
    python: str
    entry: list[str]
    cwd: Path
    relative_cwd: bool
    hydra_overrides: list[str]
    extra: list[str]
    code: Code
    snapshot: CodeSnapshot | None = None
    current_root: Path | None = None
    launcher: str | None = None
    notes: list[str] = field(default_factory=list)

    def argv(self, root: Path) -> list[str]:
        entry = [self.python, *self.entry] if self.entry[0] == "-m" else [self.python, str(root / self.entry[0])]
        return [*entry, "-m", *self.hydra_overrides, "hydra/sweeper=ledger_resume",
                f"hydra.sweep.dir={_quote_value(str(self.sweep_dir))}", *self.extra]

    def working_dir(self, root: Path) -> Path:
        return root / self.cwd if self.relative_cwd else self.cwd

    def env(self) -> dict[str, str]:
        jobs = [{"num": j.num, "overrides": j.overrides} for j in self.jobs]
        rerun_of = {j.num: j.run_id for j in self.jobs if j.run_id}
        return {**os.environ, ENV_RESUME: str(self.sweep_dir), ENV_RESUME_JOBS: json.dumps(jobs),
                ENV_RERUN_OF: encode_rerun_of(rerun_of)}

    def commands(self) -> list[str]:
        q = shlex.quote
        cmds: list[str] = []
        root = Path("<tmp>/worktree") if self.snapshot is not None else (self.current_root or self.cwd)
        if self.snapshot is not None:
            cmds += self.snapshot.commands(str(root))
        nums = ",".join(str(j.num) for j in self.jobs)
        cmds.append(f"cd {q(str(self.working_dir(root)))} && {ENV_RESUME_JOBS}='<jobs {nums}>' "
                    + " ".join(q(a) for a in self.argv(root)))
        if self.snapshot is not None:
            cmds.append(f"git -C {q(str(self.snapshot.repo))} worktree remove --force {root}")
        return cmds


@dataclass
class ResumeResult:
    """The outcome: the relaunched jobs' rows (``runs``) and the whole sweep after the resume."""

    plan: ResumePlan
    returncode: int
    sweep: pd.DataFrame

    @property
    def runs(self) -> pd.DataFrame:
        nums = [j.num for j in self.plan.jobs]
        return self.sweep[self.sweep["job_num"].isin(nums)].reset_index(drop=True)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _hydra_overrides(sweep_dir: Path, sweep: Mapping[str, Any], job_dirs: Sequence[Path]) -> list[str]:
    """The sweep's hydra overrides, unredacted where Hydra saved them (multirun.yaml or a job's hydra.yaml)."""
    for source in [sweep_dir / "multirun.yaml", *[(hydra_dir(d) or d / ".hydra") / "hydra.yaml" for d in job_dirs]]:
        value = _read_yaml(source) if source.is_file() else None
        if isinstance(value, dict) and "hydra" in value:
            return [str(o) for o in ((value["hydra"].get("overrides") or {}).get("hydra") or [])]
    return [str(o) for o in sweep.get("hydra_overrides") or []]


def _without(overrides: Sequence[str], keys: Sequence[str]) -> list[str]:
    kept = []
    for text in overrides:
        key = text.split("=", 1)[0].lstrip("+~")
        if not any(key == k or key.startswith(k + ".") for k in keys):
            kept.append(text)
    return kept


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
    now = time.time()
    recorded: dict[int, tuple[Path, dict[str, Any], str]] = {}
    for record_file, record in read_records([sweep_dir], errors="warn"):
        num = (record.get("job") or {}).get("num")
        if num is None:
            continue
        job_dir = RunPaths.from_record_file(record_file).job_dir
        recorded[int(num)] = (job_dir, record, derive_status(record, job_dir, now, stale_after))
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
            if status not in RESUMABLE:
                skipped[num] = status
                continue
            saved = _read_yaml((hydra_dir(job_dir) or job_dir / ".hydra") / "overrides.yaml")
            job_overrides = [str(o) for o in saved] if isinstance(saved, list) else job_list.get(
                num, [str(o) for o in record.get("overrides") or []])
            jobs.append(ResumeJob(num, status, job_overrides, str(record.get("run_id"))))
        else:
            jobs.append(ResumeJob(num, MISSING, job_list[num]))
    secret = [f"job {j.num}: {o}" for j in jobs for o in j.overrides if o.endswith("=" + REDACTED)]
    if secret:
        raise RerunError("redacted override values cannot be relaunched (" + "; ".join(secret[:3])
                         + "): pass the values as extra overrides after --")
    if not recorded:
        raise RerunError(f"no job of {sweep_dir} has a record, so its entry point is unknown: "
                         f"rerun the sweep's command instead: {' '.join(sweep.get('argv') or [])}")
    job_dir, sample, _ = recorded[min(recorded)]
    launch = sample.get("launch") or {}
    git = sample.get("git") or {}
    launch_cwd = Path(str(launch.get("cwd") or sweep.get("cwd") or os.getcwd()))
    hydra_overrides = _without(_hydra_overrides(sweep_dir, sweep, [v[0] for v in recorded.values()]), _SWEEP_PLACEMENT)
    if launcher is not None:
        hydra_overrides = [*_without(hydra_overrides, _LAUNCHER), f"hydra/launcher={launcher}"]
    snapshot = current_root = None
    if code == "recorded":
        if git.get("state") != "ok" or not git.get("commit"):
            raise RerunError(f"the sweep's jobs record no git commit (git state {git.get('state')!r}): "
                             "resume with --current-code")
        run_paths = RunPaths(job_dir)
        patch = run_paths.patch if git.get("dirty") else None
        if patch is not None and not patch.is_file():
            raise RerunError(f"the sweep ran from a dirty tree but {patch} is missing: resume with --current-code")
        root = Path(str(git["root"]))
        snapshot = CodeSnapshot(checkout_repo(root), str(git["commit"]), patch, run_paths.untracked,
                                list(git.get("untracked_saved") or []))
    else:
        from hydra_ledger.capture.git import find_repo_root

        root = Path(str(git["root"])) if git.get("root") and Path(str(git["root"])).exists() else (
            find_repo_root(launch_cwd) or launch_cwd)
        current_root = root
    entry, cwd, relative = _map_into(root, launch, launch_cwd)
    python = str(launch.get("python") or sys.executable)
    if not Path(python).exists():
        log.warning("hydra-ledger: recorded python %s is gone; using %s", python, sys.executable)
        python = sys.executable
    return ResumePlan(sweep_dir=sweep_dir, jobs=jobs, skipped=skipped, python=python, entry=entry, cwd=cwd,
                      relative_cwd=relative, hydra_overrides=hydra_overrides, extra=list(overrides), code=code,
                      snapshot=snapshot, current_root=current_root, launcher=launcher, notes=notes)


@contextlib.contextmanager
def _code(plan: ResumePlan) -> Iterator[Path]:
    if plan.snapshot is None:
        assert plan.current_root is not None
        yield plan.current_root
    else:
        with checked_out(plan.snapshot) as where:
            yield where


def execute_resume(plan: ResumePlan, *, capture: bool = False) -> ResumeResult:
    """Relaunch the planned jobs (nothing when none is left) and reload the sweep."""
    returncode = 0
    if plan.jobs:
        with _code(plan) as root:
            argv = plan.argv(root)
            log.info("hydra-ledger: resuming %s (jobs %s): %s", plan.sweep_dir,
                     ", ".join(str(j.num) for j in plan.jobs), " ".join(shlex.quote(a) for a in argv))
            proc = subprocess.run(argv, cwd=plan.working_dir(root), env=plan.env(), check=False,
                                  capture_output=capture, text=True)
            returncode = proc.returncode
        if capture and returncode != 0:
            log.warning("hydra-ledger: the resumed sweep exited with %d:\n%s", returncode, proc.stderr[-4000:])
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
