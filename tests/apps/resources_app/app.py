"""A job of known cost: holds `mb` MB of touched memory, burns `burn_s` CPU seconds; with
`child: true` the same is done by a child process instead (the process tree counts). Then it
logs `steps` values of `loss`, `step_s` seconds apart, and fails if asked."""
import subprocess
import sys
import time

import hydra
from omegaconf import DictConfig

import hydra_ledger

try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": hydra_ledger.EXECUTION_WHITELIST}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}

WORK = """
import sys, time
block = bytearray({mb} * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
end = time.process_time() + {burn_s}
while time.process_time() < end:
    pass
time.sleep({hold_s})
"""


@hydra.main(config_path=".", config_name="config", **MAIN_KWARGS)
def main(cfg: DictConfig) -> float:
    code = WORK.format(mb=cfg.mb, burn_s=cfg.burn_s, hold_s=cfg.hold_s)
    if cfg.child:
        subprocess.run([sys.executable, "-c", code], check=True)
    else:
        exec(code, {})
    for step in range(cfg.steps):
        hydra_ledger.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        time.sleep(cfg.step_s)
    if cfg.fail:
        raise ValueError(f"requested failure with mb={cfg.mb}\nsecond line")
    return float(cfg.mb)


if __name__ == "__main__":
    main()
