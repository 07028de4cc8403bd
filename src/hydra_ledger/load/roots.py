"""Where runs are looked for when no paths are given: the one answer for every command and ``load_runs()``.

In this order, each that exists, a dir inside another one left out (a run must not load twice):

1. ``outputs`` and ``multirun`` in the current dir (Hydra's default run and sweep dirs);
2. ``$HYDRA_LEDGER_ROOTS`` (paths separated by ``os.pathsep``) if set, else ``roots = [...]`` of
   ``[tool.hydra-ledger]`` in the nearest ``pyproject.toml`` that has that table, looked for from
   the current dir up to the repository's root (relative paths are relative to its dir);
3. the dirs registered by the launches of the project the current dir is in
   (:mod:`hydra_ledger.record.registry`).
"""
from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra_ledger.record import registry
from hydra_ledger.record.schema import LedgerLoadWarning

# Hydra's default output dirs of single runs and of sweeps.
DEFAULT_ROOTS = ("outputs", "multirun")
ENV_ROOTS = "HYDRA_LEDGER_ROOTS"
PYPROJECT = "pyproject.toml"
TOOL_TABLE = "hydra-ledger"


@dataclass
class Found:
    """The roots found, and what was looked at (for the message when there are none)."""

    roots: list[str] = field(default_factory=list)
    configured_by: str | None = None  # "HYDRA_LEDGER_ROOTS" or the pyproject.toml read
    configured_missing: list[str] = field(default_factory=list)
    projects: list[registry.Project] = field(default_factory=list)


def present_default_roots() -> list[str]:
    """Those of :data:`DEFAULT_ROOTS` that exist under the cwd."""
    return [p for p in DEFAULT_ROOTS if os.path.isdir(p)]


def find_roots() -> Found:
    """Every root to load when no paths are given (see the module's docstring), without raising."""
    found = Found()
    configured, found.configured_by = configured_roots(Path.cwd())
    found.configured_missing = [p for p in configured if not os.path.isdir(p)]
    found.projects = registry.projects_around(Path.cwd())
    registered = [p for project in found.projects for p in registry.read_entries(project, _warn_entry)]
    candidates = [*present_default_roots(), *(p for p in configured if os.path.isdir(p)), *registered]
    found.roots = registry.nested_free(candidates)
    return found


def default_roots() -> list[str]:
    """:func:`find_roots`' roots; FileNotFoundError naming the three ways to have some when there are none."""
    found = find_roots()
    if not found.roots:
        raise FileNotFoundError(nothing_found(found, "pass the paths of runs or sweeps to load"))
    return found.roots


def nothing_found(found: Found, fix: str) -> str:
    """Why no runs are found here: each of the three ways to find them, and how to use it."""
    project = (found.projects[0] if found.projects else registry.project_of(Path.cwd())).root
    if found.configured_by is None:
        configured = f"no {ENV_ROOTS} or [tool.{TOOL_TABLE}] roots in a {PYPROJECT}"
    else:
        configured = f"{found.configured_by} names no existing dir ({', '.join(found.configured_missing) or 'none'})"
    return (f"hydra-ledger: no runs found from here: no 'outputs' or 'multirun' directory here, "
            f"no run dirs registered for the project {project} (its launches register them), and {configured}; "
            f"{fix}")


def configured_roots(cwd: Path) -> tuple[list[str], str | None]:
    """``(roots, where they come from)``: ``$HYDRA_LEDGER_ROOTS``, else ``[tool.hydra-ledger] roots``."""
    setting = os.environ.get(ENV_ROOTS)
    if setting and setting.strip():
        return [os.path.expanduser(p) for p in setting.split(os.pathsep) if p.strip()], ENV_ROOTS
    for directory in _up_to_repo_root(cwd):
        file = directory / PYPROJECT
        if not file.is_file():
            continue
        table = _tool_table(file)
        if table is None:
            continue
        roots = table.get("roots")
        if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
            _warn(f"hydra-ledger: [tool.{TOOL_TABLE}] roots in {file} is not a list of paths — ignored; "
                  f'write e.g. roots = ["/data/runs", "../shared/multirun"]')
            return [], str(file)
        return [os.path.normpath(directory / os.path.expanduser(r)) for r in roots], str(file)
    return [], None


def _up_to_repo_root(cwd: Path) -> list[Path]:
    """``cwd`` and the dirs above it, up to its repository's root (or up to ``/`` outside git)."""
    found = registry.git_dirs(cwd)
    dirs = [cwd, *cwd.parents]
    if found is None:
        return dirs
    top = found[0]
    return [d for d in dirs if d == top or top in d.parents] or dirs


def _tool_table(file: Path) -> dict[str, Any] | None:
    """``[tool.hydra-ledger]`` of ``file``; None when it has none (or cannot be read: one warning)."""
    if sys.version_info >= (3, 11):  # imported here: a command given its paths reads no pyproject.toml
        import tomllib
    else:  # the same parser, before it joined the standard library
        import tomli as tomllib
    try:
        with open(file, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        _warn(f"hydra-ledger: cannot read {file}: {exc} — its [tool.{TOOL_TABLE}] roots are ignored; fix the file")
        return None
    tool = data.get("tool")
    table = tool.get(TOOL_TABLE) if isinstance(tool, dict) else None
    return table if isinstance(table, dict) else None


def _warn_entry(file: Path, why: str) -> None:
    _warn(f"hydra-ledger: cannot read the run-dir registry entry {file}: {why} — skipped; delete it "
          "(the app's next launch registers its run dir again)")


def _warn(message: str) -> None:
    warnings.warn(message, LedgerLoadWarning, stacklevel=4)
