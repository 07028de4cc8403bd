"""An app whose config, summary and metrics hold secrets (every secret value contains "LIVE")."""
import hydra
from omegaconf import DictConfig

import hydra_ledger

try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": hydra_ledger.EXECUTION_WHITELIST}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}


@hydra.main(config_path=".", config_name="config", **MAIN_KWARGS)
def main(cfg: DictConfig) -> dict:
    hydra_ledger.log_summary(db_password="logged-LIVE-pw", dsn="mysql://bob:dsn-LIVE-pw@h/x", max_tokens=512)
    hydra_ledger.log_metrics({"loss": 0.5, "api_token": "metric-LIVE-token",
                              "auth": "Bearer metric-LIVE-bearer-0123"}, step=0)
    return {"score": float(cfg.seed), "api_token": "returned-LIVE-token",
            "conn": "redis://:ret/LIVE@h:6379", "header": "Bearer ret-LIVE-bearer-0123456"}


if __name__ == "__main__":
    main()
