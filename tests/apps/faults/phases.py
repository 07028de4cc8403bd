"""Phase markers: empty files in the job's output dir telling the test how far a job got.

``start``: Hydra started the job, the ledger's on_job_start has not run yet; ``body``: the
task began; ``done``: the task is about to return or raise; ``end``: the ledger's on_job_end
has returned (Hydra calls end hooks in reverse order, and this callback is listed first) on a job
no signal stopped before it.
"""
from __future__ import annotations

import os
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def mark(output_dir: str, phase: str) -> None:
    """Create ``<output_dir>/phase.<phase>``: an os-level create, visible at once to the test."""
    os.close(os.open(os.path.join(output_dir, f"phase.{phase}"), os.O_CREAT | os.O_WRONLY, 0o644))


class PhaseMarker(Callback):
    """Job process: marks the start of the job before the ledger's hook, its end after it."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        mark(config.hydra.runtime.output_dir, "start")

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        # Hydra >= 1.4 runs the end hooks after a Ctrl-C too, handing them the KeyboardInterrupt:
        # the signal then came before the ledger's end hook, which is not "end"
        if not isinstance(getattr(job_return, "_return_value", None), (KeyboardInterrupt, SystemExit)):
            mark(config.hydra.runtime.output_dir, "end")
