"""A user's own callback: writes what Hydra saw of the job to <output_dir>/probe.json."""
import json
from pathlib import Path

from hydra.experimental.callback import Callback


class Probe(Callback):
    def on_job_end(self, config, job_return, **kwargs) -> None:
        value = job_return._return_value
        out = {"status": job_return.status.name, "return": repr(value)}
        Path(config.hydra.runtime.output_dir, "probe.json").write_text(json.dumps(out))
