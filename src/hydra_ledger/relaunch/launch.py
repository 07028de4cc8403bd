"""Launching a recorded app again: where its code comes from, and how it starts.

Shared by ``reproduce`` (rerun one job) and ``resume_sweep`` (relaunch a sweep's jobs). The
code is either the recorded one (the recorded commit checked out into a temporary git
worktree, the recorded patch applied, the saved untracked files restored) or the current
working tree. The entry point (a script, or ``-m module``) and the launch dir are mapped
relative to the repository root so that they are found in either.

Everything printed or logged goes through a :class:`~hydra_ledger.record.redact.Redactor`: the
overrides read back from ``.hydra/`` hold real secret values, which only the launched
command may see.
"""
from __future__ import annotations

import contextlib
import logging
import mmap
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hydra_ledger import EXECUTION_WHITELIST
from hydra_ledger.errors import LedgerError
from hydra_ledger.job.untracked import object_path
from hydra_ledger.record.paths import RunPaths, SweepPaths
from hydra_ledger.record.redact import Redactor
from hydra_ledger.relaunch.worktree import CodeSnapshot, checked_out

log = logging.getLogger(__name__)

Code = Literal["recorded", "current"]

LEDGER_TARGETS = EXECUTION_WHITELIST  # the ledger's targets: as the explicit node and the plugin's node name it


class RerunError(LedgerError, RuntimeError):
    """A rerun or resume that cannot go ahead; the message says why and what to do."""


# -- reading what Hydra saved ----------------------------------------------------------------
def read_yaml(path: Path, *, required: bool = True) -> Any:
    """``path`` parsed; an unreadable file raises RerunError naming it, or is None when not ``required``."""
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        if not required:
            return None
        raise RerunError(f"cannot read {path}: {exc}") from None


def hydra_dir(job_dir: Path) -> Path | None:
    """Hydra's ``.hydra`` dir of a job (or a renamed ``hydra.output_subdir``), None when absent."""
    default = RunPaths(job_dir).hydra_dir
    if (default / "hydra.yaml").is_file():
        return default
    if not job_dir.is_dir():
        return None
    for child in sorted(job_dir.iterdir()):
        if child.is_dir() and (child / "hydra.yaml").is_file() and (child / "overrides.yaml").is_file():
            return child
    return None


def redactor_for(hydra_files: Sequence[Path]) -> Redactor:
    """A redactor with the ledger's ``redact_keys`` as recorded in the first of ``hydra_files``
    (``.hydra/hydra.yaml``, ``multirun.yaml``) that names them, else the default keys."""
    for path in hydra_files:
        value = read_yaml(path, required=False) if path.is_file() else None
        callbacks = ((value or {}).get("hydra") or {}).get("callbacks") if isinstance(value, dict) else None
        for callback in (callbacks or {}).values() if isinstance(callbacks, dict) else ():
            keys = callback.get("redact_keys") if isinstance(callback, dict) else None
            if callback.get("_target_") in LEDGER_TARGETS and isinstance(keys, list):
                return Redactor(str(k) for k in keys)
    from hydra_plugins.hydra_ledger import DEFAULT_REDACT_KEYS

    return Redactor(DEFAULT_REDACT_KEYS)


# -- overrides -------------------------------------------------------------------------------
def without(overrides: Sequence[str], keys: Sequence[str]) -> list[str]:
    """``overrides`` minus those setting one of ``keys`` or a key below one (``hydra.launcher.x``)."""
    kept = []
    for text in overrides:
        key = text.split("=", 1)[0].lstrip("+~")
        if not any(key == k or key.startswith(k + ".") for k in keys):
            kept.append(text)
    return kept


