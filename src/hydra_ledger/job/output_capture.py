"""Tee of the job's stdout and stderr, at the file-descriptor level, into ``.ledger/``.

With ``hydra.callbacks.ledger.capture_output=true`` the job process (``on_job_start``)
points fds 1 and 2 at pipes; a reader thread per pipe copies every byte to the original
destination (the terminal, or submitit's log files) and to ``.ledger/stdout.log`` /
``stderr.log``. Being at the fd level, it also catches C extensions and subprocesses.
Progress-bar carriage returns are collapsed in the files (the terminal gets every byte).
``on_job_end`` — or process exit, when Hydra 1.3 calls no end hook — restores the fds.
"""
from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

# An unterminated line (a progress bar redrawn with \r for ever) is flushed at this length.
_MAX_PENDING = 1 << 20
_JOIN_TIMEOUT_S = 2.0


class LineCollapser:
    """Writes bytes to ``sink`` with each line reduced to what follows its last carriage return."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.pending = b""

    def feed(self, data: bytes) -> None:
        text = self.pending + data
        lines = text.split(b"\n")
        self.pending = lines.pop()
        if lines:
            self.sink.write(b"".join(_collapse(line) + b"\n" for line in lines))
        # keep only the latest redraw; a \r as the very last byte may be half of a \r\n
        cut = self.pending.rfind(b"\r", 0, len(self.pending) - 1)
        if cut >= 0:
            self.pending = self.pending[cut + 1:]
        if len(self.pending) > _MAX_PENDING:
            self.sink.write(self.pending)
            self.pending = b""
        self.sink.flush()

    def close(self) -> None:
        if self.pending:
            self.sink.write(_collapse(self.pending))
            self.pending = b""
        self.sink.flush()


def _collapse(line: bytes) -> bytes:
    line = line.rstrip(b"\r")  # \r\n line ends
    cut = line.rfind(b"\r")
    return line[cut + 1:] if cut >= 0 else line


class _Tee:
    """One captured fd: the saved original, the pipe, the reader thread, the log file."""

    def __init__(self, fd: int, log_path: Path) -> None:
        self.fd = fd
        self.log_path = log_path
        self.saved = os.dup(fd)
        read_end, write_end = os.pipe()
        self.read_end = read_end
        self.file = open(log_path, "ab", buffering=0)  # noqa: SIM115 - closed by the reader thread
        self.collapser = LineCollapser(self.file)
        self.thread = threading.Thread(target=self._pump, name=f"hydra-ledger-tee-{fd}", daemon=True)
        self.thread.start()
        os.dup2(write_end, fd)
        os.close(write_end)

    def _pump(self) -> None:
        # never log from here: a log line to a captured stream would feed this very pipe
        terminal_ok = True
        while True:
            try:
                data = os.read(self.read_end, 65536)
            except OSError:
                break
            if not data:
                break
            if terminal_ok:
                try:
                    _write_all(self.saved, data)
                except OSError:  # the terminal went away (closed pipe): keep the file going
                    terminal_ok = False
            try:
                self.collapser.feed(data)
            except (OSError, ValueError):
                pass
        try:
            self.collapser.close()
            self.file.close()
        except (OSError, ValueError):
            pass
        os.close(self.read_end)

    def stop(self) -> None:
        """Point the fd back at its original; the reader sees end-of-file once nobody else
        (a subprocess still running in the background) holds the pipe."""
        os.dup2(self.saved, self.fd)
        self.thread.join(_JOIN_TIMEOUT_S)
        if self.thread.is_alive():
            # a background process inherited the pipe: leave the reader (and `saved`) to it
            return
        os.close(self.saved)


_active: list[_Tee] = []
_lock = threading.Lock()
_atexit_registered = False


def start(stdout_log: Path, stderr_log: Path) -> None:
    """Tee fds 1 and 2 into the two files (appending); stops an earlier capture first.
    A failure is one warning: the job's output then simply is not captured."""
    global _atexit_registered
    stop()
    _flush_python_streams()
    with _lock:
        try:
            stdout_log.parent.mkdir(parents=True, exist_ok=True)
            _active.append(_Tee(1, stdout_log))
            _active.append(_Tee(2, stderr_log))
        except OSError as exc:
            _stop_locked()
            log.warning("hydra-ledger: cannot capture the job's output into %s: %s", stdout_log.parent, exc)
            return
        if not _atexit_registered:
            _atexit_registered = True
            atexit.register(stop)


def stop() -> None:
    """Restore fds 1 and 2 and finish the files; does nothing when not capturing."""
    with _lock:
        _stop_locked()


def _stop_locked() -> None:
    if not _active:
        return
    _flush_python_streams()
    while _active:
        tee = _active.pop()
        try:
            tee.stop()
        except OSError as exc:
            log.warning("hydra-ledger: cannot restore fd %d after capturing output: %s", tee.fd, exc)


def _flush_python_streams() -> None:
    # Python's own buffers first, so that what was printed lands on the right side of the switch
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
