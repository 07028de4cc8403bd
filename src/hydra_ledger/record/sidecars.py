"""Tags and notes added after a run: sidecar files in the run's ``.ledger/`` dir.

A running job rewrites ``run.json`` at every summary update, so annotations never touch
it: tags live in ``tags.json`` (replaced atomically) and notes in ``notes.jsonl``
(append-only). Tags given at launch (``hydra.callbacks.ledger.tags``) stay in the record;
``tags.json`` holds what was added and removed since, so a launch tag can be untagged too.

Every edit holds an exclusive ``flock`` on ``.ledger/sidecars.lock``: 20 ``hydra-ledger tag``
run at once each read-modify-replace ``tags.json``, and without the lock about half of the
tags were lost. Readers take no lock (they see the old or the new file, never half of one).
The lock is released by the kernel when its process ends, so a killed command leaves none.
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from hydra_ledger.errors import LedgerError
from hydra_ledger.record.changes import mark_changed
from hydra_ledger.record.files import MAX_SIDECAR_BYTES, append_line, read_regular_file, write_json_atomic
from hydra_ledger.record.paths import RunPaths

LOCK_TIMEOUT_S = 30.0  # $HYDRA_LEDGER_LOCK_TIMEOUT_S overrides it


class SidecarLockError(LedgerError, OSError):
    """The run's sidecar lock stayed taken: the message names the lock file and what to do."""


@contextmanager
def locked(paths: RunPaths, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the run's sidecar lock (``flock`` on ``.ledger/sidecars.lock``) while editing its sidecars.

    Waits up to ``timeout_s`` (default: ``$HYDRA_LEDGER_LOCK_TIMEOUT_S`` or 30 s), then raises
    :class:`SidecarLockError`. Works on NFS too (Linux maps ``flock`` to NFS byte-range locks).
    """
    if timeout_s is None:
        try:
            timeout_s = float(os.environ.get("HYDRA_LEDGER_LOCK_TIMEOUT_S") or LOCK_TIMEOUT_S)
        except ValueError:
            timeout_s = LOCK_TIMEOUT_S
    lock = paths.sidecar_lock
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SidecarLockError(
                        f"hydra-ledger: cannot lock {lock}: another 'hydra-ledger tag', 'untag' or 'note' on this "
                        f"run held it for {timeout_s:g} s; try again once it is done (the lock is released when "
                        "its process ends)") from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # releases the lock


def _read_tag_edits(paths: RunPaths) -> dict[str, list[str]]:
    try:
        data = json.loads(read_regular_file(paths.tags, MAX_SIDECAR_BYTES)[1])  # a FIFO: not read (the loader warns)
    except (OSError, ValueError):
        return {"added": [], "removed": []}
    if not isinstance(data, dict):
        return {"added": [], "removed": []}
    return {key: [str(t) for t in data.get(key) or [] if isinstance(t, str)] for key in ("added", "removed")}


def effective_tags(record_tags: Iterable[Any], paths: RunPaths) -> list[str]:
    """Launch tags plus those added, minus those removed, in first-seen order."""
    edits = _read_tag_edits(paths)
    removed = set(edits["removed"])
    tags: dict[str, None] = {}
    for tag in [*(str(t) for t in record_tags or ()), *edits["added"]]:
        if tag not in removed:
            tags[tag] = None
    return list(tags)


def add_tags(paths: RunPaths, tags: Iterable[str]) -> None:
    _edit_tags(paths, tags, into="added", out_of="removed")


def remove_tags(paths: RunPaths, tags: Iterable[str]) -> None:
    _edit_tags(paths, tags, into="removed", out_of="added")


def _edit_tags(paths: RunPaths, tags: Iterable[str], *, into: str, out_of: str) -> None:
    """Move ``tags`` to the ``into`` list of tags.json (out of the other): read and replaced
    under the run's lock, so that concurrent edits all survive."""
    with locked(paths):
        edits = _read_tag_edits(paths)
        for tag in tags:
            if tag in edits[out_of]:
                edits[out_of].remove(tag)
            if tag not in edits[into]:
                edits[into].append(tag)
        write_json_atomic(paths.tags, edits)
    mark_changed(paths.job_dir)


def read_notes(paths: RunPaths) -> list[dict[str, Any]]:
    """Notes added with ``hydra-ledger note``, oldest first: ``{"time": iso, "text": ...}``."""
    try:
        lines = read_regular_file(paths.notes, MAX_SIDECAR_BYTES)[1].splitlines()  # a FIFO: not read
    except OSError:
        return []
    notes = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:  # a torn last line of an interrupted append
            continue
        if isinstance(entry, dict) and isinstance(entry.get("text"), str):
            notes.append(entry)
    return notes


def add_note(paths: RunPaths, text: str) -> None:
    """Append a note line. One ``write`` on an O_APPEND file is atomic on a local disk, but
    not on NFS, where O_APPEND is emulated by the client: the lock serialises appends there."""
    stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    with locked(paths):
        append_line(paths.notes, {"time": stamp, "text": text})
    mark_changed(paths.job_dir)


def clear_notes(paths: RunPaths) -> None:
    with locked(paths):  # not between another command's append and its end
        try:
            paths.notes.unlink()
        except FileNotFoundError:
            pass
    mark_changed(paths.job_dir)


def effective_note(record_note: Any, paths: RunPaths) -> str | None:
    """The launch note and every added note, one per line; None when there is none."""
    texts = [str(record_note)] if record_note else []
    texts += [n["text"] for n in read_notes(paths)]
    return "\n".join(texts) if texts else None


def annotate(record: Mapping[str, Any], paths: RunPaths | str,
             present: Collection[str] | None = None) -> tuple[list[str], str | None]:
    """``(tags, note)`` of a run: its record's values merged with the sidecars.

    ``present``: the names in the run's ``.ledger/`` when the caller listed it, so that absent
    sidecars (nearly all) cost no failing ``open``.
    """
    if present is not None and RunPaths.TAGS not in present and RunPaths.NOTES not in present:
        tags = list(dict.fromkeys(str(t) for t in record.get("tags") or ()))
        note = record.get("note")
        return tags, str(note) if note else None
    if not isinstance(paths, RunPaths):  # a job dir
        paths = RunPaths(paths)
    return effective_tags(record.get("tags") or (), paths), effective_note(record.get("note"), paths)
