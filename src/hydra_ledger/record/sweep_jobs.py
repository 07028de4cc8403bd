"""The job list of a sweep made by Hydra's BasicSweeper: job number -> task overrides.

Computed in the launching process with Hydra's own override parser and
``BasicSweeper.split_arguments`` (``jobs`` in ``.ledger/sweep.json``), so that a resume can
relaunch jobs that never started and ``status`` and ``log`` can count them as MISSING.
"""
from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

# A listed job with no record and no PENDING row: it never started and never will (its launcher
# is gone), unless `hydra-ledger resume` relaunches it.
MISSING = "MISSING"

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def basic_sweep_jobs(config: DictConfig) -> list[dict[str, Any]] | None:
    """``[{"num": 0, "overrides": [...]}, ...]`` in launch order, or None for other sweepers
    (their jobs are decided while sweeping) and for sweeps that need the config loader (glob)."""
    from omegaconf import OmegaConf  # here: the CLI's status and log need only missing_jobs

    hc = config.hydra
    if OmegaConf.select(hc, "sweeper._target_", default=None) != BASIC_SWEEPER:
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(hc, "sweeper.params", default=None) or {}
    arguments = [f"{k}={v}" for k, v in params.items()]
    arguments.extend(str(o) for o in hc.overrides.task)
    try:
        parsed = OverridesParser.create().parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # noqa: BLE001 - e.g. glob() needs the config loader: no list then
        return None
    return [{"num": num, "overrides": list(overrides)} for num, overrides in enumerate(batches[0])]


def redact_jobs(jobs: list[dict[str, Any]] | None, redactor: Any) -> list[dict[str, Any]] | None:
    """The job list with secret-valued overrides redacted, like every override on disk."""
    if jobs is None:
        return None
    return [{"num": job["num"], "overrides": redactor.overrides(job["overrides"])} for job in jobs]


def missing_jobs(jobs: Any, seen: Collection[Any]) -> list[dict[str, Any]]:
    """The jobs of a sweep's job list (``jobs`` of its record) whose number is not in ``seen``:
    pass the numbers of its recorded jobs and of its PENDING rows (the loader gives those while
    the launcher may still start them), and what is left is MISSING. [] when the list is unknown."""
    if not isinstance(jobs, list):
        return []
    return [{"num": job["num"], "overrides": list(job.get("overrides") or [])} for job in jobs
            if isinstance(job, dict) and isinstance(job.get("num"), int) and job["num"] not in seen]
