"""Every command has help ending with an example and is documented in docs/cli.md;
every relative link of the README and docs/ points at an existing file and heading."""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import first_run

from hydra_ledger.cli import build_parser, main

ROOT = Path(__file__).parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def prose_lines(page: Path) -> list[str]:
    """The lines of a Markdown page outside fenced code blocks."""
    lines, fence = [], None
    for line in page.read_text().splitlines():
        marker = re.match(r"\s*(```|~~~)", line)
        if marker and (fence is None or marker.group(1) == fence):
            fence = None if fence else marker.group(1)
        elif fence is None:
            lines.append(line)
    return lines


def headings(page: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in prose_lines(page) if re.match(r"#{1,6} ", line)]


def documented_headings() -> str:
    return "\n".join(headings(CLI_DOC))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for heading in headings(page):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def relative_links(page: Path) -> list[str]:
    targets = []
    for line in prose_lines(page):
        line = re.sub(r"`[^`]*`", "", line)
        targets += re.findall(r"\]\(([^)\s]+)\)", line)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("name", sorted(commands()))
def test_help_ends_with_an_example_and_is_documented(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: hydra-ledger {name} ")
    lines = text.rstrip().splitlines()
    examples = max(i for i, line in enumerate(lines) if re.match(r"Examples?:", line))
    assert all(line.startswith((f"  hydra-ledger {name} ", "  echo ")) for line in lines[examples + 1:])
    assert examples + 1 < len(lines)
    documented = documented_headings()
    assert f"hydra-ledger {name}" in documented or f"`{name} " in documented, (
        f"document 'hydra-ledger {name}' under a heading of docs/cli.md, with an example of its output")


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


def test_the_docs_pages_exist():
    names = {page.name for page in PAGES}
    assert {"README.md", "cli.md", "recording.md", "loading.md", "architecture.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file_and_heading(page):
    broken = []
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no file {target}")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading of {target.name} has the anchor #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n  " + "\n  ".join(broken)


# Importing pandas takes a third of a second or more: what needs no frame does without it.
FRAME_LIBRARIES = ("pandas", "pyarrow", "numpy")


def modules_imported(*argv: str, cwd: Path) -> set[str]:
    """The modules that ``hydra-ledger ARGV`` imported (a package's submodules with it), from a fresh process."""
    code = ("import sys\nfrom hydra_ledger.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
            "except SystemExit as exc:\n    code = exc.code\nassert not code, code\n"
            "sys.stderr.write(' '.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stderr.split())


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["ls", "--help"], ["status", "--help"]],
                         ids=" ".join)
def test_help_and_version_do_not_import_pandas(argv, tmp_path):
    assert modules_imported(*argv, cwd=tmp_path).isdisjoint(FRAME_LIBRARIES)


def test_show_of_a_job_dir_does_not_import_pandas(make_app, run_app):
    """A job dir is read as it is. (A run id is looked up in the Arrow index: pyarrow imports
    pandas itself as soon as it builds an array or a scalar from Python values.)"""
    app = make_app("ledger_app")
    job = first_run(app, run_app, "hydra/callbacks=ledger")
    imported = modules_imported("show", str(job), cwd=app)
    assert "hydra_ledger" in imported
    assert imported.isdisjoint(FRAME_LIBRARIES)


def test_show_of_a_run_id_in_an_indexed_root_does_not_import_pandas(make_app, run_app):
    """Once indexed, a run id is found in the memory-mapped index with Arrow alone: no Python
    value goes to Arrow, since pyarrow imports pandas to convert one."""
    app = make_app("ledger_app")
    job = first_run(app, run_app, "hydra/callbacks=ledger")
    run_id = json.loads((job / ".ledger" / "run.json").read_text())["run_id"]
    past = time.time() - 60  # beyond the window in which a fresh file is read again at every load
    for path in [app / "outputs", *(app / "outputs").rglob("*")]:
        os.utime(path, (past, past), follow_symlinks=False)
    root = str(app / "outputs")
    assert "pandas" in modules_imported("show", run_id[:6], "--in", root, cwd=app)  # builds the index
    imported = modules_imported("show", run_id[:6], "--in", root, cwd=app)
    assert "hydra_ledger" in imported
    assert "pandas" not in imported
    assert "pyarrow.compute" not in imported  # 50-90 ms: see hydra_ledger.load.kernels


def blas_after(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[str, int]:
    """``OPENBLAS_NUM_THREADS`` as ``hydra-ledger ARGV`` left it (run from its console entry
    point), and the threads of that process once numpy is imported after the command."""
    code = ("import atexit, os, sys\n"
            "def report():\n    import numpy\n"
            "    setting, threads = os.environ.get('OPENBLAS_NUM_THREADS'), len(os.listdir('/proc/self/task'))\n"
            "    sys.stderr.write(f'{setting!r} {threads}')\n"
            "atexit.register(report)\nsys.argv[0] = 'hydra-ledger'\n"
            "from hydra_ledger.cli import console_main\nconsole_main()")
    clean = {k: v for k, v in os.environ.items()  # what OpenBLAS reads, in its order
             if k not in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**clean, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    setting, threads = proc.stderr.split()[-2:]
    return setting, int(threads)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or len(os.sched_getaffinity(0)) < 2,
                    reason="counts the threads of a process in /proc; OpenBLAS starts none on one core")
def test_commands_keep_numpy_to_one_blas_thread_and_leave_a_launched_program_the_users_setting(tmp_path):
    """OpenBLAS starts a thread per core when numpy is imported: ~0.1 s of CPU per command."""
    assert blas_after("--version", cwd=tmp_path) == ("'1'", 1)
    assert blas_after("--version", cwd=tmp_path, env={"OPENBLAS_NUM_THREADS": "2"}) == ("'2'", 2)
    setting, threads = blas_after("rerun", "--help", cwd=tmp_path)  # rerun and resume start the user's program
    assert setting == "None" and threads > 1