def quote_value(text: str) -> str:
    """An override value Hydra's grammar reads back verbatim (paths with spaces, '=', quotes...)."""
    if all(c.isalnum() or c in "/._-+@" for c in text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- the code --------------------------------------------------------------------------------
@dataclass
class CodeSource:
    """Where the app's code is (recorded snapshot or current tree) and how to start it there."""

    code: Code
    python: str
    entry: list[str]  # ["app.py"] relative to the code root, or ["-m", "pkg.app"]
    cwd: Path  # relative to the code root when ``relative_cwd``
    relative_cwd: bool
    snapshot: CodeSnapshot | None = None
    current_root: Path | None = None
    # Why the recorded python or entry point must not run (a record is data anyone who can write
    # the output dir may have edited): checked before anything runs, shown by --dry-run.
    problems: list[str] = field(default_factory=list)
    record_path: Path | None = None

    def refuse_if_unsafe(self, root: Path | None = None) -> None:
        """Raise RerunError when the recorded interpreter or entry point is not one to run;
        with ``root`` (the checked-out code), the script must be a file inside it."""
        problems = list(self.problems)
        if root is not None and self.entry[0] != "-m":
            script = root / self.entry[0]
            if not script.is_file() or _relative(script.resolve(), root.resolve()) is None:
                problems.append(f"the recorded script {self.entry[0]} is not a file of the checked-out code "
                                f"({root}); check launch.script in {self.record_path}")
        if problems:
            raise RerunError("; ".join(problems) + "\nnothing was run")

    def entry_argv(self, root: Path) -> list[str]:
        if self.entry[0] == "-m":
            return [self.python, *self.entry]
        return [self.python, str(root / self.entry[0])]

    def working_dir(self, root: Path) -> Path:
        return root / self.cwd if self.relative_cwd else self.cwd

    @contextlib.contextmanager
    def checked_out(self) -> Iterator[Path]:
        """Yield the code root: a temporary worktree of the snapshot (removed after), or the current tree."""
        self.refuse_if_unsafe()
        if self.snapshot is None:
            assert self.current_root is not None
            self.refuse_if_unsafe(self.current_root)
            yield self.current_root
        else:
            with checked_out(self.snapshot) as where:
                self.refuse_if_unsafe(where)
                yield where

    def commands(self, launch: Callable[[Path], list[str]]) -> list[str]:
        """Shell commands for ``--dry-run``: the checkout, ``launch(root)``'s lines, the cleanup."""
        if self.snapshot is None:
            assert self.current_root is not None
            return launch(self.current_root)
        where = "<tmp>/worktree"
        return [*self.snapshot.commands(where), *launch(Path(where)),
                f"git -C {shlex.quote(str(self.snapshot.repo))} worktree remove --force {where}"]


def untracked_objects(job_dir: Path, record: Mapping[str, Any], subject: str,
                      fix: str) -> tuple[dict[str, str], Path | None]:
    """The untracked files a job of a sweep stored by content ({path: sha256}), and the sweep's
    object store where they are now; RerunError naming the store when some are not there."""
    from hydra_ledger.record.rows import sweep_dir_of  # the package imports pandas: only when needed

    objects = (record.get("git") or {}).get("untracked_objects")
    if not isinstance(objects, dict) or not objects:
        return {}, None
    sweep = sweep_dir_of(job_dir, record.get("job") or {})
    store = SweepPaths(sweep if sweep is not None else job_dir.parent).objects
    lost = [rel for rel, digest in objects.items() if not object_path(store, str(digest)).is_file()]
    if lost:
        shown = ", ".join(lost[:3]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
        raise RerunError(f"{subject}: {len(lost)} untracked file(s) it ran with ({shown}) are not in its sweep's "
                         f"store {store}, where each job's untracked files are kept once per sweep; was the job dir "
                         f"copied without its sweep dir? Copy the sweep's .ledger/objects along, or {fix}")
    return {str(k): str(v) for k, v in objects.items()}, store


def code_source(code: Code, job_dir: Path, record: Mapping[str, Any], *, subject: str, verb: str) -> CodeSource:
    """The code of the job recorded in ``job_dir`` (its commit, patch and untracked files when
    ``code == "recorded"``). ``subject`` names it in errors ("the run <dir>"), ``verb`` is the
    command the fix reruns ("rerun", "resume")."""
    launch = record.get("launch") or {}
    git = record.get("git") or {}
    launch_cwd = Path(str(launch.get("cwd") or os.getcwd()))
    fix = f"{verb} with --current-code"
    snapshot = current_root = None
    if code == "recorded":
        if git.get("state") != "ok" or not git.get("commit"):
            raise RerunError(f"{subject} records no git commit (git state: {git.get('state')!r}): "
                             f"its code cannot be checked out; {fix}")
        paths = RunPaths(job_dir)
        patch = None
        if git.get("dirty"):
            if not git.get("patch") or not paths.patch.is_file():
                raise RerunError(f"{subject} was made from a dirty tree but its patch is missing ({paths.patch}; "
                                 f"{git.get('patch_skipped') or 'not saved'}): {fix}")
            patch = paths.patch
        root = Path(str(git["root"]))
        objects, store = untracked_objects(job_dir, record, subject, fix)
        snapshot = CodeSnapshot(checkout_repo(root), str(git["commit"]), patch, paths.untracked,
                                list(git.get("untracked_saved") or []), objects, store)
    else:
        from hydra_ledger.job.capture.git import find_repo_root

        recorded_root = Path(str(git["root"])) if git.get("root") else None
        root = current_root = recorded_root if recorded_root is not None and recorded_root.exists() else (
            find_repo_root(launch_cwd) or launch_cwd)
    entry, cwd, relative = map_into(root, launch, launch_cwd, fix)
    record_path = RunPaths(job_dir).record
    python = recorded_python(launch)
    problems = []
    why = python_problem(python, job_dir)
    if why is not None:
        problems.append(f"the recorded python {python} is not a Python interpreter ({why}); check launch.python "
                        f"in {record_path} (was it edited?), or remove it to use this one ({sys.executable})")
    if entry[0] == "-m" and not _MODULE_NAME.fullmatch(entry[1]):
        problems.append(f"the recorded module {entry[1]!r} is not a Python module name (letters, digits, '_' "
                        f"and '.', not starting with '-' or a digit); check launch.module in {record_path}")
    return CodeSource(code=code, python=python, entry=entry, cwd=cwd, relative_cwd=relative,
                      snapshot=snapshot, current_root=current_root, problems=problems, record_path=record_path)


def recorded_python(launch: Mapping[str, Any]) -> str:
    """The recorded interpreter, or this one (with a warning) when it is gone."""
    python = str(launch.get("python") or sys.executable)
    if not Path(python).exists():
        log.warning("hydra-ledger: recorded python %s is gone; using %s", python, sys.executable)
        python = sys.executable
    return python


_MODULE_NAME = re.compile(r"[A-Za-z_][\w.]*")
# python, python3, python3.11, python3.13t (free-threaded), python.exe
_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)*t?)?(\.exe)?", re.IGNORECASE)
# Every CPython executable starts through one of these C functions, so its name is in the binary
# (statically linked) or in its import table (linked to libpython / python3X.dll).
_CPYTHON_ENTRY = (b"Py_BytesMain", b"Py_Main")


