"""Run at the start of every app process the tests start (``conftest.app_env`` puts this
directory on PYTHONPATH): hydra-ledger's own warnings (LedgerWarning and its subclasses)
become errors there, as ``filterwarnings = error`` makes them in the tests' own process.

``PYTHONWARNINGS=error::hydra_ledger.errors.LedgerWarning`` cannot do this: Python parses
-W options before sys.path is set up, so it cannot import the category and ignores the
option ("Invalid -W option ignored: invalid module name").
"""
import warnings

from hydra_ledger.errors import LedgerWarning

warnings.filterwarnings("error", category=LedgerWarning)
