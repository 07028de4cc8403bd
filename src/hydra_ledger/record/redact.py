"""Keeping secrets off disk: redacting secret-named config keys and credentials in URLs."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"

# A URL's scheme; its credentials are found by :func:`_userinfo_end`. Hydra's sweepers escape ':'
# in the overrides they pass to jobs (`db.url=mysql\\://bob\\:pw@h`), so a backslash may precede each ':'.
_URL_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*\\?://")
_WHITESPACE = re.compile(r"\s")

# An HTTP authorization value (a header copied into a config): "Bearer abc.def", "Basic dXNl..."
_AUTH_SCHEME = re.compile(r"(?i)\b(?P<scheme>bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}")


def _userinfo_end(segment: str) -> int:
    """Where the credentials of a URL end (the index of their '@') in ``segment``, the text after
    ``scheme://`` up to whitespace or the next URL; -1 when there are none.

    Passwords are often written unencoded, with '@' or '/' in them (``postgres://u:p@ss@h/db``,
    ``redis://:pa/ss@h:6379``): with a ``user:`` part, the credentials run to the last '@'. Without
    one, an '@' after the first '/', '?' or '#' is in the path or query (``https://h/?mail=a@b``)."""
    at = segment.rfind("@")
    if at <= 0:
        return -1
    user, colon, _ = segment[:at].partition(":")
    if colon and not any(c in user for c in "/?#"):
        return at
    cut = min((i for i in (segment.find(c) for c in "/?#") if i >= 0), default=len(segment))
    return segment.rfind("@", 0, cut)


def _redact_url_credentials(text: str) -> str:
    matches = list(_URL_SCHEME.finditer(text))
    out: list[str] = []
    pos = 0
    for i, match in enumerate(matches):
        start = match.end()
        if start <= pos:
            continue
        stop = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        space = _WHITESPACE.search(text, start, stop)
        segment = text[start:space.start() if space else stop]
        at = _userinfo_end(segment)
        if at <= 0:
            continue
        user, sep, _secret = segment[:at].partition(":")
        out += [text[pos:start], f"{user}:{REDACTED}" if sep else REDACTED, "@"]
        pos = start + at + 1
    return "".join(out) + text[pos:]


def redact_url(text: str) -> str:
    """Strip credentials from every URL in ``text`` (keeping the user name where there is one),
    and the credential of an HTTP authorization value (``Bearer <token>``)."""
    if "@" in text:
        text = _redact_url_credentials(text)
    if " " in text:
        text = _AUTH_SCHEME.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
    return text


# `key: value` inside an override's dict literal (Hydra's grammar: {a:1,b:{c:2}})
_DICT_ITEM = re.compile(r"(?<=[{,\s])(?P<key>[A-Za-z_][\w-]*)(?P<sep>\s*:\s*)(?P<value>[^,{}\[\]]+)")


# `key=value` or `key: value` in free text; the value runs to whitespace (or a quote).
_TEXT_PAIR = re.compile(r"(?P<key>[A-Za-z_][\w.-]*)(?P<sep>\s*[=:]\s*)(?P<value>[^\s'\",]+)")


class Redactor:
    """Redacts values whose key names a secret (case-insensitive word match) and URL credentials."""

    def __init__(self, secret_keys: Iterable[str]) -> None:
        words = [re.escape(str(k).lower()) for k in secret_keys if str(k)]
        # A key is secret when it ends with a secret word (or its plural), after a separator
        # (_ - . or camelCase): db_password, apiKey, GITHUB_TOKEN, auth.secret, api_tokens.
        self._pattern = re.compile(rf"(^|[^a-z0-9])({'|'.join(words)})s?$") if words else None
        self._known: dict[str, bool] = {}

    def is_secret_key(self, key: str) -> bool:
        known = self._known.get(key)  # summary and metric keys repeat at every step
        if known is None:
            known = self._known[key] = self._match(key)
        return known

    def _match(self, key: str) -> bool:
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
            return self.mapping(value)
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

    def mapping(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """Redact a mapping's values by their keys (and nested containers below them)."""
        return {k: self.value(str(k), v) for k, v in value.items()}

    def overrides(self, texts: Iterable[str]) -> list[str]:
        return [self.override(str(t)) for t in texts]

    def text(self, text: str) -> str:
        """Redact free text such as an app's error output before it is shown: URL credentials,
        authorization values, and ``key=value`` or ``key: value`` whose key names a secret."""
        def _pair(match: re.Match[str]) -> str:
            if self.is_secret_key(match["key"].rsplit(".", 1)[-1]) and not _is_setting(_scalar(match["value"])):
                return f"{match['key']}{match['sep']}{REDACTED}"
            return match[0]

        return redact_url(_TEXT_PAIR.sub(_pair, text))


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
