"""A task whose config is a dataclass with an Enum and a Path field."""
import enum
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore

import hydra_ledger

# Hydra 1.4 asks the application to trust the callback targets it instantiates (1.5 will
# require it); Hydra 1.3 has no such list and wants version_base instead.
try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": hydra_ledger.EXECUTION_WHITELIST}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}


class Mode(enum.Enum):
    FAST = 1
    SLOW = 2


@dataclass
class Train:
    epochs: int = 3
    mode: Mode = Mode.FAST
    data: Path = Path("/data/set")
    widths: list[int] = field(default_factory=lambda: [8, 16])


@dataclass
class Config:
    train: Train = field(default_factory=Train)
    seed: int = 0
    token: str = "tok-123"


ConfigStore.instance().store(name="structured", node=Config)


@hydra.main(config_name="structured", **MAIN_KWARGS)
def main(cfg: Config) -> int:
    return cfg.train.epochs


if __name__ == "__main__":
    main()
