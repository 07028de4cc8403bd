"""A sweep whose job ``edit_on`` changes a tracked file, and job ``add_on`` adds a file, as a
user's edits while the sweep runs would; with ``log_scratch``, every job appends to scratch.log."""
from pathlib import Path

import hydra
from omegaconf import DictConfig

import hydra_ledger

try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": hydra_ledger.EXECUTION_WHITELIST}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}


@hydra.main(config_path=".", config_name="config", **MAIN_KWARGS)
def main(cfg: DictConfig) -> int:
    if cfg.x == cfg.edit_on:
        notes = Path(__file__).with_name("notes.txt")
        notes.write_text(notes.read_text() + f"edited by job x={cfg.x}\n")
    if cfg.log_scratch:
        with open(Path(__file__).with_name("scratch.log"), "a") as log:
            log.write(f"job x={cfg.x}\n")
    if cfg.x == cfg.add_on:
        Path(__file__).with_name("added.py").write_text(f"ADDED_BY = {cfg.x}\n")
    return cfg.x


if __name__ == "__main__":
    main()
