"""The benchmark app: a job that does almost nothing, so that overhead shows."""
import hydra

try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": ("hydra_ledger.LedgerCallback",)}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}


@hydra.main(config_path=".", config_name="config", **MAIN_KWARGS)
def main(cfg) -> float:
    return cfg.model.lr * cfg.seed


if __name__ == "__main__":
    main()