def python_problem(python: str, job_dir: Path) -> str | None:
    """Why ``python`` (from a record) is not an interpreter to run, None when it is one.

    Nothing is executed to find out: this interpreter is accepted as it is; any other must be
    named ``python[0-9.]*`` both as recorded and once symlinks are resolved (a venv's
    ``bin/python`` -> ``/usr/bin/python3.11``), be an executable binary (not a ``#!`` script)
    outside the run's own output dir, and hold a CPython entry point (read, not run)."""
    path = Path(python)
    if not path.is_absolute():
        return "not an absolute path"
    real = Path(os.path.realpath(path))
    if real == Path(os.path.realpath(sys.executable)):
        return None
    if not (_PYTHON_NAME.fullmatch(path.name) and _PYTHON_NAME.fullmatch(real.name)):
        return f"its name {real.name!r} is not python[0-9.]*"
    if not real.is_file() or not os.access(real, os.X_OK):
        return "not an executable file"
    if _relative(real, job_dir.resolve()) is not None:
        return f"it lies inside the run's own output dir {job_dir}"
    try:
        with open(real, "rb") as file:
            if file.read(2) == b"#!":
                return "a script, not an interpreter binary"
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if not any(data.find(marker) >= 0 for marker in _CPYTHON_ENTRY):
                    return "the file holds no CPython entry point (Py_BytesMain)"
    except (OSError, ValueError) as exc:
        return f"cannot read it: {exc}"
    return None


def checkout_repo(recorded_root: Path) -> Path:
    """The repository to check the recorded commit out of: the recorded root while it exists,
    else the one around the current dir (a rerun's own record names its removed worktree)."""
    if (recorded_root / ".git").exists():
        return recorded_root
    from hydra_ledger.job.capture.git import find_repo_root

    return find_repo_root(Path.cwd()) or recorded_root


def map_into(root: Path, launch: Mapping[str, Any], launch_cwd: Path, fix: str) -> tuple[list[str], Path, bool]:
    """Entry point and cwd relative to the repo root, so they can be found in a worktree."""
    if launch.get("module") and _module_is_script(str(launch["module"]), launch.get("script")):
        entry = ["-m", str(launch["module"])]
    else:
        script = Path(str(launch["script"]))
        rel = _relative(script, root)
        if rel is None:
            raise RerunError(f"the recorded script {script} is outside the repository {root}: cannot map it "
                             f"into a checkout; {fix}")
        entry = [str(rel)]
    rel_cwd = _relative(launch_cwd, root)
    return entry, (rel_cwd if rel_cwd is not None else launch_cwd), rel_cwd is not None


def _module_is_script(module: str, script: Any) -> bool:
    """Whether ``python -m module`` ran the task's own file; a job started by a launcher's
    runner (``submitit.core._submit``) records that runner as its module."""
    if not script:
        return True
    parts = Path(str(script)).with_suffix("").parts
    names = module.split(".")
    return list(parts[-len(names):]) == names or list(parts[-len(names) - 1:-1]) == names


def _relative(path: Path, root: Path) -> Path | None:
    for p, r in ((path, root), (path.resolve(), root.resolve())):
        try:
            return p.relative_to(r)
        except ValueError:
            continue
    return None


# -- starting it -----------------------------------------------------------------------------
def shown(argv: Sequence[str], redactor: Redactor) -> str:
    """``argv`` as a shell line with secret values redacted, for printing and logging."""
    return " ".join(shlex.quote(a) for a in redactor.overrides(argv))


def run(argv: list[str], cwd: Path, env: Mapping[str, str], *, what: str, redactor: Redactor,
        capture: bool = False) -> int:
    """Run ``argv`` (with its real values) and return its exit code; the log shows it redacted."""
    log.info("hydra-ledger: %s: %s", what, shown(argv, redactor))
    proc = subprocess.run(argv, cwd=cwd, env=dict(env), check=False, capture_output=capture, text=True)
    if capture and proc.returncode != 0:
        log.warning("hydra-ledger: %s exited with %d:\n%s", what, proc.returncode,
                    redactor.text(proc.stderr[-4000:]))
    return proc.returncode
