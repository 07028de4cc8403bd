"""A task with a config full of interpolations, resolvers, secrets and unicode; it reads few keys."""
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
def main(cfg: DictConfig) -> float:
    return cfg.model.lr * 2


if __name__ == "__main__":
    main()
