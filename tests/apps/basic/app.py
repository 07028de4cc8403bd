"""A small app: returns a score, logs metrics, can fail or sleep on request."""
import time

import hydra
from omegaconf import DictConfig

import hydra_ledger


@hydra.main(version_base=None, config_path=".", config_name="config")
def main(cfg: DictConfig) -> dict:
    for step in range(cfg.steps):
        hydra_ledger.log_metrics({"loss": 1.0 / (step + 1 + cfg.lr)}, step=step)
    hydra_ledger.log_summary(logged=cfg.seed)
    if cfg.sleep:
        time.sleep(cfg.sleep)
    if cfg.fail:
        raise ValueError(f"requested failure for seed={cfg.seed}")
    return {"score": cfg.lr * 10 + cfg.seed, "steps": cfg.steps}


if __name__ == "__main__":
    main()
