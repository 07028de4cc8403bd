"""A task with a config full of interpolations, resolvers, secrets and unicode; it reads few keys."""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=".", config_name="config")
def main(cfg: DictConfig) -> float:
    return cfg.model.lr * 2


if __name__ == "__main__":
    main()
