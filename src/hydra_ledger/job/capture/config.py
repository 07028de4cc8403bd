"""The resolved task config: interpolations and resolvers evaluated, failures recorded, not raised."""
from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, Node, OmegaConf
from omegaconf.errors import MissingMandatoryValue

MISSING = "???"


def resolve_task_config(config: DictConfig) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """Resolve every key of the task config (all but ``hydra``).

    Returns ``(resolved, missing_keys, unresolved)``: ``???`` values stay ``"???"`` and are
    listed in ``missing_keys``; a value whose interpolation fails keeps its raw text and
    ``unresolved`` maps its dotted key to the error.
    """
    unresolved: dict[str, str] = {}
    resolved = {str(k): _resolve(config, k, str(k), unresolved) for k in config if k != "hydra"}
    missing: list[str] = []
    _find_missing(resolved, "", missing)
    return resolved, missing, unresolved


def _resolve(parent: DictConfig | ListConfig, key: Any, dotted: str, unresolved: dict[str, str]) -> Any:
    """Resolve one child; when that fails, descend so that only the failing leaves keep raw text."""
    try:
        value = parent[key]
    except MissingMandatoryValue:
        return MISSING
    except Exception as exc:  # noqa: BLE001 - e.g. ${oc.env:UNSET} or a resolver that raised
        unresolved[dotted] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        node = parent._get_node(key)
        return node._value() if isinstance(node, Node) else None
    if not isinstance(value, (DictConfig, ListConfig)):
        return value
    if value._is_missing():
        return MISSING
    if value._is_none():
        return None
    try:
        return OmegaConf.to_container(value, resolve=True)
    except Exception:  # noqa: BLE001 - some leaf fails: resolve key by key to find it
        if isinstance(value, DictConfig):
            return {str(k): _resolve(value, k, f"{dotted}.{k!s}", unresolved) for k in value}
        return [_resolve(value, i, f"{dotted}.{i}", unresolved) for i in range(len(value))]


def _find_missing(value: Any, prefix: str, out: list[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _find_missing(v, f"{prefix}{k}.", out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _find_missing(v, f"{prefix}{i}.", out)
    elif isinstance(value, str) and value == MISSING:
        out.append(prefix[:-1])
