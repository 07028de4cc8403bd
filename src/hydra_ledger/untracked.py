"""Copies of a job's untracked (not ignored) files, so that an exact rerun can restore them.

Saved under ``<job>/.ledger/untracked/<path relative to the repo root>``; small files only,
within a total budget. Byte caches and symlinks are left out.
"""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_SKIPPED_PARTS = frozenset({"__pycache__", ".ledger", ".hydra"})


def save_untracked(root: str | os.PathLike[str], files: Iterable[str], dest: Path, max_bytes: int) -> dict[str, Any]:
    """Job process: copy ``files`` (paths relative to ``root``) into ``dest`` while the total
    stays within ``max_bytes``; return ``{"untracked_saved": [...], "untracked_not_saved": [...]}``."""
    saved: list[str] = []
    not_saved: list[str] = []
    total = 0
    for rel in files:
        source = Path(root, rel)
        parts = Path(rel).parts
        if rel.endswith(_SKIPPED_SUFFIXES) or _SKIPPED_PARTS.intersection(parts) or ".." in parts:
            continue
        if source.is_symlink() or not source.is_file():
            not_saved.append(rel)
            continue
        size = source.stat().st_size
        if total + size > max_bytes:
            not_saved.append(rel)
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        total += size
        saved.append(rel)
    if not_saved:
        log.warning("hydra-ledger: %d untracked file(s) not saved for reruns (too large, or not regular files): %s",
                    len(not_saved), ", ".join(not_saved[:5]))
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
