"""Hyperparameter importance: how much of a metric's variation across a sweep each swept key explains.

Whatever ran the sweep (a grid of the basic launcher, joblib, submitit, or the Optuna sweeper),
its completed runs become the trials of a study in memory, one parameter per swept key
(``choice.<group>`` and ``cfg.<key>`` columns, as :func:`~hydra_ledger.load.swept.swept_keys`
names them), and Optuna's evaluators rank the keys. Needs the ``importance`` extra (optuna and
scikit-learn, whose random forests fANOVA and MDI fit); nothing is imported until asked.
"""
from __future__ import annotations

import importlib.util
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from hydra_ledger.errors import LedgerError
from hydra_ledger.load import _is_na, _value_key
from hydra_ledger.load.swept import swept_keys

log = logging.getLogger(__name__)

Direction = Literal["minimize", "maximize"]
# our names -> Optuna's evaluator classes (PED-ANOVA only in the optuna releases that have it)
EVALUATORS = {
    "fanova": "FanovaImportanceEvaluator",
    "mdi": "MeanDecreaseImpurityImportanceEvaluator",
    "ped-anova": "PedAnovaImportanceEvaluator",
}
_LABELS = {"fanova": "fANOVA", "mdi": "mean decrease impurity", "ped-anova": "PED-ANOVA"}
_NEEDS_SKLEARN = frozenset({"fanova", "mdi"})
_SHOWN = 20  # summary columns named when the metric is not one of them
MIN_RUNS = 3  # a forest fitted on fewer runs ranks nothing
INSTALL = "pip install 'hydra-ledger[importance]'"


class ImportanceError(LedgerError, ValueError):
    """Importance cannot be computed for these runs: the message says why and what would do."""


@dataclass(frozen=True)
class Importance:
    """The importance of each swept key for ``metric``, highest first; ``runs`` of ``total`` runs were used
    (completed, with a finite metric); ``constant``: swept keys left out because they had one value in
    those runs; ``note``: how to read a trivial result (``evaluator`` None: no evaluator was needed)."""

    metric: str
    direction: Direction
    evaluator: str | None
    importances: dict[str, float]
    runs: int
    total: int
    constant: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def label(self) -> str:
        """The evaluator's name for people (empty when none was needed)."""
        return _LABELS.get(self.evaluator, self.evaluator) if self.evaluator else ""

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "evaluator": self.evaluator,
                "runs": self.runs, "total": self.total,
                "importances": [{"key": k, "importance": v} for k, v in self.importances.items()],
                "constant": list(self.constant), "note": self.note}


def available() -> str | None:
    """None when optuna and scikit-learn import; else the message saying what to install."""
    missing = [name for name, module in (("optuna", "optuna"), ("scikit-learn", "sklearn")) if not _importable(module)]
    if not missing:
        return None
    return f"hyperparameter importance needs {' and '.join(missing)}: {INSTALL}"


def _importable(module: str) -> bool:
    try:
        # a module set to None in sys.modules (blocked) raises ValueError here, not ImportError
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _optuna() -> Any:
    """optuna, imported without the warnings of its own imports."""
    with warnings.catch_warnings():
        # optuna 2.10 (the 1.3 line's) defines its database storage with SQLAlchemy 1.4 API that
        # 1.4 deprecates (MovedIn20Warning, a DeprecationWarning, at import): about storage, which
        # a study in memory does not use, and not for the user to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        import optuna
    return optuna


def evaluators() -> list[str]:
    """The evaluators the installed optuna has (``fanova`` and ``mdi`` always, ``ped-anova`` in newer releases)."""
    optuna = _optuna()
    return [name for name, cls in EVALUATORS.items() if hasattr(optuna.importance, cls)]


def metric_column(frame: pd.DataFrame, metric: str) -> str:
    """The metric's column: ``summary.loss`` or ``loss`` for it; unknown raises, naming the summary columns."""
    names = [str(c) for c in frame.columns]
    for candidate in (metric, f"summary.{metric}"):
        if candidate in names:
            return candidate
    summaries = [c for c in names if c.startswith("summary.")]
    if not summaries:
        raise ImportanceError(f"no column {metric!r}: these {len(frame)} runs recorded no summary (return a value "
                              f"from the task function, or call hydra_ledger.log_summary)")
    shown = ", ".join(summaries[:_SHOWN]) + (f" and {len(summaries) - _SHOWN} more" if len(summaries) > _SHOWN else "")
    raise ImportanceError(f"no column {metric!r}; the summary columns: {shown}")


