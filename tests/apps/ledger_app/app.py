"""A task whose return value, failures, duration and logging are chosen by its config."""
import enum
import os
import pathlib
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import hydra_ledger

# Hydra 1.4 asks the application to trust the callback targets it instantiates (1.5 will
# require it); Hydra 1.3 has no such list and wants version_base instead.
try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": (*hydra_ledger.EXECUTION_WHITELIST, "probe.Probe")}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}


if os.environ.get("APP_SIGTERM_EXIT"):  # the app's own SIGTERM handler, installed before Hydra starts
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(int(os.environ["APP_SIGTERM_EXIT"])))


class Color(enum.Enum):
    RED = 1


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class Unrepresentable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class BrokenMapping(Mapping):
    """A mapping that cannot be read: summarising it fails inside the ledger's end hook."""

    def __getitem__(self, key):
        raise RuntimeError("unreadable")

    def __iter__(self):
        raise RuntimeError("unreadable")

    def __len__(self) -> int:
        return 1


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(42)"


def make_return(kind: str, x: float):
    if kind == "float":
        return x * 2
    if kind == "dict":
        return {"loss": x, "nested": {"acc": 0.5}}
    if kind == "list":
        return [x, "b"]
    if kind == "long":
        return list(range(1000))
    if kind == "numpy":
        import numpy

        return numpy.float32(0.5)
    if kind == "path":
        return pathlib.Path("/data/x.txt")
    if kind == "enum":
        return Color.RED
    if kind == "bytes":
        return b"raw\x00"
    if kind == "nonfinite":
        return {"loss": float("nan"), "best": float("inf"), "worst": float("-inf"), "acc": 0.5}
    if kind == "object":
        return Opaque()
    if kind == "broken-mapping":
        return BrokenMapping()
    if kind == "unrepresentable":
        return Unrepresentable()
    if kind == "unrepresentable-in-dict":
        return {"ok": 1, "bad": Unrepresentable()}
    return None


@hydra.main(config_path=".", config_name="config", **MAIN_KWARGS)
def main(cfg: DictConfig):
    # marks "the task is running" for tests that signal the process
    Path(HydraConfig.get().runtime.output_dir, "started").write_text(str(hydra_ledger.run_dir()))
    for step in range(cfg.steps):
        hydra_ledger.log_metrics({"loss": 1.0 / (step + 1), "x": cfg.x}, step=step)
    if cfg.log_summary:
        hydra_ledger.log_summary(logged=cfg.x, loss=-1.0)
    if cfg.sleep:
        import time

        time.sleep(cfg.sleep)
    if cfg.x in cfg.fail_on:
        if cfg.kind == "unprintable":
            raise Unprintable()
        raise ValueError(f"x={cfg.x} is bad")
    if cfg.exit_code is not None:
        raise SystemExit(cfg.exit_code)
    return make_return(cfg.kind, cfg.x)


if __name__ == "__main__":
    main()
