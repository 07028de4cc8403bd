"""Whether the directories of a work tree saw any change, told by the kernel (Linux inotify).

A sweep's job checks that the tree is still the one whose git state the sweep captured
(:mod:`hydra_ledger.job.sweep_git`): an ``lstat`` of every watched path, ~0.6 ms per job for
200 files. A process that runs job after job (the basic launcher, a joblib worker) instead
watches the directories holding those paths: while no event arrives, nothing in them changed,
and the job needs no ``lstat`` pass. Only where inotify sees every change: on local file
systems (not through another host of a network file system). Whatever the watch cannot tell
(no inotify, too many directories, any event at all) sends the caller to the full check.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any

# Directories beyond this many are not watched (each takes one of the user's inotify watches).
MAX_DIRECTORIES = 1000
# File systems on which inotify reports every change to their files, whoever makes it.
LOCAL_FILE_SYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "ramfs", "overlay", "zfs",
                                "f2fs", "bcachefs", "jfs", "reiserfs"})
# IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE |
# IN_DELETE_SELF | IN_MOVE_SELF, on directories only (IN_ONLYDIR), never through a symbolic link
_EVENTS = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x01000000 | 0x02000000


class TreeWatch:
    """An inotify instance watching a set of directories, in the process that made it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pid = os.getpid()

    def quiet(self) -> bool:
        """True when no event arrived since the last call (and all were drained); False also
        in another process (a forked child must not take its parent's events)."""
        if self.pid != os.getpid():
            return False
        seen = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return not seen
            except OSError:
                return False
            if not data:
                return False
            seen = True

    def close(self) -> None:
        if self.pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = -1


def watch(directories: Iterable[str]) -> TreeWatch | None:
    """A watch on ``directories`` (absolute paths), or None where it could miss a change."""
    found = sorted(set(directories))
    if not found or len(found) > MAX_DIRECTORIES or not _all_local(found):
        return None
    libc = _libc()
    if libc is None:
        return None
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        return None  # e.g. the user's inotify instances used up
    for directory in found:
        if libc.inotify_add_watch(fd, os.fsencode(directory), _EVENTS) < 0:
            os.close(fd)  # e.g. gone, or the user's watches used up
            return None
    return TreeWatch(fd)


def _libc() -> Any:
    """The C library's inotify functions through ctypes (imported only here: ~3 ms), or None."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    except (ImportError, OSError, AttributeError):  # not Linux, or a libc without inotify
        return None
    return libc


def _all_local(directories: list[str]) -> bool:
    """Whether every one of ``directories`` is on a file system of :data:`LOCAL_FILE_SYSTEMS`."""
    try:
        devices = {os.stat(d).st_dev for d in directories}
        types = _file_system_types()
    except OSError:
        return False
    return all(types.get((os.major(dev), os.minor(dev))) in LOCAL_FILE_SYSTEMS for dev in devices)


def _file_system_types() -> dict[tuple[int, int], str]:
    """``{(major, minor): file system type}`` of this process's mounts (``/proc/self/mountinfo``)."""
    types: dict[tuple[int, int], str] = {}
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f.read().decode(errors="replace").splitlines():
            fields = line.split()
            try:
                major, minor = fields[2].split(":")
                fs_type = fields[fields.index("-") + 1]
            except (IndexError, ValueError):
                continue
            types.setdefault((int(major), int(minor)), fs_type)
    return types
