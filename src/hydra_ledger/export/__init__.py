"""Exporting recorded runs to other tools: MLflow (a tracking store) and TensorBoard (event files).

``runs.py`` turns records into plain :class:`~hydra_ledger.export.runs.ExportRun` values; each
target module writes them with that tool's own library, imported only when exporting (they are
the ``mlflow`` and ``tensorboard`` extras).
"""
from __future__ import annotations

import importlib
from types import ModuleType

from hydra_ledger.errors import LedgerError


class ExportError(LedgerError):
    """An export that cannot be done: a missing extra, or a destination that refuses the runs."""


def require(module: str, extra: str) -> ModuleType:
    """``import module``, or an ExportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExportError(f"exporting to {extra} needs the {extra} extra ({exc}): "
                          f"pip install 'hydra-ledger[{extra}]'") from None
