"""``hydra-ledger log``: the experiment log, a chronological journal of sweeps and runs."""
from __future__ import annotations

import argparse
import sys

from hydra_ledger.cli import DEFAULT_ROOTS_HELP, CommandError
from hydra_ledger.cli._output import printable_lines

EXAMPLE = """\
Examples:
  hydra-ledger log --best summary.val_loss:min
  hydra-ledger log multirun --commit main --format org >> notebook.org
  hydra-ledger log --commit 3f2a9c1 --format markdown"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "log",
        help="the experiment log: sweeps and runs in time order, with notes, commits, results and conclusions",
        description="Print a journal of sweeps and runs, oldest first: when, the note, the commit (short sha, "
                    "subject, dirty or clean), the swept keys, jobs per status, the best value of a summary "
                    "key, and conclusions ('hydra-ledger conclude'). An entry is DONE once concluded and "
                    "nothing of it is running, TODO otherwise. Entries are named [e<id>].",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", help=f"runs, sweeps or roots (default: {DEFAULT_ROOTS_HELP})")
    parser.add_argument("--format", "-f", choices=["text", "markdown", "org"], default="text",
                        help="text (default), markdown, or org (Org-mode: TODO/DONE, property drawers with ids)")
    parser.add_argument("--commit", metavar="REV",
                        help="only entries run at this commit (sha or prefix), or at any commit reachable "
                             "from this branch or tag, or in this range (v1..main)")
    parser.add_argument("--repo", metavar="DIR", help="the git repository for --commit (default: here, then "
                                                     "the repositories the runs recorded)")
    parser.add_argument("--best", metavar="KEY[:min|max]",
                        help="show each entry's best value of this summary key, e.g. summary.val_loss:min "
                             "(default mode: min)")
    parser.add_argument("--debug", action="store_true", help="include debug runs (hydra.callbacks.ledger.debug=true)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hydra_ledger.load import journal
    from hydra_ledger.load.roots import default_roots

    try:
        best = journal.parse_best(args.best)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    entries = journal.collect(args.paths or default_roots(), include_debug=args.debug)
    if args.commit:
        entries = journal.select_commit(entries, args.commit, args.repo)
    if not entries:
        print("hydra-ledger: no sweeps or runs match", file=sys.stderr)
        return 0
    # notes, tags, overrides, conclusions and paths are recorded data: their control characters escaped
    sys.stdout.write(printable_lines(journal.render(entries, args.format, best)))
    return 0
