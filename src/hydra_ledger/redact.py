"""Keeping secrets off disk: redacting secret-named config keys and credentials in URLs."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"

# scheme://user:password@host -> scheme://user:***@host ; scheme://token@host -> scheme://***@host.
# Hydra's sweepers escape ':' in the overrides they pass to jobs (`db.url=mysql\://bob\:pw@h`),
# so a backslash may precede each ':'.
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*\\?://)(?P<userinfo>[^/@\s:\\]+\\?(?::[^/@\s]*)?)@"
)


# An HTTP authorization value (a header copied into a config): "Bearer abc.def", "Basic dXNl..."
_AUTH_SCHEME = re.compile(r"(?i)\b(?P<scheme>bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}")


def redact_url(text: str) -> str:
    """Strip credentials from every URL in ``text`` (keeping the user name where there is one),
    and the credential of an HTTP authorization value (``Bearer <token>``)."""

    def _sub(match: re.Match[str]) -> str:
        user, sep, _secret = match.group("userinfo").partition(":")
        kept = f"{user}:{REDACTED}" if sep else REDACTED
        return f"{match.group('scheme')}{kept}@"

    if "@" in text:
        text = _URL_CREDENTIALS.sub(_sub, text)
    if " " in text:
        text = _AUTH_SCHEME.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
    return text


# `key: value` inside an override's dict literal (Hydra's grammar: {a:1,b:{c:2}})
_DICT_ITEM = re.compile(r"(?<=[{,\s])(?P<key>[A-Za-z_][\w-]*)(?P<sep>\s*:\s*)(?P<value>[^,{}\[\]]+)")


class Redactor:
    """Redacts values whose key names a secret (case-insensitive word match) and URL credentials."""

    def __init__(self, secret_keys: Iterable[str]) -> None:
        words = [re.escape(str(k).lower()) for k in secret_keys if str(k)]
        # A key is secret when it ends with a secret word (or its plural), after a separator
        # (_ - . or camelCase): db_password, apiKey, GITHUB_TOKEN, auth.secret, api_tokens.
        self._pattern = re.compile(rf"(^|[^a-z0-9])({'|'.join(words)})s?$") if words else None

    def is_secret_key(self, key: str) -> bool:
        if self._pattern is None:
            return False
        snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()
        return bool(self._pattern.search(snake)) or bool(self._pattern.search(key.lower()))

    def value(self, key: str, value: Any) -> Any:
        """Redact one value given its own key name.

        Numbers and booleans are kept even under a secret-like name: they are settings
        (``max_tokens: 512``, ``num_passes: 3``), not credentials.
        """
        if self.is_secret_key(key) and not _is_setting(value):
            return REDACTED
        return self.tree(value)

    def tree(self, value: Any) -> Any:
        """Redact a nested config container (dicts and lists)."""
        if isinstance(value, Mapping):
            return {k: self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        if isinstance(value, str):
            return redact_url(value)
        return value

    def override(self, text: str) -> str:
        """Redact an override or command-line word such as ``db.password=hunter2``."""
        key, sep, val = text.partition("=")
        if sep and self.is_secret_key(key.lstrip("+~").rsplit(".", 1)[-1].rsplit("/", 1)[-1]) \
                and not _is_setting(_scalar(val)):
            return f"{key}={REDACTED}"
        if sep and "{" in val:  # a dict value: db={user:alice,password:hunter2}
            val = _DICT_ITEM.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}" if self.is_secret_key(m["key"])
                                 else m[0], val)
            return redact_url(f"{key}={val}")
        return redact_url(text)

    def overrides(self, texts: Iterable[str]) -> list[str]:
        return [self.override(str(t)) for t in texts]


def _is_setting(value: Any) -> bool:
    """Values that cannot be a credential: missing, numbers, booleans."""
    return value is None or value == "???" or isinstance(value, (bool, int, float))


def _scalar(text: str) -> Any:
    """An override's value as a number or boolean when it is one (``512``, ``1e-3``, ``true``)."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
