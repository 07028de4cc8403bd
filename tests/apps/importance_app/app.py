"""A sweep's metric that depends on x alone: value = 10 * x, whatever y and the optimiser group."""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=".", config_name="config")
def main(cfg: DictConfig) -> float:
    return float(10 * cfg.x + 0 * cfg.y)


if __name__ == "__main__":
    main()
