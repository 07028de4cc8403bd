"""The self-contained HTML report of runs (``hydra-ledger report``)."""
