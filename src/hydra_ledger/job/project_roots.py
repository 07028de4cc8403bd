"""Launching process: registering where a run or sweep goes, so that a bare ``hydra-ledger ls``
anywhere in the project finds it (the rule and the registry: :mod:`hydra_ledger.record.registry`)."""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, Literal

from hydra_ledger.record import registry

log = logging.getLogger(__name__)


def register_launch(hydra_cfg: Any, kind: Literal["run", "sweep"]) -> None:
    """Register the dir holding this launch's run (``hydra.run.dir``) or sweep (``hydra.sweep.dir``)
    for the project of the launch dir. Never raises: a failure is one warning, the job runs on."""
    cwd = os.getcwd()
    where = "unknown"
    try:
        node = hydra_cfg.run if kind == "run" else hydra_cfg.sweep
        where = str(node.dir)  # resolved here as in the job: Hydra caches ${now:} on the config
        root = registry.runs_root(where, _unresolved(node, "dir"), cwd)
        if root is None:
            log.debug("hydra-ledger: %s is the launch dir or above it: not registered", where)
            return
        where = str(root)
        registry.register(_project(cwd), root)
    except Exception as exc:  # noqa: BLE001 - the registry is a convenience; the job comes first
        log.warning("hydra-ledger: cannot register %s for 'hydra-ledger ls' (%s: %s) — the job runs on; "
                    "list its runs with 'hydra-ledger ls %s'", where, type(exc).__name__, exc, where)


def _project(cwd: str) -> registry.Project:
    """The launch dir's git repository; outside git, the app script's, else the launch dir."""
    project = registry.project_of(cwd)
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if not project.in_git and script:
        around_script = registry.project_of(os.path.dirname(os.path.abspath(script)))
        if around_script.in_git:
            return around_script
    return project


def _unresolved(node: Any, key: str) -> str | None:
    """The dir template as written (``outputs/${now:%Y-%m-%d}/...``), without resolving it."""
    try:
        value = node._get_node(key)._value()
    except Exception:  # noqa: BLE001 - an unusual config node: the resolved dir is registered
        return None
    return value if isinstance(value, str) else None
