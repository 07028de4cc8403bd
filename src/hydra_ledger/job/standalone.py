"""A run recorded without Hydra: a training loop's own logger (Lightning) opens it in a dir of
its choosing, with the hyperparameters it is given as the config.

The record is the same as a Hydra job's (schema, statuses, heartbeat, git state, host), so
``load_runs``, the CLI and the report read it like any single run; what Hydra alone knows
(overrides, config groups, the ``.hydra/`` files) is absent, and a rerun is not possible.
"""
from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra_ledger._version import __version__
from hydra_ledger.job import runtime
from hydra_ledger.job.capture.environment import capture_host
from hydra_ledger.job.capture.git import capture_git
from hydra_ledger.job.capture.slurm import capture_slurm
from hydra_ledger.record import process_identity
from hydra_ledger.record.files import write_atomic
from hydra_ledger.record.paths import RunPaths
from hydra_ledger.record.redact import Redactor
from hydra_ledger.record.schema import DEFAULT_HEARTBEAT_S, RUN_SCHEMA, SCHEMA_VERSION

log = logging.getLogger(__name__)


def start_run(job_dir: str | os.PathLike[str], name: str, config: Mapping[str, Any] | None = None,
              heartbeat_s: float = DEFAULT_HEARTBEAT_S) -> runtime.ActiveRun:
    """Open a RUNNING record in ``job_dir`` and make it this process's active run (heartbeat,
    exit hooks, ``log_metrics``/``log_summary`` write into it). Ended by :func:`end_run`."""
    from hydra_plugins.hydra_ledger import DEFAULT_ENV_VARS, DEFAULT_REDACT_KEYS

    paths = RunPaths(Path(job_dir).resolve())
    paths.ledger_dir.mkdir(parents=True, exist_ok=True)
    redactor = Redactor(DEFAULT_REDACT_KEYS)
    host = capture_host(DEFAULT_ENV_VARS)
    host["env"] = redactor.tree(host["env"])
    slurm = capture_slurm()
    started = runtime.utc_now()
    record: dict[str, Any] = {
        "schema": RUN_SCHEMA, "version": SCHEMA_VERSION, "run_id": uuid.uuid4().hex[:12],
        "status": "RUNNING", "started_at": started, "ended_at": None, "duration_s": None,
        "heartbeat_s": heartbeat_s,
        "job": {"name": name, "id": None, "num": None, "mode": "RUN", "output_dir": str(paths.job_dir),
                "sweep_dir": None, "sweep_id": None, "config_name": None, "working_dir": os.getcwd()},
        "overrides": [], "hydra_overrides": [],
        "launch": {"argv": redactor.overrides(sys.argv), "cwd": os.getcwd(), "python": sys.executable,
                   "script": None, "module": None, "function": None, "config_dir": None, "config_name": None},
        "config": redactor.tree(plain(config or {})), "missing": [], "unresolved": {}, "choices": {},
        "host": host, "slurm": slurm, "note": None, "tags": [], "debug": False, "summary": {}, "error": None,
        "ledger_version": __version__, "rerun_of": None,
        "attempts": [{"attempt": 1, "started_at": started, "ended_at": None, "status": "RUNNING",
                      "pid": host["pid"], "hostname": host["hostname"], **process_identity.identity()}],
    }
    run = runtime.ActiveRun(paths, record, heartbeat_s)
    run.redactor = redactor
    runtime.activate(run)
    with run._lock:
        record["git"] = _git_state(paths)
        run.save()
    return run


def set_config(run: runtime.ActiveRun, config: Mapping[str, Any]) -> None:
    """Record ``config`` (e.g. hyperparameters known only after the run opened), redacted."""
    with run._lock:
        redactor = run.redactor or Redactor(())
        run.record["config"] = redactor.tree(plain(config))
        run.save()


def end_run(run: runtime.ActiveRun, status: str, error: dict[str, Any] | None = None) -> None:
    """The final status, written once; the process's active run is cleared."""
    run.finish(status, error)
    runtime.deactivate(run)


def plain(value: Any) -> Any:
    """Nested mappings and sequences (an OmegaConf config, Lightning's AttributeDict) as plain
    dicts and lists, the form a record holds; other leaves are converted when written."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return [plain(v) for v in value]
    return value


def _git_state(paths: RunPaths) -> dict[str, Any]:
    """Commit, branch, dirty flag and patch of the code in the cwd, as a Hydra job records them."""
    try:
        info, patch = capture_git(os.getcwd(), 5_000_000, [paths.job_dir])
    except Exception as exc:  # noqa: BLE001 - never the run's failure
        log.warning("hydra-ledger: cannot capture git state from %s: %s", os.getcwd(), exc)
        return {"state": "error", "error": str(exc)}
    if patch is not None:
        try:
            write_atomic(paths.patch, patch)
            info["patch"] = RunPaths.PATCH
        except OSError as exc:
            info["patch_skipped"] = f"cannot write {paths.patch}: {exc.strerror or exc}"
    return info
