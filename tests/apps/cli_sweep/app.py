"""A small training-like app for the CLI tests: a model group, lr and seed.

'large' fails on seed 1; sleep=S keeps a job running.
"""
import time

import hydra
from omegaconf import DictConfig

import hydra_ledger


@hydra.main(version_base=None, config_path=".", config_name="config")
def main(cfg: DictConfig) -> dict:
    for step in range(3):
        hydra_ledger.log_metrics({"loss": round(1.0 / (step + 1) + cfg.model.width / 1000, 6)}, step=step)
    time.sleep(cfg.sleep)
    if cfg.model.unstable and cfg.seed == 1:
        raise FloatingPointError(f"loss diverged (width={cfg.model.width}, seed={cfg.seed})\nsecond line")
    return {"acc": round(cfg.model.width / 100 + cfg.seed / 10, 6), "loss": round(1 / cfg.model.width + cfg.lr, 6)}


if __name__ == "__main__":
    main()
