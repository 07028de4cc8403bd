"""The run dirs of a project, registered at each launch, so that ``hydra-ledger ls`` finds them from anywhere in it.

A project is the git work tree holding the launch dir (outside git: the app script's work tree,
else the launch dir itself). Its registry is a directory of small JSON files, one per registered
dir, named by a hash of the dir's path:

- in git: ``<git common dir>/hydra-ledger/roots/``. The common dir is the one every worktree
  of the repository shares (a rerun runs in a temporary worktree and registers there too); it
  is never committed, and is deleted with the clone.
- outside git: ``$XDG_CACHE_HOME/hydra-ledger/projects/<hash of the dir>/roots/`` (default
  ``~/.cache``).

Registering creates one file (written to a temp file, then ``os.replace``): launches that
register at the same time each write their own file, so none loses another's entry, and no
lock is needed (NFS has none to rely on). Two launches registering the same dir replace the same
file, and either version will do. Only the launching process registers, once per run or sweep,
not each job.

What is registered is the dir that holds the runs, not each run: for ``hydra.run.dir`` =
``/data/runs/${now:%Y-%m-%d}/${now:%H-%M-%S}``, the run dir minus its trailing components made
of ``${now:...}`` (``/data/runs``). Every later run there is then already covered, the registry
stays a handful of entries, and a load walks each root once with one index file per root.
When the template has no such time part (``hydra.run.dir=/data/exp1``, or a last component
``${hydra.job.override_dirname}``), or when that parent would be the launch dir, an ancestor
of it, the home dir or the temp dir (a walk of the whole repository or home at every load),
the run or sweep dir itself is registered. A dir below a registered one is not registered
again; registering a dir removes the entries below it.

A dir inside the work tree is stored relative to it (``outputs``), any other one absolute: runs
inside the repository move with it when it is copied or moved, and each worktree finds its own.

Entries whose dir no longer exists are removed when the registry is read or written (a relative
one only by the work tree that registered it). A dir that is only missing for a while (an
unmounted disk) is registered again by the next launch that writes there; runs outside the
registered dirs stay loadable by path.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from hydra_ledger.record.files import MAX_SIDECAR_BYTES, read_regular_file, write_atomic
from hydra_ledger.record.paths import is_within

REGISTRY_DIR = "hydra-ledger"
ROOTS_DIR = "roots"
ENTRY_SCHEMA = "hydra-ledger/root"

# ${now:FORMAT}, the one interpolation whose value changes from one launch to the next by design.
_NOW = re.compile(r"\$\{now:([^}]*)\}")


@dataclass(frozen=True)
class Project:
    """A project's root (the git work tree, or the launch dir) and the dir of its registry entries."""

    root: Path
    registry: Path
    in_git: bool

    def entry_file(self, path: str) -> Path:
        return self.registry / f"{hashlib.sha256(path.encode()).hexdigest()[:16]}.json"


def git_dirs(start: str | os.PathLike[str]) -> tuple[Path, Path] | None:
    """``(work tree root, common git dir)`` of the repository holding ``start``, read from the
    files git keeps (no git process): ``.git`` is the git dir, or a file ``gitdir: <dir>`` (a
    worktree or a submodule) whose dir may name the shared dir in ``commondir``."""
    here = Path(os.path.abspath(start))
    for candidate in (here, *here.parents):
        dot_git = candidate / ".git"
        if dot_git.is_dir():
            return candidate, dot_git
        if dot_git.is_file():
            try:
                text = dot_git.read_text(errors="replace").strip()
            except OSError:
                return None
            if not text.startswith("gitdir:"):
                return None
            git_dir = Path(candidate, text.removeprefix("gitdir:").strip())
            try:
                common = (git_dir / "commondir").read_text().strip()
            except OSError:  # a submodule or an ordinary gitdir link: its own repository
                return candidate, Path(os.path.normpath(git_dir))
            return candidate, Path(os.path.normpath(git_dir / common))
    return None


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / REGISTRY_DIR


def _cache_project(directory: Path) -> Project:
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    return Project(directory, user_cache_dir() / "projects" / digest / ROOTS_DIR, False)


def project_of(start: str | os.PathLike[str]) -> Project:
    """The project ``start`` belongs to: its git work tree, else ``start`` itself."""
    real = Path(os.path.realpath(start))
    found = git_dirs(real)
    if found is not None:
        root, common = found
        return Project(root, common / REGISTRY_DIR / ROOTS_DIR, True)
    return _cache_project(real)


def projects_around(start: str | os.PathLike[str]) -> list[Project]:
    """The projects whose runs a load from ``start`` shows: its git repository's; outside git,
    those of ``start`` and of every dir above it that has a registry (launched from there)."""
    real = Path(os.path.realpath(start))
    if git_dirs(real) is not None:
        return [project_of(real)]
    return [p for p in map(_cache_project, (real, *real.parents)) if p.registry.is_dir()]


# -- which dir to register -------------------------------------------------------------------------
def runs_root(run_dir: str | os.PathLike[str], template: str | None,
              launch_cwd: str | os.PathLike[str]) -> Path | None:
    """The dir to register for a run (or sweep) dir ``run_dir`` made from the unresolved
    ``template`` (``hydra.run.dir``); None when there is nothing worth registering (the run dir
    is the launch dir or above it). See the module's docstring for the rule."""
    run = Path(os.path.abspath(os.path.join(launch_cwd, run_dir)))
    if _too_wide(run, launch_cwd):
        return None
    root = _time_parent(run, template)
    if root is None or _too_wide(root, launch_cwd):
        return run
    return root


