"""Copies of a job's untracked (not ignored) files, so that an exact rerun can restore them.

A job of a sweep stores each file once per sweep, by content, under
``<sweep>/.ledger/objects/<sha256[:2]>/<sha256>``, and its record maps each path to its hash
(``git.untracked_objects``): a 3 MB notebook left untracked costs 3 MB per sweep, not per job.
A single run saves its copies under ``<job>/.ledger/untracked/<path relative to the repo root>``.
Small files only, within their own total budget per job (``untracked_max_bytes``). Byte caches
and symlinks are left out, and so are files whose names say they hold secrets (``.env``, keys,
credentials): a job's output dir gets copied and shared, and a secret must not travel with it.
"""
from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra_ledger.record.files import temp_name
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
                   redact_keys: Iterable[str] = (), exclude: Iterable[str] = (),
                   store: Path | None = None) -> dict[str, Any]:
    """Job process: copy ``files`` (paths relative to ``root``) into ``dest``, or by content into
    the sweep's ``store`` when given, while the total stays within ``max_bytes``, leaving out
    secret-like names and the ``exclude`` patterns (option ``untracked_exclude``; see
    :func:`is_secret_file`).

    Returns ``{"untracked_saved": [path, ...], "untracked_not_saved": [{"path", "reason"}, ...]}``,
    and with a store ``"untracked_objects": {path: sha256}``. Never raises for one file (deleted
    since ``git status``, unreadable, quota): it is listed as not saved, so that the job's record
    is still written."""
    redactor = Redactor(redact_keys)
    exclude = list(exclude)
    saved: list[str] = []
    not_saved: list[dict[str, str]] = []
    objects: dict[str, str] = {}
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
            if store is not None:
                objects[rel] = store_object(source, store)
            else:
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
    result: dict[str, Any] = {"untracked_saved": saved, "untracked_not_saved": not_saved}
    if store is not None:
        result["untracked_objects"] = objects
    return result


# Hashes already taken in this process, by (path, size, mtime): the jobs of a sweep run by one
# process (the basic launcher) read each unchanged file once.
_HASHED: dict[tuple[str, int, int], str] = {}


def store_object(source: Path, store: Path) -> str:
    """Store ``source`` in ``store`` under its SHA-256, once: the jobs of a sweep that find it
    there write nothing. Concurrent jobs each write a temp file and rename it over the same
    name, with the same bytes. Returns the hash."""
    stat = source.stat()
    key = (str(source), stat.st_size, stat.st_mtime_ns)
    digest = _HASHED.get(key)
    if digest is None:
        sha = hashlib.sha256()
        with open(source, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
        digest = _HASHED[key] = sha.hexdigest()
    target = object_path(store, digest)
    with contextlib.suppress(OSError):
        if target.stat().st_size == stat.st_size:
            return digest
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_name(target)
    try:
        shutil.copy2(source, temp)
        os.replace(temp, target)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    return digest


def object_path(store: Path, digest: str) -> Path:
    """Where the file of hash ``digest`` is in a sweep's object store."""
    return store / digest[:2] / digest


def restore_untracked(saved_dir: Path, files: Iterable[str], root: Path,
                      objects: Mapping[str, str] | None = None, store: Path | None = None) -> list[str]:
    """Copy saved untracked files back under ``root``, from ``saved_dir`` or, for the paths in
    ``objects``, from the sweep's ``store``; files already there are left alone."""
    restored = []
    for rel in files:
        digest = (objects or {}).get(rel)
        source = object_path(store, digest) if digest is not None and store is not None else saved_dir / rel
        target = root / rel
        if not source.is_file() or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        restored.append(rel)
    return restored