def study_direction(frame: pd.DataFrame, column: str) -> Direction | None:
    """The direction in which the Optuna sweeps of ``frame``'s runs optimised ``column``, as their sweep
    records say: ``summary.value`` (the task's return value) of a study of one objective, or
    ``summary.value.<i>`` of several; None for any other column, a sweep that was not Optuna's, or
    sweeps that disagree."""
    from hydra_ledger.record.paths import SweepPaths
    from hydra_ledger.record.schema import SWEEP_SCHEMA, read_record

    if "sweep" not in frame.columns or not (column == "summary.value" or column.startswith("summary.value.")):
        return None
    index = column.removeprefix("summary.value").lstrip(".")
    found: set[str] = set()
    for sweep in {s for s in frame["sweep"].tolist() if isinstance(s, str) and s}:
        try:
            record = read_record(SweepPaths(sweep).record, SWEEP_SCHEMA)
        except (OSError, ValueError):  # no sweep record, or a broken one (the loader warned of it)
            return None
        directions = (record.get("optuna") or {}).get("directions") or []
        if not index and len(directions) == 1:
            found.add(str(directions[0]).lower())
        elif index.isdigit() and len(directions) > 1 and int(index) < len(directions):
            found.add(str(directions[int(index)]).lower())
        else:
            return None
    direction = found.pop() if len(found) == 1 else None
    return "maximize" if direction == "maximize" else "minimize" if direction == "minimize" else None


def default_evaluator() -> str:
    """fANOVA, Optuna's own default; mean decrease impurity on optuna 2.x, whose fANOVA fails with numpy 1.24
    and later (its trees read a node's value as an array of shape (1, 1) where numpy wants a number;
    optuna 3 reads ``tree.value[:, 0, 0]``)."""
    return "fanova" if _major(_optuna().__version__) >= 3 else "mdi"


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def param_importance(frame: pd.DataFrame, metric: str, *, direction: Direction = "minimize",
                     evaluator: str | None = None, keys: Sequence[str] | None = None, seed: int = 0) -> Importance:
    """How much of ``metric``'s variation across ``frame``'s runs each swept key explains (summing to 1).

    The runs that COMPLETED with a finite ``metric`` become trials of an Optuna study in memory,
    one parameter per key of ``keys`` (default: :func:`swept_keys`) that varies among them: a
    numeric key over its range, any other over its values as categories. ``direction`` matters
    to PED-ANOVA only, which compares the best runs with all. ``seed`` fixes the forests of
    fANOVA and MDI, so that the same runs give the same numbers. ``evaluator``: ``fanova``,
    ``mdi`` or ``ped-anova`` (see :func:`evaluators`); None: :func:`default_evaluator`.

    Examples
    --------
    >>> df = hydra_ledger.load_runs("multirun/2024-05-01/12-00-00")               # doctest: +SKIP
    >>> param_importance(df, "summary.loss").importances                          # doctest: +SKIP
    {'cfg.lr': 0.83, 'choice.model': 0.15, 'cfg.seed': 0.02}
    """
    if evaluator is not None and evaluator not in EVALUATORS:
        raise ImportanceError(f"unknown evaluator {evaluator!r}; valid: {', '.join(EVALUATORS)}")
    column = metric_column(frame, metric)
    candidates = list(swept_keys(frame) if keys is None else keys)
    used = _usable(frame, column)
    total = len(frame)
    if not len(used):
        raise ImportanceError(f"no run has a finite {column} and status COMPLETED (of {total} runs)")
    values = used[column].astype(float).tolist()
    varying = [k for k in candidates if k in used.columns and len({_value_key(_plain(v)) for v in used[k]}) > 1]
    constant = [k for k in candidates if k not in varying]
    counted = f"{len(used)} completed run{'' if len(used) == 1 else 's'} with a finite {column} (of {total})"
    if not varying:
        swept = f" (swept: {', '.join(candidates)})" if candidates else ""
        raise ImportanceError(f"no swept key varies across the {counted}{swept}: nothing to attribute {column} to")
    if len(varying) == 1:
        return Importance(column, direction, None, {varying[0]: 1.0}, len(used), total, constant,
                          note=f"only {varying[0]} varies across the {counted}: its importance is 1 trivially")
    if len(used) < MIN_RUNS:
        raise ImportanceError(f"too few runs: {counted}; importance needs at least {MIN_RUNS}")
    if len(set(values)) == 1:
        raise ImportanceError(f"{column} is {values[0]:g} in all {counted}: no key explains a variation")
    problem = available() if evaluator is None or evaluator in _NEEDS_SKLEARN else (
        None if _importable("optuna") else f"hyperparameter importance needs optuna: {INSTALL}")
    if problem:
        raise ImportanceError(problem)
    chosen = evaluator or default_evaluator()
    scores = _evaluate(used, varying, values, direction, chosen, seed)
    ranked = dict(sorted(scores.items(), key=lambda kv: (-kv[1], varying.index(kv[0]))))
    return Importance(column, direction, chosen, ranked, len(used), total, constant)


