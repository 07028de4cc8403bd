"""A task whose config is a dataclass with an Enum and a Path field."""
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import hydra
from hydra.core.config_store import ConfigStore


class Mode(enum.Enum):
    FAST = 1
    SLOW = 2


@dataclass
class Train:
    epochs: int = 3
    mode: Mode = Mode.FAST
    data: Path = Path("/data/set")
    widths: List[int] = field(default_factory=lambda: [8, 16])


@dataclass
class Config:
    train: Train = field(default_factory=Train)
    seed: int = 0
    token: str = "tok-123"


ConfigStore.instance().store(name="structured", node=Config)


@hydra.main(version_base=None, config_name="structured")
def main(cfg: Config) -> int:
    return cfg.train.epochs


if __name__ == "__main__":
    main()
