"""Host, Python and installed-package facts of the job process."""
from __future__ import annotations

import fnmatch
import functools
import getpass
import os
import platform
import re
import socket
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hydra_ledger.record.redact import redact_url


@functools.lru_cache(maxsize=1)
def _static_host() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = None
    cpus: int | None
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count()
    return {
        "hostname": socket.gethostname(),
        "user": user,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "cpu_count": cpus,
    }


def capture_host(env_patterns: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Hostname, user, pid and parent pid, platform, Python, CPUs and the allow-listed environment variables."""
    env = os.environ if environ is None else environ
    matches = _env_matcher(tuple(env_patterns))
    # names first: os.environ decodes each value it is asked for, and few are chosen
    chosen = ((k, env.get(k)) for k in sorted(k for k in env if matches(k)))
    selected = {k: redact_url(v) for k, v in chosen if v is not None}
    return {**_static_host(), "pid": os.getpid(), "ppid": os.getppid(), "env": selected}


@functools.lru_cache(maxsize=8)
def _env_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """One compiled regex for all shell-style patterns (fnmatch per variable and pattern is slow)."""
    if not patterns:
        return lambda name: False
    regex = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))
    return lambda name: regex.match(name) is not None


_DIST_DIR = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+?)(?:-py\d.*)?\.(?:dist-info|egg-info)$")


@functools.lru_cache(maxsize=1)
def installed_packages() -> dict[str, str]:
    """``{distribution: version}`` for everything importable, from dist-info directory names.

    Reading the directory names of ``sys.path`` entries costs ~1 ms; reading every
    distribution's METADATA (``importlib.metadata``) costs ~90 ms for 50 packages.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for name in names:
            match = _DIST_DIR.match(name)
            if match:
                dist = match.group("name").replace("_", "-").lower()
                found.setdefault(dist, match.group("version"))
    return dict(sorted(found.items()))
