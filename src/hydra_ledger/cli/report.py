"""``hydra-ledger report``: one self-contained HTML file of runs that opens offline from disk."""
from __future__ import annotations

import argparse
import sys
import time

from hydra_ledger.cli import DEFAULT_ROOTS_HELP
from hydra_ledger.cli._output import printable, progress
from hydra_ledger.cli._runs import load_frame

EXAMPLE = """\
Examples:
  hydra-ledger report multirun -o report.html
  hydra-ledger report --where "status == 'COMPLETED'" --title "lr sweep, May" -o sweep.html"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML report (table, parallel coordinates, plots, curves); no server",
        description="Write one HTML file with every script and all data inlined, which opens offline from disk: "
                    "a sortable, filterable table of runs, parallel coordinates of the swept keys against a "
                    "metric, metric-versus-key plots with mean ± std across seeds, training curves from "
                    "log_metrics, and each run's details on click.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", help=f"runs, sweeps or roots (default: {DEFAULT_ROOTS_HELP})")
    parser.add_argument("--output", "-o", default="report.html", help="the HTML file to write (default: report.html)")
    parser.add_argument("--where", "-w", metavar="EXPR", help="only runs where this expression holds (as in ls)")
    parser.add_argument("--tag", "-t", action="append", default=[], metavar="TAG", help="only runs with this tag")
    parser.add_argument("--debug", action="store_true", help="include debug runs (hydra.callbacks.ledger.debug=true)")
    parser.add_argument("--title", default="hydra-ledger report", help="the page title")
    parser.add_argument("--no-curves", action="store_true", help="leave out per-step metrics (a smaller file)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hydra_ledger.load.where import apply_where
    from hydra_ledger.report.build import build_report

    started = time.monotonic()
    frame = load_frame(args.paths, include_debug=args.debug, tags=args.tag, show_progress=True)
    if args.where:
        frame = apply_where(frame, args.where)
    path = build_report(
        frame, args.output, title=args.title, curves=not args.no_curves,
        progress=lambda rows: progress(rows, "reading metrics", enabled=True),
    )
    size = path.stat().st_size
    print(printable(f"hydra-ledger: wrote {path} ({len(frame)} runs, {size / 1e6:.1f} MB) in "
                    f"{time.monotonic() - started:.1f}s"), file=sys.stderr)
    return 0
