"""``python -m hydra_ledger <command>``."""
from hydra_ledger.cli import console_main

if __name__ == "__main__":
    console_main()
