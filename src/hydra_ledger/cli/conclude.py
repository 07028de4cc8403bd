"""``hydra-ledger conclude``: add a timestamped conclusion to a sweep or run (appended, never rewritten)."""
from __future__ import annotations

import argparse
import sys

from hydra_ledger.cli import DEFAULT_ROOTS_HELP, CommandError
from hydra_ledger.cli._output import printable

EXAMPLE = """\
Examples:
  hydra-ledger conclude multirun/2024-05-01/12-00-00 "ABC helps XYZ only with warm-up"
  hydra-ledger conclude e3f2a9c "lr=0.1 diverges; see [e81be07]"
  echo "long text" | hydra-ledger conclude outputs/latest -"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "conclude",
        help="add a conclusion to a sweep or run (shown by 'hydra-ledger log'; marks it DONE)",
        description="Append a timestamped conclusion to the sweep's or run's .ledger/conclusions.jsonl. "
                    "Conclusions are only ever appended: adding one never changes earlier ones.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", metavar="SWEEP_OR_RUN",
                        help="a sweep dir, a job dir, or an id (prefix) as 'hydra-ledger log' shows it: e3f2a9c")
    parser.add_argument("text", help="the conclusion; '-' reads it from standard input")
    parser.add_argument("--in", dest="roots", action="append", default=[], metavar="PATH",
                        help=f"where to look up ids (default: {DEFAULT_ROOTS_HELP})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hydra_ledger.load import journal
    from hydra_ledger.record.schema import RecordError

    text = sys.stdin.read() if args.text == "-" else args.text
    text = text.strip()
    if not text:
        raise CommandError("conclude: the text is empty")
    try:
        kind, ref, file = journal.resolve_target(args.target, args.roots)
    except (journal.TargetError, RecordError) as exc:
        raise CommandError(str(exc).removeprefix("hydra-ledger: ")) from None
    try:
        journal.add_conclusion(file, text)
    except OSError as exc:
        raise CommandError(f"cannot append to {file}: {exc.strerror or exc}; check its permissions") from None
    print(printable(f"{kind} {ref}: conclusion added ({file})"))
    return 0
