"""A user's own callback: writes what Hydra saw of the job to <output_dir>/probe.json."""
import json
from pathlib import Path

from hydra.experimental.callback import Callback


class Probe(Callback):
    def on_job_end(self, config, job_return, **kwargs) -> None:
        value = job_return._return_value
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - the returns under test include a broken __repr__
            text = "<repr() failed>"
        out = {"status": job_return.status.name, "return": text}
        Path(config.hydra.runtime.output_dir, "probe.json").write_text(json.dumps(out))
