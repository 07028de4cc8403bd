"""How a rerun or a resume tells the jobs it launches where they come from.

The launching side (``hydra-ledger rerun`` / ``resume``) sets environment variables; the
callback reads them in the job process. Kept import-light: the callback imports it in
every job.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# A run id (a single rerun) or a JSON object {"<job num>": "<run id>"} (a resumed sweep).
ENV_RERUN_OF = "HYDRA_LEDGER_RERUN_OF"
# Set by `hydra-ledger resume`: the sweep dir being resumed; its sweep.json is kept.
ENV_RESUME = "HYDRA_LEDGER_RESUME"


def encode_rerun_of(value: str | dict[int, str]) -> str:
    """The value of ``HYDRA_LEDGER_RERUN_OF`` for one run id or a job-num -> run-id map."""
    if isinstance(value, str):
        return value
    return json.dumps({str(k): v for k, v in value.items()}, separators=(",", ":"))


def rerun_of(job_num: int | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """Job process: the run id this job reruns, or None for an ordinary job."""
    raw = environ.get(ENV_RERUN_OF)
    if not raw:
        return None
    if not raw.startswith("{"):
        return raw
    try:
        table = json.loads(raw)
    except ValueError:
        return None
    run_id = table.get(str(job_num)) if isinstance(table, dict) else None
    return run_id if isinstance(run_id, str) else None


def resumed_sweep_record(existing: dict[str, Any] | None, new: Mapping[str, Any], sweep_dir: Path) -> dict[str, Any]:
    """Launching process: the sweep record to write. A resume keeps the original record
    (its job list and first start) and appends the resume to ``resumes``."""
    resuming = os.environ.get(ENV_RESUME)
    if not resuming or existing is None or Path(resuming).resolve() != sweep_dir.resolve():
        return dict(new)
    entry = {
        "sweep_id": new.get("sweep_id"),
        "started_at": new.get("started_at"),
        "launcher": new.get("launcher"),
        "hydra_overrides": new.get("hydra_overrides"),
        "argv": new.get("argv"),
    }
    return {**existing, "ended_at": None, "resumes": [*(existing.get("resumes") or []), entry]}
