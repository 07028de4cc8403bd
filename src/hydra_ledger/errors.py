"""The bases of what hydra-ledger raises and warns: catch ``LedgerError`` to handle all of its errors.

Each error keeps its stdlib base as well (a RecordError is a ValueError, a RerunError a
RuntimeError), so code written against those keeps working.
"""
from __future__ import annotations


class LedgerError(Exception):
    """An error hydra-ledger raises on purpose; its message names the file or run and the fix."""


class LedgerWarning(UserWarning):
    """A warning of hydra-ledger: something was skipped or rebuilt; results are otherwise unaffected."""
