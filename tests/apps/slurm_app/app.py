"""An app for submitit/Slurm scenarios: sleeps, fails, or signals itself like Slurm would."""
import os
import signal
import time

import hydra
from omegaconf import DictConfig

import hydra_ledger


def _attempt() -> int:
    """This job's attempt number, counted in a file of its output dir (requeues rerun it there)."""
    counter = hydra_ledger.run_dir() / "attempts.txt"
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n


@hydra.main(version_base=None, config_path=".", config_name="config")
def main(cfg: DictConfig) -> dict:
    attempt = _attempt()
    if cfg.ignore_usr2:  # no warning before the time limit: Slurm's SIGTERM, then SIGKILL, is all it gets
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    if attempt <= cfg.usr2_attempts:
        # what Slurm sends on preemption or before the time limit; submitit's handler decides
        os.kill(os.getpid(), signal.SIGUSR2)
        time.sleep(30)
    if attempt == 1 and cfg.sleep_first:
        time.sleep(cfg.sleep_first)
    if cfg.sleep and cfg.catch_errors:  # a loop that catches every Exception, submitit's time-out error too
        deadline = time.monotonic() + cfg.sleep
        while time.monotonic() < deadline:
            try:
                time.sleep(1)
            except Exception:  # noqa: BLE001 - the careless task under test
                pass
    elif cfg.sleep:
        time.sleep(cfg.sleep)
    if cfg.fail or cfg.x == cfg.fail_x:
        raise ValueError(f"requested failure for x={cfg.x}")
    return {"x2": cfg.x * 2, "attempt": attempt}


if __name__ == "__main__":
    main()
