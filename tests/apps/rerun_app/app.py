"""A deterministic app for reruns: the score depends only on the config.

Failures are requested from outside the config (environment), as transient failures are:
RERUN_TEST_FAIL_JOBS=1,2 raises in those sweep jobs, RERUN_TEST_KILL_JOB=3 SIGKILLs job 3.
"""
import os
import random

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import hydra_ledger

try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": hydra_ledger.EXECUTION_WHITELIST}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}


def score(cfg: DictConfig) -> float:
    rng = random.Random(cfg.seed)
    return round(sum(rng.random() for _ in range(cfg.n)) * cfg.scale, 9)


@hydra.main(config_path=".", config_name="config", **MAIN_KWARGS)
def main(cfg: DictConfig) -> dict:
    num = str(OmegaConf.select(HydraConfig.get(), "job.num", default=""))
    if num and num == os.environ.get("RERUN_TEST_KILL_JOB"):
        os.kill(os.getpid(), 9)
    if num and num in os.environ.get("RERUN_TEST_FAIL_JOBS", "").split(","):
        raise RuntimeError(f"requested failure of job {num}")
    return {"score": score(cfg), "n": cfg.n, "tag": cfg.tag}


if __name__ == "__main__":
    main()
