"""hydra-ledger: record every Hydra job and load runs and sweeps into one pandas DataFrame.

The loader (and pandas) is imported on first use, so that importing this package in a
job process stays cheap; the job's API too, so that the command line does without it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hydra_ledger._version import __version__
from hydra_ledger.errors import LedgerError, LedgerWarning

# Hydra >= 1.4 warns when it instantiates a callback whose target no execution whitelist
# names, and 1.5 will refuse; only the application can grant that trust (a plugin cannot):
# `@hydra.main(..., execution_whitelist=(*your_targets, *hydra_ledger.EXECUTION_WHITELIST))`.
EXECUTION_WHITELIST = ("hydra_ledger.LedgerCallback", "hydra_ledger.StrictLedgerCallback")

# `open` (hydra_ledger.open("model.pt", "wb")) is public but left out of __all__, so that
# `from hydra_ledger import *` never shadows the builtin.
__all__ = [
    "EXECUTION_WHITELIST",
    "ConfigMismatch",
    "LedgerCallback",
    "LedgerError",
    "LedgerLoadWarning",
    "LedgerWarning",
    "RerunError",
    "StrictLedgerCallback",
    "__version__",
    "load_metrics",
    "load_runs",
    "log_metrics",
    "log_summary",
    "only_changed",
    "param_importance",
    "rerun",
    "resume",
    "run_dir",
    "swept_keys",
]

_LAZY = {"LedgerCallback": "hydra_ledger.job.callback",  # imports Hydra: not needed to load runs
         "StrictLedgerCallback": "hydra_ledger.job.callback",
         "load_runs": "hydra_ledger.load", "load_metrics": "hydra_ledger.load", "only_changed": "hydra_ledger.load",
         "swept_keys": "hydra_ledger.load.swept", "param_importance": "hydra_ledger.load.importance",
         "log_metrics": "hydra_ledger.job.runtime", "log_summary": "hydra_ledger.job.runtime",
         "run_dir": "hydra_ledger.job.runtime",
         # modules named apart from their functions: importing a submodule binds its name here
         "open": "hydra_ledger.job.artifacts",  # hydra_ledger.open("model.pt", "wb"): inside the run's dir
         "rerun": "hydra_ledger.relaunch.rerun", "resume": "hydra_ledger.relaunch.resume",
         "RerunError": "hydra_ledger.relaunch.launch", "ConfigMismatch": "hydra_ledger.relaunch.rerun",
         "LedgerLoadWarning": "hydra_ledger.record.schema"}

if TYPE_CHECKING:
    from hydra_ledger.job.artifacts import open as open  # re-exported, kept out of __all__ (see above)
    from hydra_ledger.job.callback import LedgerCallback, StrictLedgerCallback
    from hydra_ledger.job.runtime import log_metrics, log_summary, run_dir
    from hydra_ledger.load import load_metrics, load_runs, only_changed
    from hydra_ledger.load.importance import param_importance
    from hydra_ledger.load.swept import swept_keys
    from hydra_ledger.record.schema import LedgerLoadWarning
    from hydra_ledger.relaunch.launch import RerunError
    from hydra_ledger.relaunch.rerun import ConfigMismatch, rerun
    from hydra_ledger.relaunch.resume import resume


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hydra_ledger' has no attribute {name!r}")
