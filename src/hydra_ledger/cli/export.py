"""``hydra-ledger export``: runs into MLflow (a tracking store) or TensorBoard (event files).

mlflow and tensorboard are optional extras, imported only when exporting, as the loader (pandas)
is: ``hydra-ledger --help`` and the other commands never pay for them, nor need them installed.
"""
from __future__ import annotations

import argparse
import logging
import sys

from hydra_ledger.cli import DEFAULT_ROOTS_HELP, CommandError
from hydra_ledger.record.redact import redact_url

EXAMPLE = """\
Examples:
  hydra-ledger export --to mlflow --tracking-uri sqlite:///mlflow.db multirun/2024-05-01/12-00-00
  hydra-ledger export --to mlflow --tracking-uri http://localhost:5000 --experiment lr-sweep 3f2a9c 81be07
  hydra-ledger export --to tensorboard tb-logs multirun"""

TARGETS = ("mlflow", "tensorboard")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export runs to MLflow or TensorBoard (config, metrics with steps, summary, tags, status)",
        description="Export runs into another tool, one run there per recorded run: its config as parameters "
                    "(hyperparameters), its metrics with their steps, the summary's values, its status and "
                    "times, git state, host and tags. Exporting the same runs again updates them, never "
                    "duplicates them. MLflow: one experiment per sweep (or --experiment), through MLflow's "
                    "client (pip install 'hydra-ledger[mlflow]'). TensorBoard: LOGDIR/<run>/ event files with "
                    "the HParams plugin's data, so that its HParams tab compares the runs "
                    "(pip install 'hydra-ledger[tensorboard]').",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--to", required=True, choices=TARGETS, help="where to export")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="mlflow: the tracking store, e.g. sqlite:///mlflow.db or http://host:5000 "
                             "(default: MLFLOW_TRACKING_URI)")
    parser.add_argument("--experiment", metavar="NAME",
                        help="mlflow: put new runs in this experiment (default: one named after each run's "
                             "sweep dir, or the job's name for a single run)")
    parser.add_argument("--debug", action="store_true", help="include debug runs (hydra.callbacks.ledger.debug=true)")
    parser.add_argument("--in", dest="roots", action="append", default=[], metavar="PATH",
                        help=f"where to look up run ids (default: {DEFAULT_ROOTS_HELP})")
    parser.add_argument("targets", nargs="*", metavar="[LOGDIR] RUNS",
                        help="tensorboard: the log dir first; then runs, sweeps or roots, or run id prefixes "
                             f"(default: {DEFAULT_ROOTS_HELP})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hydra_ledger.cli._output import printable
    from hydra_ledger.export import ExportError
    from hydra_ledger.export.runs import select
    from hydra_ledger.load.runs import SelectError

    arguments = list(args.targets)
    if args.to == "tensorboard":
        if not arguments:
            raise CommandError("export --to tensorboard: give the log dir to write, e.g. "
                               "'hydra-ledger export --to tensorboard tb-logs multirun'")
        logdir = arguments.pop(0)
    elif args.tracking_uri is None:
        import os

        args.tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not args.tracking_uri:
            raise CommandError("export --to mlflow: give the tracking store with --tracking-uri, e.g. "
                               "--tracking-uri sqlite:///mlflow.db (or set MLFLOW_TRACKING_URI)")
    try:
        runs = select(arguments, args.roots, include_debug=args.debug)
    except SelectError as exc:
        raise CommandError(str(exc)) from None
    if not runs:
        print("hydra-ledger: no runs to export", file=sys.stderr)
        return 0
    actions: list[str] = []
    try:
        if args.to == "mlflow":
            from hydra_ledger.export import require
            from hydra_ledger.export.to_mlflow import export_mlflow

            require("mlflow", "mlflow")
            # MLflow sets its logger to INFO when imported, and then logs each step of creating a
            # tracking database: not ours to show
            logging.getLogger("mlflow").setLevel(logging.WARNING)
            for done in export_mlflow(runs, args.tracking_uri, args.experiment):
                actions.append(done.action)
                print(printable(f"{done.run.run_id}  {done.action}  {done.mlflow_run_id}  {done.experiment}"))
            where = redact_url(args.tracking_uri)
        else:
            from hydra_ledger.export.to_tensorboard import export_tensorboard

            for written in export_tensorboard(runs, logdir):
                actions.append(written.action)
                print(printable(f"{written.run.run_id}  {written.action}  {written.directory}"))
            where = logdir
    except ExportError as exc:
        raise CommandError(str(exc)) from None
    created = actions.count("created")
    print(printable(f"hydra-ledger: exported {len(actions)} run{'s' * (len(actions) != 1)} to {where} "
                    f"({created} created, {len(actions) - created} updated)"), file=sys.stderr)
    return 0
