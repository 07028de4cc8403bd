"""Every command has help ending with an example and is documented in the README."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from hydra_ledger.cli import build_parser, main

README = Path(__file__).parent.parent / "README.md"


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def documented_headings() -> str:
    return "\n".join(line for line in README.read_text().splitlines() if line.startswith("#"))


@pytest.mark.parametrize("name", sorted(commands()))
def test_help_ends_with_an_example_and_is_documented(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: hydra-ledger {name} ")
    lines = text.rstrip().splitlines()
    examples = max(i for i, line in enumerate(lines) if re.match(r"Examples?:", line))
    assert all(line.startswith(f"  hydra-ledger {name} ") or line.startswith("  echo ") for line in lines[examples + 1:])
    assert examples + 1 < len(lines)
    headings = documented_headings()
    assert f"hydra-ledger {name}" in headings or f"`{name} " in headings, (
        f"document 'hydra-ledger {name}' under a heading of README.md, with an example of its output")


def test_every_listed_command_has_a_one_line_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, sub in commands().items():
        assert re.search(rf"^    {re.escape(name)} +\S", out, re.M), name
        assert sub.description


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["ls", "--format", "yaml"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'yaml'" in capsys.readouterr().err
    assert main([]) == 2
