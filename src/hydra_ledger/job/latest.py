"""The ``latest`` link next to the run dirs: ``outputs/latest``, ``multirun/latest``.

It points (relatively, so the tree can be moved) at the newest run or sweep and is
replaced atomically: a link under a temporary name, then ``os.replace``. Where the file
system has no symbolic links it is skipped with a note in the log. Written by the process
that starts the run: the job process for a single run, the launching process for a sweep.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

LINK_NAME = "latest"


def link_root(target: str | os.PathLike[str], template_prefix: str | None, cwd: str | os.PathLike[str]) -> Path | None:
    """Where the link goes for a run dir ``target``: the literal start of its dir template
    (``outputs`` of ``outputs/${now:...}/...``) when that is above ``target``, else its parent.
    None when that place would be the launch dir or above it (``hydra.run.dir=.``)."""
    target_path = Path(os.path.abspath(target))
    root = None
    if template_prefix:
        candidate = Path(os.path.abspath(os.path.join(cwd, template_prefix)))
        if candidate in target_path.parents:
            root = candidate
    if root is None:
        root = target_path.parent
    launch = Path(os.path.abspath(cwd))
    if root == launch or root in launch.parents or target_path == launch:
        return None
    return root


def update_latest(root: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path | None:
    """Point ``root/latest`` at ``target``; returns the link, or None when it was skipped."""
    root_path = Path(root)
    link = root_path / LINK_NAME
    relative = os.path.relpath(os.path.abspath(target), os.path.abspath(root_path))
    if os.path.islink(link):
        try:
            if os.readlink(link) == relative:
                return link
        except OSError:
            pass
    elif os.path.lexists(link):
        log.info("hydra-ledger: %s exists and is not a link; the 'latest' link is not written", link)
        return None
    tmp = root_path / f".{LINK_NAME}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        root_path.mkdir(parents=True, exist_ok=True)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(relative, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except (OSError, NotImplementedError) as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        log.info("hydra-ledger: no 'latest' link in %s (the file system refused a symbolic link: %s)", root_path, exc)
        return None
    return link


def template_prefix(node: object, key: str) -> str | None:
    """The literal start of a dir template, before its first interpolation (no resolving)."""
    try:
        raw = node._get_node(key)  # type: ignore[attr-defined]
        text = None if raw is None else raw._value()
    except Exception:  # noqa: BLE001 - an unusual config node: fall back to the parent dir
        return None
    if not isinstance(text, str):
        return None
    return text.split("${", 1)[0].rstrip("/") or None


def link_run(hydra_cfg: object, job_dir: str | os.PathLike[str]) -> Path | None:
    """Job process of a single run: ``<run root>/latest`` -> this run's dir."""
    cwd = str(hydra_cfg.runtime.cwd)  # type: ignore[attr-defined]
    root = link_root(job_dir, template_prefix(hydra_cfg.run, "dir"), cwd)  # type: ignore[attr-defined]
    if root is None:
        log.debug("hydra-ledger: no 'latest' link for %s: it would go in the launch dir or above it", job_dir)
        return None
    return update_latest(root, job_dir)


def link_sweep(hydra_cfg: object, sweep_dir: str | os.PathLike[str], cwd: str | os.PathLike[str]) -> Path | None:
    """Launching process of a sweep: ``<sweep root>/latest`` -> this sweep's dir."""
    root = link_root(sweep_dir, template_prefix(hydra_cfg.sweep, "dir"), cwd)  # type: ignore[attr-defined]
    if root is None:
        log.debug("hydra-ledger: no 'latest' link for %s: it would go in the launch dir or above it", sweep_dir)
        return None
    return update_latest(root, sweep_dir)
