"""The same training as a Hydra app recorded by the ledger's callback."""
import hydra
from omegaconf import DictConfig
from tiny import fit


@hydra.main(config_path=".", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    fit(cfg.lr, cfg.hidden, cfg.epochs)


if __name__ == "__main__":
    main()
