"""A sweeper that relaunches chosen jobs of an existing sweep, keeping their job numbers.

Used by ``hydra-ledger resume`` (``hydra/sweeper=ledger_resume``); the jobs come from the
environment variable ``HYDRA_LEDGER_RESUME_JOBS`` as ``[{"num": 3, "overrides": [...]}, ...]``.
Hydra imports every module under ``hydra_plugins`` at every app start: this one imports
only Hydra's plugin base classes and ConfigStore.
"""
import json
import os
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper

ENV_RESUME_JOBS = "HYDRA_LEDGER_RESUME_JOBS"


class LedgerResumeSweeper(Sweeper):
    """Launches the listed jobs through the configured launcher with their original numbers."""

    def __init__(self, **_ignored: Any) -> None:  # the original sweeper's options do not apply
        self.config: Any = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        """Launch each run of consecutive job numbers as one batch (parallel launchers run it at
        once); re-raise the first failure at the end, as Hydra's basic sweeper does."""
        jobs = json.loads(os.environ.get(ENV_RESUME_JOBS) or "[]")
        jobs = sorted(jobs, key=lambda job: int(job["num"]))
        extra = list(arguments)
        returns = []
        first_failure: Any | None = None
        for batch in _consecutive(jobs):
            results = self.launcher.launch(
                [[*job["overrides"], *extra] for job in batch], initial_job_idx=int(batch[0]["num"])
            )
            for result in results:
                if first_failure is None and result.status.name == "FAILED":
                    first_failure = result
            returns.append(results)
        if first_failure is not None:
            _ = first_failure.return_value  # raises the job's exception
        return returns


def _consecutive(jobs: list[Any]) -> list[list[Any]]:
    batches: list[list[Any]] = []
    for job in jobs:
        if batches and int(batches[-1][-1]["num"]) + 1 == int(job["num"]):
            batches[-1].append(job)
        else:
            batches.append([job])
    return batches


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="ledger_resume",
    node={"_target_": "hydra_plugins.hydra_ledger.resume_sweeper.LedgerResumeSweeper"},
    provider="hydra-ledger",
)
