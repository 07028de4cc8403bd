"""The ``hydra-ledger`` command line. Only this layer prints.

Each command lives in its own module of this package and defines
``register(subparsers) -> None``, which adds its parser and sets ``func(args) -> int``.
Modules are discovered by name, so adding a command touches no other file.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from hydra_ledger.errors import LedgerError

USAGE_ERROR = 2
# Where the commands look for runs when given no paths (hydra_ledger.load.roots).
DEFAULT_ROOTS_HELP = "outputs and multirun here, HYDRA_LEDGER_ROOTS or [tool.hydra-ledger] roots, registered run dirs"


class CommandError(LedgerError):
    """A user-facing failure: printed as ``hydra-ledger: <message>`` on stderr, exit 1."""


class _PrintableFormatter(logging.Formatter):
    """Warnings name paths and quote recorded values: their control characters escaped."""

    def format(self, record: logging.LogRecord) -> str:
        from hydra_ledger.cli._output import printable_lines

        return printable_lines(super().format(record))


def _error(message: str) -> None:
    from hydra_ledger.cli._output import printable_lines

    print(printable_lines(message), file=sys.stderr)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Measures command names at the indent they are printed at: argparse counts them 2 columns
    short, and a name of 9 or more characters (``importance``) had its help pushed to a line of its own."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if action.help is not argparse.SUPPRESS:
            for sub in getattr(action, "_get_subactions", list)():
                self._action_max_length = max(self._action_max_length, len(self._format_action_invocation(sub))
                                              + self._current_indent + self._indent_increment)


def command_names() -> list[str]:
    """The commands, one module each, found by name without importing any."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of all commands, or of the command ``only`` alone: a command's run imports that
    command's module and no other (``--help`` imports them all, each one cheap to import)."""
    parser = argparse.ArgumentParser(
        prog="hydra-ledger",
        description="List, show, compare and reproduce recorded Hydra runs. No server: reads the .ledger/ records.",
        epilog="Example: hydra-ledger ls multirun --where \"status == 'COMPLETED'\"",
        formatter_class=_Formatter,
    )
    from hydra_ledger._version import __version__

    parser.add_argument("--version", action="version", version=f"hydra-ledger {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_names():
        if only is None or name == only:
            importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code (0 ok, 1 error, 2 usage)."""
    arguments = _glued(list(sys.argv[1:] if argv is None else argv))
    command = _command_name(arguments)
    parser = build_parser(command if command in command_names() else None)
    args = parser.parse_args(arguments)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return USAGE_ERROR
    handler = logging.StreamHandler()
    handler.setFormatter(_PrintableFormatter("%(message)s"))  # messages name hydra-ledger
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        message = str(exc)
        _error(message if message.startswith("hydra-ledger") else f"hydra-ledger: {message}")
        return 1
    except BrokenPipeError:  # `hydra-ledger ls | head`
        return 0
    except OSError as exc:  # FileNotFoundError, PermissionError, a full disk ...
        message = str(exc)
        if not message.startswith("hydra-ledger"):
            where = f" {exc.filename}" if exc.filename else ""
            message = f"hydra-ledger: {exc.strerror or exc}:{where} (check the path and its permissions)"
        _error(message)
        return 1
    except KeyboardInterrupt:
        return 130


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors printed as one line: a query's only once the query module is in (it alone raises
    them, and it imports pandas, which a command that makes no frame does without)."""
    from hydra_ledger.record.schema import RecordError

    where = sys.modules.get("hydra_ledger.load.where")
    return (CommandError, RecordError, *((where.QueryError,) if where is not None else ()))


# Options whose value may start with '-' (``--sort -summary.loss``: descending), which argparse
# would otherwise take for an option of its own and refuse.
_NEGATABLE = frozenset({"--sort", "-s"})


def _glued(argv: list[str]) -> list[str]:
    """``--sort -COLUMN`` as ``--sort=-COLUMN``, the one spelling argparse takes for such a value."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _NEGATABLE and i + 1 < len(argv) and argv[i + 1].startswith("-") and len(argv[i + 1]) > 1 \
                and not argv[i + 1].startswith("--"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        if argv[i] == "--":  # what follows is not ours to read (resume's overrides)
            out.extend(argv[i:])
            break
        out.append(argv[i])
        i += 1
    return out


def _command_name(arguments: Sequence[str]) -> str | None:
    """The command typed: the first argument that is not an option (the top level has no valued options)."""
    return next((a for a in arguments if not a.startswith("-")), None)


# Commands that start the user's own program: it gets the user's environment, unchanged.
_LAUNCHERS = frozenset({"rerun", "resume"})


def _one_blas_thread(arguments: Sequence[str]) -> None:
    """Have numpy's OpenBLAS start no thread pool: importing it starts a thread per core, which
    costs a command about 0.1 s of CPU here (a third of ``ls``'s) and no command does linear
    algebra. A value the user set stands; the commands in ``_LAUNCHERS`` are left alone."""
    if _command_name(arguments) not in _LAUNCHERS:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def console_main() -> None:
    """``hydra-ledger`` and ``python -m hydra_ledger``: a process of its own, whose environment this may set."""
    _one_blas_thread(sys.argv[1:])
    sys.exit(main())
