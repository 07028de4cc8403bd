"""An app whose config keys, metric names and summary are awkward for the exports' targets."""
import hydra
from omegaconf import DictConfig

import hydra_ledger


@hydra.main(version_base=None, config_path=".", config_name="config")
def main(cfg: DictConfig) -> dict:
    for step in range(0, 30, 10):
        hydra_ledger.log_metrics({"val/acc@1": step / 100, "loss": 1 / (step + 1)}, step=step)
    return {"best": {"acc": 0.2, "epoch": 2}, "note": "text is not a metric", "converged": True}


if __name__ == "__main__":
    main()
