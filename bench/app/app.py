"""The benchmark app: a job that does almost nothing, so that overhead shows."""
import hydra
from hydra.core.config_store import ConfigStore

try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    from hydra_ledger import EXECUTION_WHITELIST  # both of the ledger's targets

    MAIN_KWARGS: dict = {"execution_whitelist": (*EXECUTION_WHITELIST, "hydra.experimental.callback.Callback")}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}

# `hydra/callbacks=do_nothing`: the floor any callback pays (Hydra composes, copies and saves its
# node for every job), stored as the ledger's node is, so that the two compare.
ConfigStore.instance().store(group="hydra/callbacks", name="do_nothing",
                             node={"do_nothing": {"_target_": "hydra.experimental.callback.Callback"}})


@hydra.main(config_path=".", config_name="config", **MAIN_KWARGS)
def main(cfg) -> float:
    return cfg.model.lr * cfg.seed


if __name__ == "__main__":
    main()
