"""Rules about the package's own source that no linter states: only the CLI prints."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [ROOT / "src" / "hydra_ledger", ROOT / "hydra_plugins" / "hydra_ledger"]
# The CLI owns the terminal: data to stdout, diagnostics to stderr. Everything else logs or
# warns, so that a library caller or a Hydra job decides where messages go.
MAY_PRINT = ROOT / "src" / "hydra_ledger" / "cli"
STREAMS = {"stdout", "stderr", "__stdout__", "__stderr__"}


def _writes_directly(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):  # `from sys import stdout` would hide the writes from the checks below
        return node.module == "sys" and bool(STREAMS & {a.name for a in node.names})
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id == "print"
    return (isinstance(func, ast.Attribute) and func.attr in ("write", "writelines")
            and isinstance(func.value, ast.Attribute) and func.value.attr in STREAMS
            and isinstance(func.value.value, ast.Name) and func.value.value.id == "sys")


def direct_output(source: str) -> list[str]:
    """``line: code`` of each print() call and each write to sys.stdout or sys.stderr in ``source``."""
    found = sorted((n for n in ast.walk(ast.parse(source)) if _writes_directly(n)), key=lambda n: n.lineno)
    return [f"{node.lineno}: {ast.get_source_segment(source, node)}" for node in found]


def test_the_check_finds_each_kind_of_direct_output() -> None:
    source = "import sys\nprint('x')\nsys.stderr.write('y')\nsys.__stdout__.writelines([])\nfrom sys import stdout\n"
    assert direct_output(source) == ["2: print('x')", "3: sys.stderr.write('y')", "4: sys.__stdout__.writelines([])",
                                     "5: from sys import stdout"]
    assert direct_output("import sys, logging\nsys.stdout.flush()\nlogging.getLogger(__name__).info('z')\n") == []


@pytest.mark.parametrize(
    "module",
    sorted(p for package in PACKAGES for p in package.rglob("*.py") if MAY_PRINT not in p.parents),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_nothing_below_the_cli_prints(module: Path) -> None:
    assert direct_output(module.read_text(encoding="utf-8")) == []