def _usable(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The runs that completed with a finite numeric metric."""
    keep = frame[column].map(lambda v: _number(_plain(v)) and math.isfinite(_plain(v))).astype(bool)
    if "status" in frame.columns:
        keep &= frame["status"].astype(object).map(str) == "COMPLETED"
    used: pd.DataFrame = frame.loc[keep]  # pandas-stubs types a boolean mask's rows as Any
    return used


def _plain(value: Any) -> Any:
    """A cell as a plain Python value: missing as None, numpy scalars as Python numbers."""
    if _is_na(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _distribution(values: list[Any]) -> tuple[Any, list[Any]]:
    """The distribution a key's values were drawn from, and the values as its parameters: integers
    and floats over their range (an unset value in some runs makes them categories), anything else
    as categories; values Optuna cannot hold as a category (lists, mappings) as their JSON text."""
    dist = _optuna().distributions
    if all(_number(v) for v in values):
        if all(isinstance(v, int) for v in values):
            cls = getattr(dist, "IntDistribution", None) or dist.IntUniformDistribution  # optuna < 3.0
            return cls(min(values), max(values)), values
        floats = [float(v) for v in values]
        cls = getattr(dist, "FloatDistribution", None) or dist.UniformDistribution  # optuna < 3.0
        return cls(min(floats), max(floats)), floats
    params = [v if v is None or isinstance(v, (bool, int, float, str)) else _value_key(v) for v in values]
    choices = sorted(set(params), key=lambda v: (type(v).__name__, str(v)))
    return dist.CategoricalDistribution(choices), params


def _evaluate(used: pd.DataFrame, keys: list[str], values: list[float], direction: Direction, evaluator: str,
              seed: int) -> dict[str, float]:
    optuna = _optuna()
    distributions, columns = {}, {}
    for key in keys:
        distributions[key], columns[key] = _distribution([_plain(v) for v in used[key].tolist()])
    verbosity = optuna.logging.get_verbosity()
    # create_study logs "A new study created in memory" at INFO through optuna's own handler
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            # create_trial, add_trials (optuna 2.x) and PED-ANOVA are marked experimental: their
            # ExperimentalWarning says nothing about these runs
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(direction=direction)
            study.add_trials([
                optuna.trial.create_trial(params={k: columns[k][i] for k in keys}, distributions=distributions,
                                          value=value, state=optuna.trial.TrialState.COMPLETE)
                for i, value in enumerate(values)
            ])
            cls = getattr(optuna.importance, EVALUATORS[evaluator], None)
            if cls is None:
                raise ImportanceError(f"evaluator {evaluator!r} is not in optuna {optuna.__version__} (installed); "
                                      f"available: {', '.join(evaluators())}")
            instance = cls(seed=seed) if evaluator in _NEEDS_SKLEARN else cls()
            try:
                scores = optuna.importance.get_param_importances(study, evaluator=instance, params=keys)
            except ValueError as exc:  # the fANOVA of optuna 2.x with numpy >= 1.24 (see default_evaluator)
                if evaluator != "fanova" or _major(optuna.__version__) >= 3 or "with a sequence" not in str(exc):
                    raise
                import numpy

                raise ImportanceError(f"the fANOVA of optuna {optuna.__version__} fails with numpy "
                                      f"{numpy.__version__} ({str(exc).rstrip('.')}); the evaluator mdi works "
                                      f"here, and fANOVA with optuna >= 3") from None
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {str(k): float(v) for k, v in scores.items()}
