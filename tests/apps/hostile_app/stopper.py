"""A callback that stops the launching process at the start of one job (see app.py)."""
import os
import time
from pathlib import Path

from hydra.experimental.callback import Callback


class Stopper(Callback):
    def on_job_start(self, config, **kwargs) -> None:
        stop_at = os.environ.get("HOSTILE_STOP_AT_JOB")
        if stop_at is not None and str(config.hydra.job.num) == stop_at:
            Path(os.environ["HOSTILE_MARKER"]).touch()
            time.sleep(600)  # until the test SIGKILLs this process
