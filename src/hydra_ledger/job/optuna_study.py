"""What an Optuna sweep (hydra-optuna-sweeper) optimised, for its sweep record, and each job's trial.

The sweeper asks its study for trials in order and launches them with consecutive job
numbers, so a job's trial number is its job number plus the trials the study held before the
sweep began: none for a study in memory, those of earlier sweeps for a stored study resumed by
``study_name`` and ``storage``. Two sweeps adding trials to one stored study at the same time
make that offset wrong for the later one (the record says ``trial_offset``, so it can be checked).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hydra_ledger.record.redact import redact_url

log = logging.getLogger(__name__)

SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
RESULTS = "optimization_results.yaml"


def is_optuna(hydra_cfg: DictConfig) -> bool:
    return bool(OmegaConf.select(hydra_cfg, "sweeper._target_", default=None) == SWEEPER)


def study_record(hydra_cfg: DictConfig) -> dict[str, Any]:
    """Launching process, before the first trial: the study's name, storage (credentials
    redacted), direction(s), sampler, budget, and ``trial_offset``."""
    sweeper = hydra_cfg.sweeper
    direction = OmegaConf.to_container(sweeper.direction) if OmegaConf.is_config(sweeper.direction) \
        else sweeper.direction
    directions = [str(getattr(d, "name", d)) for d in (direction if isinstance(direction, list) else [direction])]
    storage = OmegaConf.select(sweeper, "storage", default=None)
    name = OmegaConf.select(sweeper, "study_name", default=None)
    sampler = OmegaConf.select(sweeper, "sampler", default=None)
    return {
        "study_name": name,
        "storage": redact_url(str(storage)) if storage is not None else None,
        "directions": directions,
        "sampler": str(sampler._target_).rsplit(".", 1)[-1] if sampler is not None and "_target_" in sampler else None,
        "sampler_seed": OmegaConf.select(sweeper, "sampler.seed", default=None),
        "n_trials": OmegaConf.select(sweeper, "n_trials", default=None),
        "n_jobs": OmegaConf.select(sweeper, "n_jobs", default=None),
        "trial_offset": _trials_before(str(storage) if storage is not None else None, name),
    }


def _trials_before(storage: str | None, name: str | None) -> int:
    """The trials a stored study already holds (0 for a new or in-memory one)."""
    if storage is None or name is None:
        return 0
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).exists():
        return 0  # a new database: opening it would create its tables, under the sweeper's feet
    backend = None
    try:
        import optuna

        backend = optuna.storages.get_storage(storage)
        return len(optuna.load_study(study_name=name, storage=backend).trials)
    except KeyError:  # no such study yet: the sweeper creates it
        return 0
    except Exception as exc:  # noqa: BLE001 - the record is a convenience; the sweep comes first
        log.warning("hydra-ledger: cannot read the Optuna study %r to number its trials: %s", name, exc)
        return 0
    finally:  # close its connections: SQLite locks the file while one is open
        engine = getattr(getattr(backend, "_backend", backend), "engine", None)
        if engine is not None:
            engine.dispose()


def results(sweep_dir: Path) -> dict[str, Any]:
    """The sweeper's ``optimization_results.yaml``: ``best_params`` and ``best_value``, or the
    Pareto ``solutions`` of a multi-objective study; {} when it is not there (a failed sweep)."""
    path = sweep_dir / RESULTS
    if not path.is_file():
        return {}
    loaded = OmegaConf.to_container(OmegaConf.load(path))
    if not isinstance(loaded, dict):
        return {}
    return {key: loaded[key] for key in ("best_params", "best_value", "solutions") if key in loaded}


def trial_number(study: dict[str, Any] | None, job_num: int | None) -> int | None:
    """A job's trial number: its job number plus the study's trials before the sweep (``study``:
    the sweep record's ``optuna``)."""
    if job_num is None or study is None:
        return None
    offset = study.get("trial_offset")
    return job_num + offset if isinstance(offset, int) else None