def _time_parent(run: Path, template: str | None) -> Path | None:
    """``run`` minus the components its template's trailing ``${now:...}`` parts resolved to."""
    if not template:
        return None
    parts = _components(template.rstrip("/"))
    tail: list[str] = []
    while len(tail) < len(parts) - 1:
        part = parts[-1 - len(tail)]
        if not _NOW.search(part) or "${" in _NOW.sub("", part):
            break
        tail.insert(0, part)
    if not tail:
        return None
    # what the tail resolves to now has as many components as it had then: count them
    rendered = _NOW.sub(lambda m: time.strftime(m.group(1)), "/".join(tail))
    count = len([p for p in rendered.split("/") if p])
    if count == 0 or count >= len(run.parts) - 1:
        return None
    return Path(*run.parts[:-count])


def _components(template: str) -> list[str]:
    """``template`` split at the ``/`` outside interpolations (``${now:%Y/%m}`` stays whole)."""
    parts, current, depth = [], "", 0
    for i, char in enumerate(template):
        if char == "{" and template[i - 1:i] == "$":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        if char == "/" and not depth:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _too_wide(path: Path, launch_cwd: str | os.PathLike[str]) -> bool:
    """Whether walking ``path`` would walk the launch dir, the home dir or the temp dir (or all of /)."""
    import tempfile  # here only: the loader imports this module and never asks

    real = os.path.realpath(path)
    for place in (launch_cwd, os.path.expanduser("~"), tempfile.gettempdir()):
        other = os.path.realpath(place)
        if is_within(other, real):
            return True
    return real == os.path.dirname(real)  # the file system's root


# -- reading and writing -----------------------------------------------------------------------------
def read_entries(project: Project, problem: Callable[[Path, str], None] | None = None,
                 prune: bool = True) -> list[str]:
    """The registered dirs of ``project`` that exist, oldest first; entries of dirs that are gone
    are removed (``prune``). ``problem(file, why)`` is told of each unreadable entry, skipped."""
    try:
        files = sorted(e.path for e in os.scandir(project.registry) if e.name.endswith(".json"))
    except FileNotFoundError:
        return []
    except OSError as exc:
        if problem is not None:
            problem(project.registry, f"cannot list it: {exc.strerror or exc}")
        return []
    found: list[tuple[str, str]] = []
    for name in files:
        file = Path(name)
        try:
            data = json.loads(read_regular_file(file, MAX_SIDECAR_BYTES)[1])
            path, registered = data["path"], data.get("registered_at", "")
            if data.get("schema") != ENTRY_SCHEMA or not isinstance(path, str) or not path:
                raise ValueError("not a registry entry")
        except FileNotFoundError:  # removed meanwhile by another reader's pruning
            continue
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            if problem is not None:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
                problem(file, why)
            continue
        # a dir inside the work tree is kept relative to it: it moves with a copied or moved
        # repository, and each worktree finds its own; only the one that registered it prunes it
        full = path if os.path.isabs(path) else os.path.join(project.root, path)
        if os.path.isdir(full):
            found.append((str(registered), full))
        elif prune and (os.path.isabs(path) or data.get("project") == str(project.root)):
            _remove(file)
    return [path for _, path in sorted(found)]


def register(project: Project, directory: str | os.PathLike[str]) -> Path | None:
    """Register ``directory`` (absolute) for ``project``; returns the entry written, None when a
    registered dir already covers it. Raises OSError when the registry cannot be written."""
    path = os.path.abspath(directory)
    real = os.path.realpath(path)
    entries = read_entries(project)
    if any(is_within(real, os.path.realpath(e)) for e in entries):
        return None
    root = os.path.realpath(project.root)
    stored = Path(os.path.relpath(real, root)).as_posix() if is_within(real, root) and real != root else path
    file = project.entry_file(stored)
    data = {"schema": ENTRY_SCHEMA, "path": stored, "project": str(project.root),
            "registered_at": datetime.now(timezone.utc).isoformat(timespec="microseconds")}
    write_atomic(file, json.dumps(data, indent=1).encode() + b"\n")
    for inner in entries:  # now covered by this one: one root, one walk, one index
        inner_real = os.path.realpath(inner)
        if is_within(inner_real, real):
            _remove(project.entry_file(inner))
            if is_within(inner_real, root):
                _remove(project.entry_file(Path(os.path.relpath(inner_real, root)).as_posix()))
    return file


def _remove(file: Path) -> None:
    try:
        os.unlink(file)
    except OSError:  # gone already, or a read-only registry: the entry is skipped all the same
        pass


def nested_free(paths: Iterable[str]) -> list[str]:
    """``paths`` without those inside (or equal to) another one, in their order: a run must not load twice."""
    kept: list[tuple[str, str]] = []
    for path in paths:
        real = os.path.realpath(path)
        if any(is_within(real, other) for _, other in kept):
            continue
        kept = [(p, r) for p, r in kept if not is_within(r, real)]
        kept.append((path, real))
    return [p for p, _ in kept]
