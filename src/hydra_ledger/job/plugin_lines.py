"""Hydra's own launchers and sweepers are released with hydra-core, one line each: a plugin of
another line than the core is named with the pins that work, before it fails mid-sweep.

pip mixes the lines on its own: the plugins require ``hydra-core>=1.1.0.dev7``, a pre-release
specifier, so ``pip install hydra-ledger hydra-optuna-sweeper`` takes hydra-core 1.4.0rc3 with
the sweeper 1.3.0, which then crashes inside Optuna ("Key 'infer_relative_search_space' not in
'SamplerConfig'").
"""
from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable

# The pins that install one consistent line, as docs/recording.md gives them.
PINS = {
    "1.3": "'hydra-core>=1.3.2,<1.4' and the plugins' 1.3-line releases (hydra-optuna-sweeper==1.3.0, "
           "hydra-joblib-launcher==1.2.0, hydra-submitit-launcher==1.2.0)",
    "1.4": "'hydra-core==1.4.0rc3' with the plugins of the same version (hydra-optuna-sweeper==1.4.0rc3, "
           "hydra-joblib-launcher==1.4.0rc3, hydra-submitit-launcher==1.4.0rc3)",
}
_PLUGIN_MODULE = re.compile(r"hydra_plugins\.(hydra_[a-z0-9_]+?_(?:launcher|sweeper))\.")


def line_of(version: str) -> str:
    """The Hydra line a hydra-core or plugin version belongs to: ``"1.3"`` (up to 1.3.x), or ``"1.4"``.

    The plugins' stable releases lag the core's numbers (the joblib launcher of the 1.3 line is
    1.2.0), so everything before 1.4 is one line.
    """
    release = re.match(r"(\d+)\.(\d+)", version)
    if release is None:
        return version
    major, minor = int(release.group(1)), int(release.group(2))
    return "1.3" if (major, minor) < (1, 4) else f"{major}.{minor}"


def mismatch(core_version: str, targets: Iterable[str | None]) -> str | None:
    """A warning naming the launcher or sweeper (by ``_target_``) of another line than hydra-core, or None."""
    core = line_of(core_version)
    for target in targets:
        found = _PLUGIN_MODULE.match(target or "")
        if found is None:
            continue
        dist = found.group(1).replace("_", "-")
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        if line_of(version) != core:
            return (f"hydra-ledger: {dist} {version} belongs to the Hydra {line_of(version)} line but hydra-core is "
                    f"{core_version}; Hydra's plugins do not work across lines (the Optuna sweeper crashes). "
                    f"Install one line: {PINS.get(core, PINS['1.3'])}, or {PINS['1.3' if core != '1.3' else '1.4']}")
    return None
