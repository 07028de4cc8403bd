"""A small app: returns a score, logs metrics, can fail or sleep on request."""
import time

import hydra
from omegaconf import DictConfig

import hydra_ledger

# Hydra 1.4 asks the application to trust the callback targets it instantiates (1.5 will
# require it); Hydra 1.3 has no such list and wants version_base instead.
try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": hydra_ledger.EXECUTION_WHITELIST}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}


@hydra.main(config_path=".", config_name="config", **MAIN_KWARGS)
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
