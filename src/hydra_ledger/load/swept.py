"""What a set of runs swept: the override keys whose values differ, as the frame's columns.

A config-group sweep (``model=svm,forest dataset=a,b``) changes dozens of config keys: those
of each model and dataset. The views lead with what was swept (``choice.model``,
``choice.dataset``); the keys that vary only because a group choice changed are *folded*
behind it. The command line and the report both take their columns from here.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

from hydra_ledger.load import _value_key, _varies

if TYPE_CHECKING:  # the quick listing of ``ls`` uses the parts that take plain lists, without pandas
    import pandas as pd

_PREFIX_CHARS = "+~"  # `+key=`, `++key=` add, `~key=` deletes: the key is the same


def override_key(override: str) -> str | None:
    """The key an override sets: ``+model/enc=big`` -> ``model/enc``; None without a ``=``
    (``~key`` deletes a key and sets no value)."""
    key, sep, _ = str(override).partition("=")
    key = key.strip().lstrip(_PREFIX_CHARS)
    return key if sep and key else None


def swept_overrides(override_lists: Iterable[Sequence[str]]) -> dict[str, list[str]]:
    """Override keys whose values differ across jobs, each with its values in first-seen order;
    keys in the order they were first given (the command line's)."""
    values: dict[str, dict[str, None]] = {}
    for overrides in override_lists:
        for override in overrides or ():
            key = override_key(override)
            if key is not None:
                values.setdefault(key, {})[str(override).partition("=")[2]] = None
    return {key: list(seen) for key, seen in values.items() if len(seen) > 1}


def swept_keys(frame: pd.DataFrame) -> list[str]:
    """The columns of what ``frame``'s runs swept, in the order the overrides were given.

    Each override key of the runs (their ``overrides`` column) whose column differs across
    the rows: ``choice.<group>`` for a config group (``model=svm``, ``model/encoder=big``),
    ``cfg.<key>`` for a value (``lr=0.01``, ``+db.port=3306``). Config keys that vary only
    because a group choice changed are left out (:func:`folded` names them). Runs of several
    sweeps and single runs give the union of the keys that vary. When no override varies
    (e.g. runs launched with different config files), the ``cfg.`` columns that vary.

    Examples
    --------
    >>> df = hydra_ledger.load_runs("multirun")                            # doctest: +SKIP
    >>> df[["status", *hydra_ledger.swept_keys(df), "summary.accuracy"]]    # doctest: +SKIP
    """
    names = [str(c) for c in frame.columns]
    keys = _override_keys(frame) if "overrides" in names else []
    return swept_columns(keys, names, lambda column: _varies(frame[column]))


def swept_columns(keys: Sequence[str], names: Sequence[str], varies: Callable[[str], bool]) -> list[str]:
    """:func:`swept_keys` of override ``keys`` (see :func:`override_keys`) among the columns
    ``names``; ``varies`` tells whether a column's values differ across the rows."""
    present = set(names)
    swept: dict[str, None] = {}
    for key in keys:
        for column in _columns_of(key, names, present):
            if column not in swept and varies(column):
                swept[column] = None
    if swept:
        return list(swept)
    return [c for c in names if c.startswith("cfg.") and varies(c)]


def varying_config(frame: pd.DataFrame) -> list[str]:
    """The ``cfg.`` and user ``choice.`` columns whose values differ across the rows."""
    return [c for c in map(str, frame.columns) if is_config(c) and _varies(frame[c])]


def folded(frame: pd.DataFrame, shown: Sequence[str]) -> dict[str, list[str]]:
    """The varying config columns not in ``shown``, by what they follow: ``{"choice.model":
    [...]}`` for those with one value per choice of the model, ``{"choice.model and
    choice.dataset": [...]}`` for those set by the two together, ``{"": [...]}`` for the others
    (e.g. an output dir). Only the choices in ``shown`` are asked."""
    return fold(varying_config(frame), shown, [str(c) for c in frame.columns],
                lambda column: [_value_key(v) for v in frame[column].tolist()])


def fold(varying: Sequence[str], shown: Sequence[str], names: Sequence[str],
         keys: Callable[[str], list[Any]]) -> dict[str, list[str]]:
    """:func:`folded` of the ``varying`` config columns among ``names``; ``keys`` gives a column's
    values as keys equal for values alike (see :func:`hydra_ledger.load._value_key`)."""
    present = set(names)
    hidden = [c for c in varying if c not in shown]
    choices = [c for c in shown if c.startswith("choice.") and c in present]
    keyed = {c: keys(c) for c in [*hidden, *choices]}
    joint = list(zip(*(keyed[c] for c in choices))) if len(choices) > 1 else None
    out: dict[str, list[str]] = {}
    for column in hidden:
        behind = next((c for c in choices if _follows(keyed[column], keyed[c])), None)
        if behind is None and joint is not None and _follows(keyed[column], joint):
            behind = " and ".join(choices)
        out.setdefault(behind or "", []).append(column)
    if "" in out:  # the unexplained last
        out[""] = out.pop("")
    return out


def _follows(values: Sequence[Any], by: Sequence[Any]) -> bool:
    """Whether ``values`` has one value per value of ``by``."""
    seen: dict[Any, Any] = {}
    return all(seen.setdefault(b, v) == v for v, b in zip(values, by))


def is_config(name: str) -> bool:
    """A column of the user's config: ``cfg.``, or a choice of a group not Hydra's own."""
    return name.startswith("cfg.") or (name.startswith("choice.") and not name.startswith("choice.hydra/"))


def _override_keys(frame: pd.DataFrame) -> list[str]:
    """Every override key of the rows, first-seen in start order (a stable column order
    whatever the rows' order)."""
    overrides = frame["overrides"].tolist()
    order: Iterable[int] = range(len(overrides))
    if "started_at" in frame.columns:
        started = frame["started_at"].reset_index(drop=True)
        order = started.sort_values(kind="stable", na_position="last").index.tolist()
    return override_keys(overrides[i] for i in order)


def override_keys(rows: Iterable[Any]) -> list[str]:
    """Every key the override lists ``rows`` (in start order) set, first-seen; Hydra's own left out."""
    flat = list(chain.from_iterable(row for row in rows if isinstance(row, (list, tuple))))
    try:  # overrides repeat across rows: each distinct one, in first-seen order, parsed once
        distinct: Iterable[Any] = dict.fromkeys(flat)
    except TypeError:  # an unhashable override (a damaged record): each one in turn
        distinct = flat
    keys: dict[str, None] = {}
    for override in distinct:
        key = override_key(override)
        if key is not None and not key.startswith(("hydra.", "hydra/")):
            keys[key] = None
    return list(keys)


def _columns_of(key: str, names: Sequence[str], present: set[str]) -> list[str]:
    """The column an override key sets: its group choice, else its config value (a mapping
    given whole, ``key={a: 1}``, sets the columns below it)."""
    for choice in (f"choice.{key}", f"choice.{key.partition('@')[0]}"):
        if choice in present:
            return [choice]
    if "/" in key or "@" in key:  # a group whose choice was not recorded
        return []
    if f"cfg.{key}" in present:
        return [f"cfg.{key}"]
    below = f"cfg.{key}."
    return [c for c in names if c.startswith(below)]
