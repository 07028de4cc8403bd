"""Git state of the code a job runs: commit, branch, dirty flag, patch, untracked files.

Calls the ``git`` CLI directly (two or three short commands): importing GitPython alone
costs ~85 ms per job process, more than the whole capture.
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hydra_ledger.errors import LedgerError
from hydra_ledger.record.paths import HYDRA_DIR, LEDGER_DIR
from hydra_ledger.record.redact import redact_url

UNTRACKED_LIMIT = 1000
_GIT_TIMEOUT_S = 20


class GitError(LedgerError, RuntimeError):
    pass


def find_repo_root(start: str | os.PathLike[str]) -> Path | None:
    """The nearest ancestor of ``start`` holding ``.git`` (a dir, or a file for worktrees)."""
    path = Path(start).resolve()
    if path.is_file():
        path = path.parent
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _git(root: Path, *args: str, max_bytes: int | None = None) -> bytes:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # status must not take index.lock
    proc = subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        env=env,
        timeout=_GIT_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def capture_git(
    start: str | os.PathLike[str],
    patch_max_bytes: int,
    exclude: Iterable[str | os.PathLike[str]] = (),
) -> tuple[dict[str, Any], bytes | None]:
    """Return ``(git_info, patch)`` for the repo containing ``start``.

    ``exclude`` names output dirs (``outputs/``, ``multirun/``, the job's own dir), left
    out of the untracked list, which would otherwise list every earlier run's files.
    ``patch`` is the binary-safe diff of the work tree and index against HEAD
    (``git apply`` restores it), or None when clean, too large, or unavailable.
    """
    root = find_repo_root(start)
    if root is None:
        return {"state": "no-repo"}, None
    info: dict[str, Any] = {"state": "ok", "root": str(root)}
    excludes = _exclude_pathspecs(root, exclude)
    status = _git(root, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all",
                  "--", ".", *excludes)
    dirty = False
    untracked: list[str] = []
    for entry in _split_status(status):
        if entry.startswith("# branch.oid "):
            oid = entry[len("# branch.oid "):]
            info["commit"] = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry[len("# branch.head "):]
            info["detached"] = head == "(detached)"
            info["branch"] = None if head == "(detached)" else head
        elif entry.startswith("? "):
            untracked.append(entry[2:])
        elif entry[:2] in ("1 ", "2 ", "u "):
            dirty = True
    if info.get("commit") is None:
        info["state"] = "no-commits"
    untracked = _drop_hydra_outputs(root, untracked)
    info["dirty"] = dirty
    info["untracked_count"] = len(untracked)
    info["untracked"] = untracked[:UNTRACKED_LIMIT]
    info["remote"] = _remote_url(root)
    patch: bytes | None = None
    if dirty and info["state"] == "ok":
        patch = _git(root, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--full-index")
        info["patch_bytes"] = len(patch)
        if len(patch) > patch_max_bytes:
            info["patch_skipped"] = f"{len(patch)} bytes > patch_max_bytes={patch_max_bytes}"
            patch = None
    return info, patch


# Entries that mark their directory as Hydra output: a job dir (.hydra/, .ledger/) or a sweep
# dir (multirun.yaml, optuna's optimization_results.yaml).
_OUTPUT_MARKERS = frozenset({HYDRA_DIR, LEDGER_DIR, "multirun.yaml", "optimization_results.yaml"})


def _drop_hydra_outputs(root: Path, untracked: list[str]) -> list[str]:
    """Leave out files of earlier runs wherever their output dirs are (``hydra.run.dir``
    may differ from run to run), and symlinks into them (``outputs/latest``): results, not code."""
    roots: set[str] = set()
    marked: set[str] = set()
    for path in untracked:
        parts = path.split("/")
        for i, part in enumerate(parts):
            if part in _OUTPUT_MARKERS:
                marked.add(path)
                if i > 0:  # a marker at the top (hydra.run.dir=.) does not make the repo output
                    roots.add("/".join(parts[:i]))
                break
    if not marked:
        return untracked

    def inside_output(path: str) -> bool:
        parts = path.split("/")
        return path in marked or any("/".join(parts[:i]) in roots for i in range(1, len(parts) + 1))

    def links_to_output(path: str) -> bool:
        full = os.path.join(root, path)
        if not os.path.islink(full):
            return False
        target = os.path.normpath(os.path.join(os.path.dirname(full), os.readlink(full)))
        relative = os.path.relpath(target, root).replace(os.sep, "/")
        return not relative.startswith("../") and inside_output(relative)

    return [p for p in untracked if not inside_output(p) and not links_to_output(p)]


def _split_status(raw: bytes) -> list[str]:
    """Porcelain v2 -z entries; a rename entry ('2 ...') is followed by its original path."""
    parts = raw.decode("utf-8", errors="surrogateescape").split("\0")
    entries: list[str] = []
    skip_next = False
    for part in parts:
        if skip_next:
            skip_next = False
            continue
        if not part:
            continue
        entries.append(part)
        skip_next = part.startswith("2 ")
    return entries


def _exclude_pathspecs(root: Path, dirs: Iterable[str | os.PathLike[str]]) -> list[str]:
    specs = []
    for d in dirs:
        try:
            rel = Path(d).resolve().relative_to(root)
        except ValueError:
            continue  # outside the repo: nothing to exclude
        if rel.parts:
            specs.append(f":(exclude){rel.as_posix()}")
    return specs


def _remote_url(root: Path) -> str | None:
    """URL of ``origin`` (else the first remote), credentials stripped.

    Read from the repo's config file (a git call costs ~1.5 ms per job); falls back to
    ``git config`` when the layout is unusual (includes, worktrees without commondir).
    """
    urls = _remote_urls_from_file(root)
    if urls is None:
        try:
            raw = _git(root, "config", "--get-regexp", r"^remote\..*\.url$").decode(errors="replace")
        except GitError:
            return None  # no remote configured: `git config` exits 1
        urls = {}
        for line in raw.splitlines():
            key, _, url = line.partition(" ")
            urls[key[len("remote."):-len(".url")]] = url
    if not urls:
        return None
    return redact_url(urls.get("origin") or next(iter(urls.values())))


_REMOTE_SECTION = re.compile(r'^\s*\[remote\s+"(?P<name>[^"]+)"\]\s*$')
_URL_LINE = re.compile(r"^\s*url\s*=\s*(?P<url>.+?)\s*$", re.IGNORECASE)


def _remote_urls_from_file(root: Path) -> dict[str, str] | None:
    git_dir = root / ".git"
    if git_dir.is_file():  # a worktree or submodule: "gitdir: <path>"
        try:
            target = git_dir.read_text().strip().removeprefix("gitdir:").strip()
            git_dir = (root / target).resolve()
            common = git_dir / "commondir"
            if common.is_file():
                git_dir = (git_dir / common.read_text().strip()).resolve()
        except OSError:
            return None
    try:
        text = (git_dir / "config").read_text(errors="replace")
    except OSError:
        return None
    if "[include" in text.lower():
        return None  # let git follow includes
    urls: dict[str, str] = {}
    section = None
    for line in text.splitlines():
        header = _REMOTE_SECTION.match(line)
        if header:
            section = header.group("name")
            continue
        if line.lstrip().startswith("["):
            section = None
            continue
        url = _URL_LINE.match(line)
        if section and url and section not in urls:
            urls[section] = url.group("url").strip('"')
    return urls
