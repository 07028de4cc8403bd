"""A config-group sweep like a real one: model x dataset x seed, each group with its own keys.

Accuracy is made up from the choices, seed and lr; return_float=true returns it (the Optuna
sweeper's objective) besides logging it.
"""
import hydra
from omegaconf import DictConfig

import hydra_ledger


@hydra.main(version_base=None, config_path=".", config_name="config")
def main(cfg: DictConfig) -> float | None:
    base = {"svm": 0.8, "forest": 0.7}[cfg.model.kind] + {"a": 0.1, "b": 0.0}[cfg.dataset.kind]
    accuracy = round(base + cfg.seed / 100 - abs(cfg.lr - 0.01), 6)
    for step in range(3):
        hydra_ledger.log_metrics({"loss": round(1.0 / (step + 1) + (1 - accuracy), 6)}, step=step)
    hydra_ledger.log_summary(accuracy=accuracy)
    return accuracy if cfg.return_float else None


if __name__ == "__main__":
    main()
