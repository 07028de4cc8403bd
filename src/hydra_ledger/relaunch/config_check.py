"""Checking a rerun's config before launching it: compose without running, compare.

Hydra composes and prints the resolved job config without running the task
(``--cfg job --resolve``); that is compared key by key with the recorded resolved config.
Values that legitimately change between runs (``${now:}``, ``${hydra:...}`` such as output
dirs, ``${oc.env:...}``) are found in the raw ``.hydra/config.yaml`` and listed as ignored.
"""
from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hydra_ledger.errors import LedgerError
from hydra_ledger.record.flatten import flatten
from hydra_ledger.record.redact import REDACTED, Redactor

# Resolvers whose value differs from one run to the next by design.
VOLATILE_RESOLVERS = ("now", "hydra", "oc.env")
_VOLATILE = re.compile(r"\$\{(" + "|".join(re.escape(r) for r in VOLATILE_RESOLVERS) + r"):")
_UNKNOWN_KEY = re.compile(r"Could not override '([^']+)'|Key '([^']+)' is not in struct")


class ComposeError(LedgerError, RuntimeError):
    """Hydra could not compose the config; ``removed`` names overridden keys that no longer exist."""

    def __init__(self, message: str, removed: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.removed = list(removed)


@dataclass
class ConfigDiff:
    """Differences between the recorded and the newly composed resolved config (dotted keys)."""

    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    added: dict[str, Any] = field(default_factory=dict)
    removed: dict[str, Any] = field(default_factory=dict)
    intended: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.changed or self.added or self.removed)

    def lines(self) -> list[str]:
        """A readable report: one line per key, old -> new."""
        out = []
        for key, (old, new) in self.changed.items():
            out.append(f"  changed   {key}: {old!r} -> {new!r}")
        for key, new in self.added.items():
            out.append(f"  added     {key}: (absent) -> {new!r}")
        for key, old in self.removed.items():
            out.append(f"  removed   {key}: {old!r} -> (absent)")
        for key, (old, new) in self.intended.items():
            out.append(f"  intended  {key}: {old!r} -> {new!r}  (extra override)")
        if self.ignored:
            out.append(f"  ignored (change between runs by design): {', '.join(self.ignored)}")
        return out


def compose(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Run the app with ``--cfg job --resolve`` (composes, runs no task) and parse the printed config."""
    proc = subprocess.run([*argv, "--cfg", "job", "--resolve"], cwd=cwd, env=dict(env),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        text = proc.stderr.strip() or proc.stdout.strip()
        removed = [a or b for a, b in _UNKNOWN_KEY.findall(text)]
        raise ComposeError(f"the app could not compose its config (exit {proc.returncode}):\n{text}", removed)
    try:
        value = yaml.safe_load(proc.stdout) or {}
    except yaml.YAMLError as exc:
        raise ComposeError(f"cannot parse the config the app printed with --cfg job: {exc}") from None
    if not isinstance(value, dict):
        raise ComposeError(f"the app printed no config with --cfg job, got: {proc.stdout[:200]!r}")
    return value


def composed_value(argv: Sequence[str], key: str, cwd: Path, env: Mapping[str, str]) -> str:
    """The value of ``key`` (e.g. ``hydra.run.dir``) as the app composes and resolves it, without
    running it (``--cfg all --package KEY --resolve`` prints a leaf value as it is)."""
    proc = subprocess.run([*argv, "--cfg", "all", "--package", key, "--resolve"], cwd=cwd, env=dict(env),
                          capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        text = proc.stderr.strip() or proc.stdout.strip()
        raise ComposeError(f"the app could not resolve {key} (exit {proc.returncode}):\n{text}")
    return lines[-1]


def volatile_keys(raw_config: Path | None) -> set[str]:
    """Dotted keys whose raw (unresolved) value uses a volatile resolver such as ``${now:}``."""
    if raw_config is None or not raw_config.is_file():
        return set()
    try:
        raw = yaml.safe_load(raw_config.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return set()
    return {k for k, v in flatten(raw).items() if _VOLATILE.search(str(v))}


def _equal(key: str, old: Any, new: Any, redactor: Redactor) -> bool:
    """Whether a recorded value matches the live one. The record holds values redacted at write
    time (``***``, ``postgres://u:***@h/db``, ``Bearer ***``): the live value is redacted the same
    way before comparing, so an untampered secret compares equal and is never shown."""
    if old == REDACTED:  # the record keeps no secret: nothing to compare
        return True
    if isinstance(old, bool) or isinstance(new, bool):
        return old is new
    if isinstance(old, str) and REDACTED in old and isinstance(new, str):
        return old == new or old == redactor.value(key, new)
    return bool(old == new)


def _default_redactor() -> Redactor:
    from hydra_plugins.hydra_ledger import DEFAULT_REDACT_KEYS

    return Redactor(DEFAULT_REDACT_KEYS)


def _under(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def compare(
    recorded: Mapping[str, Any],
    composed: Mapping[str, Any],
    ignore: set[str] = frozenset(),  # type: ignore[assignment]
    intended: Sequence[str] = (),
    redactor: Redactor | None = None,
) -> ConfigDiff:
    """Compare two resolved configs; keys under ``intended`` prefixes are reported, not counted.

    The diff holds values as ``redactor`` (default: the default secret words) shows them: a
    composed config holds live secrets, and a diff is printed."""
    redactor = redactor or _default_redactor()
    old, new = flatten(dict(recorded)), flatten(dict(composed))
    diff = ConfigDiff()

    def shown(key: str, value: Any) -> Any:
        return redactor.value(key, value)

    for key in sorted(old.keys() | new.keys()):
        if _under(key, sorted(ignore)):
            diff.ignored.append(key)
            continue
        if key in old and key in new and _equal(key, old[key], new[key], redactor):
            continue
        if _under(key, intended):
            diff.intended[key] = (shown(key, old.get(key, "(absent)")), shown(key, new.get(key, "(absent)")))
        elif key not in new:
            diff.removed[key] = shown(key, old[key])
        elif key not in old:
            diff.added[key] = shown(key, new[key])
        else:
            diff.changed[key] = (shown(key, old[key]), shown(key, new[key]))
    return diff


def override_keys(overrides: Sequence[str]) -> list[str]:
    """The config keys that overrides set: ``+a.b=1`` -> ``a.b``, ``db=pg`` -> ``db``."""
    keys = []
    for text in overrides:
        key = text.split("=", 1)[0].lstrip("+~").split("@", 1)[0]
        keys.append(key.replace("/", "."))
    return keys
