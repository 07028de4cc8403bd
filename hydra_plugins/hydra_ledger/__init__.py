"""Hydra plugin registration for hydra-ledger.

Hydra imports every module under ``hydra_plugins`` at every app start, so this module
imports nothing heavy: only the dataclass config and Hydra's ConfigStore.
No ``from __future__ import annotations``: Hydra executes plugin modules without adding
them to ``sys.modules``, and dataclasses then cannot resolve string annotations.
"""
from dataclasses import dataclass, field

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.config_store import ConfigStore
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import DictConfig, OmegaConf

DEFAULT_REDACT_KEYS = [
    "password",
    "passwd",
    "pass",
    "pwd",
    "passphrase",
    "authorization",
    "secret",
    "token",
    "api_key",
    "apikey",
    "credential",
    "credentials",
    "private_key",
    "secret_key",
    "access_key",
]

DEFAULT_ENV_VARS = [
    "SLURM_*",
    "SUBMITIT_*",
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "PYTHONHASHSEED",
    "CONDA_DEFAULT_ENV",
    "VIRTUAL_ENV",
]


@dataclass
class LedgerConf:
    """Options of the ledger callback, set as ``hydra.callbacks.ledger.<field>=...``."""

    _target_: str = "hydra_ledger.LedgerCallback"
    # Record nothing when false.
    enabled: bool = True
    # Seconds between heartbeats of a running job; a RUNNING record whose heartbeat is
    # older than max(3 * heartbeat_s, heartbeat_s + 5) loads as DIED.
    heartbeat_s: float = 10.0
    # Capture git state (commit, branch, dirty flag, patch, untracked files).
    git: bool = True
    # Largest uncommitted diff saved as .ledger/git.patch; a larger one is not saved.
    patch_max_bytes: int = 5_000_000
    # Write the uncommitted diff as .ledger/git.patch (it holds uncommitted secrets verbatim).
    # false: no patch; the record says so, and an exact rerun of a dirty run is then refused.
    save_patch: bool = True
    # Total size of the untracked (not ignored) files copied into .ledger/untracked/ for exact
    # reruns; files beyond it are not saved, nor are secret-like names (.env*, *.pem, *.key,
    # .netrc, .pgpass, kubeconfig, *.p12, credentials*, secrets*... see hydra_ledger.job.untracked).
    untracked_max_bytes: int = 5_000_000
    # More shell-style patterns of untracked files never to copy, matched against the file name
    # and the path relative to the repository root (e.g. ["*.vault", "conf/prod/*"]).
    untracked_exclude: list[str] = field(default_factory=list)
    # Secret words: a config key (or override, or environment variable) ending with one of them
    # (or its plural), case-insensitively, has its text value recorded as ***; numbers stay.
    # null means DEFAULT_REDACT_KEYS; [] redacts by name nothing. (Defaults are not spelled out
    # here: Hydra deep-copies this node for every job of a sweep, and long lists cost milliseconds.)
    redact_keys: list[str] | None = None
    # Environment variables recorded (shell-style patterns); all others are left out.
    # null means DEFAULT_ENV_VARS; [] records none.
    env_vars: list[str] | None = None
    # Record the versions of installed distributions in .ledger/packages.json.
    packages: bool = True
    # A free-text note and tags recorded on every job of this run or sweep.
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    # Config keys whose values are input files or directories: each is fingerprinted
    # (path, size, mtime, content hash; cached per user) into the record's `inputs`.
    inputs: list[str] = field(default_factory=list)
    # Tee the job's stdout/stderr (file-descriptor level) into .ledger/stdout.log and stderr.log.
    capture_output: bool = False
    # Mark the jobs as debug runs: recorded, but left out of load_runs() unless include_debug=True.
    debug: bool = False
    # Artifacts (files the job wrote in its output dir) up to this size get a content hash.
    artifact_hash_max_bytes: int = 50_000_000
    # Register the dir of each run and sweep for its project (in the repository's git dir, else
    # the user cache), so that a bare `hydra-ledger ls` anywhere in the project finds them.
    register: bool = True


# The plugin's node names this target: the same callback, whose options are checked strictly
# (an unknown option or a bad value stops the app, as a schema would). A target rather than a
# marker key beside it: every key of the node costs Hydra ~0.6 ms per job of a sweep (counted:
# bench/README.md).
STRICT_TARGET = "hydra_ledger.StrictLedgerCallback"
# The same for an explicit node (``_strict_: true`` beside ``_target_``), and for the records of
# earlier versions, whose plugin node carried it.
STRICT_OPTIONS_KEY = "_strict_"


def ledger_node() -> DictConfig:
    """The plugin's node: the (strict) callback's ``_target_`` and nothing else; the options of
    :class:`LedgerConf` keep their defaults in code unless set (``hydra.callbacks.ledger.note=...``).

    Hydra composes the config again for every job of a sweep, deep-copying and merging this
    node each time, and copies it into every job's ``.hydra/hydra.yaml``: each option spelled
    out here cost milliseconds per job, and a structured (dataclass) node more, as merging one
    re-validates every field. The callback checks the options instead (hydra_ledger.job.callback),
    with the same errors. The node is not in struct mode, so that an option set on the command
    line without ``+`` is added to it, and an unknown or misspelt one reaches that check and its
    message (with the valid names) rather than Hydra's generic "not in struct".
    """
    node = OmegaConf.create({"ledger": {"_target_": STRICT_TARGET}})
    OmegaConf.set_struct(node.ledger, False)
    return node


_store = ConfigStore.instance()
# `hydra/callbacks=ledger` (or `override hydra/callbacks: ledger`): replaces the group choice.
_store.store(group="hydra/callbacks", name="ledger", node=ledger_node(), provider="hydra-ledger")
# `+hydra/ledger=default` (or `- /hydra/ledger: default`): additive, keeps other callbacks.
_store.store(
    group="hydra/ledger",
    name="default",
    package="hydra.callbacks",
    node=ledger_node(),
    provider="hydra-ledger",
)


class LedgerSearchPathPlugin(SearchPathPlugin):
    """Entry point for Hydra >= 1.4 plugin discovery (``hydra.plugins``); changes no search path.

    Hydra 1.4 deprecates scanning the ``hydra_plugins`` namespace and warns for editable
    installs found that way; importing this module through the entry point registers the
    configs above. Hydra 1.3 ignores the entry point and finds this module by scanning.
    """

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        pass
