"""An app for hostile CLI inputs: config values full of terminal control sequences, and a
sweep whose launching process can be stopped (then SIGKILLed by the test) between two jobs.

HOSTILE_STOP_AT_JOB=2 makes the ``stopper`` callback, which runs before the ledger's
``on_job_start``, touch ``$HOSTILE_MARKER`` and sleep at the start of job 2: jobs 0 and 1
have completed, jobs 2 and up never get a record.
"""
import hydra
from omegaconf import DictConfig

import hydra_ledger

try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": [*hydra_ledger.EXECUTION_WHITELIST, "stopper.Stopper"]}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}


@hydra.main(config_path=".", config_name="config", **MAIN_KWARGS)
def main(cfg: DictConfig) -> dict:
    hydra_ledger.log_summary(score=float(cfg.seed))
    if cfg.fail:
        raise ValueError(cfg.evil)
    return {"score": cfg.seed}


if __name__ == "__main__":
    main()
