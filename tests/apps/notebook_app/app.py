"""A research-notebook app: reads its inputs, writes an artifact, prints at every level, reports a loss."""
import os
import subprocess
import sys

import hydra
from omegaconf import DictConfig

import hydra_ledger


@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg: DictConfig) -> dict:
    with hydra_ledger.open("model.pt", "wb") as f:
        f.write(b"weights %d" % cfg.seed)
    with hydra_ledger.open("eval/preds.csv", "w") as f:
        f.write("id,pred\n0,1\n")
    try:
        hydra_ledger.open("eval/../../escape.txt", "w")
    except ValueError as exc:
        hydra_ledger.log_summary(escape_refused=str(exc))
    print(f"python print seed={cfg.seed}", flush=True)
    os.write(1, b"c-level write to fd 1\n")
    subprocess.run(["echo", "from a subprocess"], check=True)
    for step in range(1, 4):
        sys.stderr.write(f"\rprogress {step}/3")
        sys.stderr.flush()
    sys.stderr.write("\n")
    return {"val_loss": round(1.0 / (1 + cfg.seed) + cfg.lr, 6)}


if __name__ == "__main__":
    main()
