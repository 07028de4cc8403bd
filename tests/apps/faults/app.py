"""A fault-injection app: a short job that returns or raises, leaving phase markers for the test."""
import os
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from phases import mark

import hydra_ledger

# Hydra 1.4 asks the application to trust the callback targets it instantiates (1.5 will
# require it); Hydra 1.3 has no such list and wants version_base instead.
try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": (*hydra_ledger.EXECUTION_WHITELIST, "phases.PhaseMarker")}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}


def _fill_disk(directory: str) -> int:
    """Write into ``directory`` until the disk is full (unbuffered: nothing left to flush); the bytes written."""
    written = 0
    size = 65536
    fd = os.open(os.path.join(directory, "filler.bin"), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    try:
        while size:
            try:
                written += os.write(fd, b"\0" * size)
            except OSError:
                size //= 2
    finally:
        os.close(fd)
    return written


@hydra.main(config_path=".", config_name="config", **MAIN_KWARGS)
def main(cfg: DictConfig) -> dict:
    out = HydraConfig.get().runtime.output_dir
    mark(out, "body")
    if cfg.fill_disk:
        _fill_disk(out)
    if cfg.sleep:
        time.sleep(cfg.sleep)
    fail = cfg.fail or cfg.seed in cfg.fail_on
    mark(out, "done")
    if fail:
        raise ValueError(f"requested failure for seed={cfg.seed}")
    return {"score": float(cfg.seed)}


if __name__ == "__main__":
    main()
