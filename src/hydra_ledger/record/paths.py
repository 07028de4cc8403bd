"""Where a job's and a sweep's ledger files live: the one owner of their names.

A job's record lives in ``<output_dir>/.ledger/`` beside Hydra's ``.hydra/``; a sweep's in
``<sweep_dir>/.ledger/``.
"""
from __future__ import annotations

import os
from pathlib import Path

LEDGER_DIR = ".ledger"
# Hydra's own record of a job (config.yaml, hydra.yaml, overrides.yaml), at its default
# ``hydra.output_subdir``; :func:`hydra_ledger.relaunch.launch.hydra_dir` finds a renamed one.
HYDRA_DIR = ".hydra"


# Directories that never hold job records: the walk does not enter them.
NO_RECORDS_BELOW = frozenset({LEDGER_DIR, HYDRA_DIR, ".submitit", ".git", "__pycache__", "node_modules", ".venv"})


def is_within(path: str, parent: str) -> bool:
    """Whether ``path`` is ``parent`` or below it (both absolute, normalised or resolved alike)."""
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


class RunPaths:
    """Owns the paths of one job's ledger files; nobody else joins these names."""

    RECORD = "run.json"
    HEARTBEAT = "heartbeat"
    PATCH = "git.patch"
    PACKAGES = "packages.json"
    METRICS = "metrics.jsonl"
    RESOURCES = "resources.jsonl"  # the job's CPU, memory and GPU, one line per heartbeat (bounded)
    HISTORY = "history"
    UNTRACKED = "untracked"
    # Sidecars written by `hydra-ledger tag/untag/note`, never by the job (which rewrites run.json).
    TAGS = "tags.json"
    NOTES = "notes.jsonl"
    SIDECAR_LOCK = "sidecars.lock"  # flock'ed while tags.json or notes.jsonl is edited (hydra_ledger.record.sidecars)
    # `hydra-ledger conclude` (append-only) and the job's captured output (capture_output=true).
    CONCLUSIONS = "conclusions.jsonl"
    STDOUT = "stdout.log"
    STDERR = "stderr.log"
    # Everything that belongs to one run: moved to history/ when a new run reuses the output dir.
    PER_RUN = (METRICS, RESOURCES, PATCH, UNTRACKED, TAGS, NOTES, CONCLUSIONS, STDOUT, STDERR)

    def __init__(self, job_dir: str | os.PathLike[str]) -> None:
        self.job_dir = Path(job_dir)
        self.ledger_dir = self.job_dir / LEDGER_DIR

    @classmethod
    def from_record_file(cls, record_file: str | os.PathLike[str]) -> RunPaths:
        return cls(Path(record_file).parent.parent)

    @property
    def record(self) -> Path:
        return self.ledger_dir / self.RECORD

    @property
    def hydra_dir(self) -> Path:
        """Hydra's ``.hydra`` dir of the job, at its default name."""
        return self.job_dir / HYDRA_DIR

    @property
    def heartbeat(self) -> Path:
        return self.ledger_dir / self.HEARTBEAT

    @property
    def patch(self) -> Path:
        return self.ledger_dir / self.PATCH

    @property
    def packages(self) -> Path:
        return self.ledger_dir / self.PACKAGES

    @property
    def metrics(self) -> Path:
        return self.ledger_dir / self.METRICS

    @property
    def resources(self) -> Path:
        return self.ledger_dir / self.RESOURCES

    @property
    def tags(self) -> Path:
        return self.ledger_dir / self.TAGS

    @property
    def notes(self) -> Path:
        return self.ledger_dir / self.NOTES

    @property
    def sidecar_lock(self) -> Path:
        return self.ledger_dir / self.SIDECAR_LOCK

    @property
    def conclusions(self) -> Path:
        return self.ledger_dir / self.CONCLUSIONS

    @property
    def stdout(self) -> Path:
        return self.ledger_dir / self.STDOUT

    @property
    def stderr(self) -> Path:
        return self.ledger_dir / self.STDERR

    @property
    def untracked(self) -> Path:
        """Copies of the untracked files of the code the job ran (restored by an exact rerun)."""
        return self.ledger_dir / self.UNTRACKED

    def archived_record(self, run_id: str) -> Path:
        """Where an earlier run's record goes when a new run reuses this output dir."""
        return self.ledger_dir / self.HISTORY / f"{run_id}.json"

    def archived_file(self, run_id: str, name: str) -> Path:
        """Where an earlier run's per-run file (metrics, patch, ...) goes: ``history/<run_id>.<name>``."""
        return self.ledger_dir / self.HISTORY / f"{run_id}.{name}"

    def __repr__(self) -> str:
        return f"RunPaths({str(self.job_dir)!r})"


class SweepPaths:
    """Owns the paths of a sweep's ledger files, in the sweep dir."""

    RECORD = "sweep.json"
    CONCLUSIONS = RunPaths.CONCLUSIONS
    OBJECTS = "objects"
    # The git state captured by the launching process for the jobs (hydra_ledger.job.sweep_git).
    GIT_STATE = "git.json"
    GIT_PATCH = "git.patch"
    PACKAGES = RunPaths.PACKAGES  # hard-linked into each job's .ledger/ that has the same packages
    # Each job's final row, appended as it ends (hydra_ledger.record.row_journal): a first load's shortcut.
    ROWS = "rows.jsonl"

    def __init__(self, sweep_dir: str | os.PathLike[str]) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.ledger_dir = self.sweep_dir / LEDGER_DIR

    @property
    def record(self) -> Path:
        return self.ledger_dir / self.RECORD

    @property
    def conclusions(self) -> Path:
        return self.ledger_dir / self.CONCLUSIONS

    @property
    def packages(self) -> Path:
        return self.ledger_dir / self.PACKAGES

    @property
    def rows(self) -> Path:
        return self.ledger_dir / self.ROWS

    @property
    def git_state(self) -> Path:
        return self.ledger_dir / self.GIT_STATE

    @property
    def git_patch(self) -> Path:
        return self.ledger_dir / self.GIT_PATCH

    @property
    def objects(self) -> Path:
        """The jobs' untracked files, each stored once by content: ``objects/<sha256[:2]>/<sha256>``."""
        return self.ledger_dir / self.OBJECTS
