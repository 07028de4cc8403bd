"""``hydra-ledger tag``, ``untag`` and ``note``: marks and notes kept beside a run's record.

They go to sidecar files in the run's ``.ledger/`` dir (see ``hydra_ledger.record.sidecars``),
never into ``run.json``, which a running job keeps rewriting.
"""
from __future__ import annotations

import argparse

from hydra_ledger.cli import CommandError
from hydra_ledger.cli._output import printable
from hydra_ledger.cli.show import add_run_argument, resolve
from hydra_ledger.record import sidecars


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tag = subparsers.add_parser(
        "tag",
        help="add tags to a run (the 'tags' column; load_runs(..., tags=[...]) selects by them)",
        description="Add tags to a run. Tags are kept in the run's .ledger/tags.json, appear in the 'tags' "
                    "column, and select runs: 'hydra-ledger ls --tag best', load_runs(..., tags=['best']).",
        epilog="Example:\n  hydra-ledger tag 3f2a9c best paper-table-2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_argument(tag, "run")
    tag.add_argument("tags", nargs="+", metavar="TAG")
    tag.set_defaults(func=run_tag)

    untag = subparsers.add_parser(
        "untag",
        help="remove tags from a run (also tags given at launch)",
        description="Remove tags from a run, including tags given at launch with hydra.callbacks.ledger.tags.",
        epilog="Example:\n  hydra-ledger untag 3f2a9c paper-table-2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_argument(untag, "run")
    untag.add_argument("tags", nargs="+", metavar="TAG")
    untag.set_defaults(func=run_untag)

    note = subparsers.add_parser(
        "note",
        help="add a note to a run (the 'note' column)",
        description="Add a free-text note to a run, kept in its .ledger/notes.jsonl with the time it was "
                    "written. The 'note' column shows every note, one per line.",
        epilog='Example:\n  hydra-ledger note 3f2a9c "diverged after epoch 40; lr too high"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_argument(note, "run")
    note.add_argument("text", nargs="?", help="the note")
    note.add_argument("--clear", action="store_true", help="remove the notes added with this command")
    note.set_defaults(func=run_note)


def _check(tags: list[str]) -> list[str]:
    bad = [t for t in tags if not t.strip() or "," in t]
    if bad:
        raise CommandError(f"invalid tag {bad[0]!r}: tags are non-empty and contain no comma")
    return tags


def run_tag(args: argparse.Namespace) -> int:
    paths, record = resolve(args.run, args.roots)
    sidecars.add_tags(paths, _check(args.tags))
    tags, _ = sidecars.annotate(record, paths)
    print(printable(f"{record.get('run_id')}: tags {', '.join(tags)}"))
    return 0


def run_untag(args: argparse.Namespace) -> int:
    paths, record = resolve(args.run, args.roots)
    sidecars.remove_tags(paths, _check(args.tags))
    tags, _ = sidecars.annotate(record, paths)
    print(printable(f"{record.get('run_id')}: tags {', '.join(tags) or '(none)'}"))
    return 0


def run_note(args: argparse.Namespace) -> int:
    if args.clear == (args.text is not None):
        raise CommandError("note: give either the text of a note or --clear")
    paths, record = resolve(args.run, args.roots)
    if args.clear:
        sidecars.clear_notes(paths)
        print(printable(f"{record.get('run_id')}: notes cleared"))
    else:
        if not args.text.strip():
            raise CommandError("note: the text is empty")
        sidecars.add_note(paths, args.text)
        print(printable(f"{record.get('run_id')}: note added ({paths.notes})"))
    return 0
