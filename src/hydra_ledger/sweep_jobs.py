"""The job list of a sweep made by Hydra's BasicSweeper: job number -> task overrides.

Computed in the launching process with Hydra's own override parser and
``BasicSweeper.split_arguments``, so that a resume can relaunch jobs that never started.
"""
from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def basic_sweep_jobs(config: DictConfig) -> list[dict[str, Any]] | None:
    """``[{"num": 0, "overrides": [...]}, ...]`` in launch order, or None for other sweepers
    (their jobs are decided while sweeping) and for sweeps that need the config loader (glob)."""
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
