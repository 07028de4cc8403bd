"""Copies of a job's untracked (not ignored) files, so that an exact rerun can restore them.

Saved under ``<job>/.ledger/untracked/<path relative to the repo root>``; small files only,
within their own total budget (``untracked_max_bytes``). Byte caches and symlinks are left
out, and so are files whose names say they hold secrets (``.env``, keys, credentials): a
job's output dir gets copied and shared, and a secret must not travel with it.
"""
from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hydra_ledger.record.paths import HYDRA_DIR, LEDGER_DIR
from hydra_ledger.record.redact import Redactor

log = logging.getLogger(__name__)

_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_SKIPPED_PARTS = frozenset({"__pycache__", LEDGER_DIR, HYDRA_DIR})
# File names (lower-cased) that hold secrets by convention: dotenv files, TLS/SSH keys, key stores,
# cloud and registry credentials, client configs that keep passwords (netrc, pgpass, pypirc, kubeconfig,
# Django's local_settings).
_SECRET_NAMES = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "id_rsa*", "credentials*", "secrets*", "*secret*.json",
    ".netrc", "_netrc", ".pgpass", ".pypirc", ".npmrc", ".git-credentials", ".htpasswd", ".vault_pass*",
    "*service-account*.json", "*service_account*.json", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx",
    "*.ppk", "kubeconfig", "kubeconfig.*", "*.kubeconfig", "local_settings*",
)
SECRET_REASON = "secret-like name"


def is_secret_file(rel: str, redactor: Redactor, exclude: Iterable[str] = ()) -> bool:
    """Whether an untracked file's name says it holds a secret: a conventional name (``.env*``,
    ``*.pem``, ``*.key``, SSH keys ``id_*``, ``.netrc``, ``kubeconfig``, ``credentials*``,
    ``secrets*``...), a user pattern of ``exclude`` (matched against the name and the relative
    path), or a stem that is a redacted config key (``db_password.txt``, ``api_token``)."""
    name = Path(rel).name.lower()
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in _SECRET_NAMES):
        return True
    posix = Path(rel).as_posix()
    if any(fnmatch.fnmatch(Path(rel).name, p) or fnmatch.fnmatch(posix, p) for p in exclude):
        return True
    stem, _, suffix = name.partition(".")
    if stem.startswith("id_") and suffix in ("", "pub"):  # id_ed25519, id_ecdsa.pub; not id_map.py
        return True
    return redactor.is_secret_key(Path(rel).name.split(".", 1)[0])


# Warnings already given in this process (a sweep's jobs would repeat the same one).
_WARNED: set[str] = set()


def save_untracked(root: str | os.PathLike[str], files: Iterable[str], dest: Path, max_bytes: int,
                   redact_keys: Iterable[str] = (), exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Job process: copy ``files`` (paths relative to ``root``) into ``dest`` while the total
    stays within ``max_bytes``, leaving out secret-like names and the ``exclude`` patterns
    (option ``untracked_exclude``; see :func:`is_secret_file`).

    Returns ``{"untracked_saved": [path, ...], "untracked_not_saved": [{"path", "reason"}, ...]}``.
    Never raises for one file (deleted since ``git status``, unreadable, quota): it is listed
    as not saved, so that the job's record is still written."""
    redactor = Redactor(redact_keys)
    exclude = list(exclude)
    saved: list[str] = []
    not_saved: list[dict[str, str]] = []
    total = 0
    for rel in files:
        source = Path(root, rel)
        parts = Path(rel).parts
        if rel.endswith(_SKIPPED_SUFFIXES) or _SKIPPED_PARTS.intersection(parts) or ".." in parts:
            continue
        if is_secret_file(rel, redactor, exclude):
            not_saved.append({"path": rel, "reason": SECRET_REASON})
            continue
        target = dest / rel
        try:
            if source.is_symlink() or not source.is_file():
                not_saved.append({"path": rel, "reason": "not a regular file"})
                continue
            size = source.stat().st_size
            if total + size > max_bytes:
                not_saved.append({"path": rel, "reason": f"too large: {size} bytes, {max_bytes - total} left of "
                                                         f"untracked_max_bytes={max_bytes}"})
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                target.unlink()  # no half-copied file that a rerun would restore
            not_saved.append({"path": rel, "reason": f"cannot copy: {exc.strerror or exc}"})
            continue
        total += size
        saved.append(rel)
    if not_saved:
        listed = ", ".join(f"{item['path']} ({item['reason']})" for item in not_saved[:5])
        more = f" and {len(not_saved) - 5} more" if len(not_saved) > 5 else ""
        message = f"hydra-ledger: {len(not_saved)} untracked file(s) not saved for reruns: {listed}{more}"
        # the jobs of a sweep share the tree: said once per process, each record lists them
        if message not in _WARNED:
            _WARNED.add(message)
            log.warning("%s", message)
    return {"untracked_saved": saved, "untracked_not_saved": not_saved}


def restore_untracked(saved_dir: Path, files: Iterable[str], root: Path) -> list[str]:
    """Copy saved untracked files back under ``root``; files already there are left alone."""
    restored = []
    for rel in files:
        source, target = saved_dir / rel, root / rel
        if not source.is_file() or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        restored.append(rel)
    return restored
