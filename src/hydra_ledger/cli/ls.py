"""``hydra-ledger ls``: a table of runs (placeholder until the full listing lands)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ls",
        help="list runs: status, varying config keys, summary",
        epilog="Example: hydra-ledger ls multirun",
    )
    parser.add_argument("paths", nargs="*", help="runs, sweeps or roots (default: outputs and multirun)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hydra_ledger.load import load_runs, only_changed

    frame = load_runs(*args.paths)
    cfg = [c for c in only_changed(frame).columns if c.startswith("cfg.")]
    summary = [c for c in frame.columns if c.startswith("summary.")]
    shown = frame[["run_id", "status", *cfg, *summary]].iloc[::-1]
    print(shown.to_string(index=False))
    return 0
