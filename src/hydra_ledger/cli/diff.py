"""``hydra-ledger diff RUN_A RUN_B``: what differs between two runs, section by section."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from hydra_ledger.cli._output import colour, dumps_json, printable, text, use_colour
from hydra_ledger.cli.show import _packages, add_run_argument, resolve
from hydra_ledger.record.flatten import flatten

EXAMPLE = """\
Examples:
  hydra-ledger diff 3f2a9c 81be07
  hydra-ledger diff multirun/2024-05-01/12-00-00/0 multirun/2024-05-01/12-00-00/1 --format json"""

_MISSING = object()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="what differs between two runs: config, choices, overrides, git, environment, summary",
        description="Compare two runs section by section: resolved config (added, removed, changed keys), "
                    "choices and overrides, git (commits between them, patches), environment (python and "
                    "package versions), summary (with deltas).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_argument(parser, "run_a")
    add_run_argument(parser, "run_b")
    parser.add_argument("--format", "-f", choices=["text", "json"], default="text",
                        help="text for people (default) or JSON")
    parser.set_defaults(func=run)


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{"added": [...], "removed": [...], "changed": [...]}`` of two flat mappings."""
    out: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "changed": []}
    for key in list(dict.fromkeys([*a, *b])):
        va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
        if va is _MISSING:
            out["added"].append({"key": key, "b": vb})
        elif vb is _MISSING:
            out["removed"].append({"key": key, "a": va})
        elif json.dumps(va, sort_keys=True, default=str) != json.dumps(vb, sort_keys=True, default=str):
            item: dict[str, Any] = {"key": key, "a": va, "b": vb}
            if _number(va) and _number(vb):
                item["delta"] = vb - va
            out["changed"].append(item)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def differences(paths_a: Any, rec_a: dict[str, Any], paths_b: Any, rec_b: dict[str, Any]) -> dict[str, Any]:
    """Every section of the comparison as plain data (what ``--format json`` prints)."""
    host_a, host_b = rec_a.get("host") or {}, rec_b.get("host") or {}
    git_a, git_b = rec_a.get("git") or {}, rec_b.get("git") or {}
    git_keys = ("commit", "branch", "dirty", "remote", "root")
    patch_a = paths_a.patch.read_bytes() if paths_a.patch.exists() else b""
    patch_b = paths_b.patch.read_bytes() if paths_b.patch.exists() else b""
    return {
        "a": {"run_id": rec_a.get("run_id"), "path": str(paths_a.job_dir)},
        "b": {"run_id": rec_b.get("run_id"), "path": str(paths_b.job_dir)},
        "config": compare(flatten(rec_a.get("config") or {}), flatten(rec_b.get("config") or {})),
        "choices": compare(rec_a.get("choices") or {}, rec_b.get("choices") or {}),
        # input data fingerprints (hydra.callbacks.ledger.inputs): which data changed
        "inputs": compare(_inputs(rec_a), _inputs(rec_b)),
        "overrides": {
            "only_a": [o for o in rec_a.get("overrides") or [] if o not in (rec_b.get("overrides") or [])],
            "only_b": [o for o in rec_b.get("overrides") or [] if o not in (rec_a.get("overrides") or [])],
        },
        "status": compare({"status": rec_a.get("status")}, {"status": rec_b.get("status")}),
        "git": {
            **compare({k: git_a.get(k) for k in git_keys}, {k: git_b.get(k) for k in git_keys}),
            "commits": commits_between(git_a, git_b),
            "patch_changed": patch_a != patch_b,
        },
        "environment": compare(
            {"python": host_a.get("python"), "platform": host_a.get("platform"),
             **{f"env.{k}": v for k, v in (host_a.get("env") or {}).items()}},
            {"python": host_b.get("python"), "platform": host_b.get("platform"),
             **{f"env.{k}": v for k, v in (host_b.get("env") or {}).items()}},
        ),
        "packages": compare(_packages(paths_a.packages), _packages(paths_b.packages)),
        "summary": compare(rec_a.get("summary") or {}, rec_b.get("summary") or {}),
    }


def _inputs(record: dict[str, Any]) -> dict[str, Any]:
    """Each input's path, existence and content hash; size and mtime changes show in the hash."""
    out: dict[str, Any] = {}
    for key, info in (record.get("inputs") or {}).items():
        if isinstance(info, dict):
            for field in ("path", "kind", "hash"):
                if field in info:
                    out[f"{key}.{field}"] = info[field]
    return out


def commits_between(git_a: dict[str, Any], git_b: dict[str, Any]) -> list[str]:
    """``git log --oneline`` from A's commit to B's (or back), when the repo is still there."""
    ca, cb, root = git_a.get("commit"), git_b.get("commit"), git_b.get("root") or git_a.get("root")
    if not ca or not cb or ca == cb or not root:
        return []
    for rng in (f"{ca}..{cb}", f"{cb}..{ca}"):
        try:
            proc = subprocess.run(["git", "-C", str(root), "log", "--oneline", "--no-decorate", rng],
                                  capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return []
        if proc.returncode != 0:
            return []
        lines = proc.stdout.splitlines()
        if lines:
            return lines if rng.startswith(ca) else [f"(B is older) {line}" for line in lines]
    return []


def run(args: argparse.Namespace) -> int:
    paths_a, rec_a = resolve(args.run_a, args.roots)
    paths_b, rec_b = resolve(args.run_b, args.roots)
    diff = differences(paths_a, rec_a, paths_b, rec_b)
    if args.format == "json":
        print(dumps_json(diff, indent=1, default=str))
        return 0
    print(render_text(diff, use_colour(sys.stdout)), end="")
    return 0


def _section_lines(changes: dict[str, list[dict[str, Any]]], coloured: bool) -> list[str]:
    lines = []
    for item in changes["changed"]:
        delta = f"  (Δ {text(item['delta'], digits=6)})" if "delta" in item else ""
        lines.append(f"  ~ {printable(str(item['key']))}: {text(item['a'], digits=10)} -> "
                     f"{text(item['b'], digits=10)}{delta}")
    for item in changes["removed"]:
        lines.append(colour(f"  - {printable(str(item['key']))}: {text(item['a'], digits=10)}", "red", coloured))
    for item in changes["added"]:
        lines.append(colour(f"  + {printable(str(item['key']))}: {text(item['b'], digits=10)}", "green", coloured))
    return lines


def render_text(diff: dict[str, Any], coloured: bool) -> str:
    """The diff for people: recorded values, keys, overrides and commit subjects escaped (:func:`printable`)."""
    out = [printable(f"A: {diff['a']['run_id']}  {diff['a']['path']}"),
           printable(f"B: {diff['b']['run_id']}  {diff['b']['path']}")]
    same: list[str] = []

    def section(title: str, lines: list[str]) -> None:
        if lines:
            out.extend(["", colour(title, "bold", coloured), *lines])
        else:
            same.append(title)

    section("status", _section_lines(diff["status"], coloured))
    section("config", _section_lines(diff["config"], coloured))
    section("choices", _section_lines(diff["choices"], coloured))
    section("inputs", _section_lines(diff["inputs"], coloured))
    overrides = diff["overrides"]
    section("overrides", [*(colour(f"  - {printable(str(o))}", "red", coloured) for o in overrides["only_a"]),
                          *(colour(f"  + {printable(str(o))}", "green", coloured) for o in overrides["only_b"])])
    git = diff["git"]
    git_lines = _section_lines(git, coloured)
    git_lines += [f"  commit {printable(line)}" for line in git["commits"]]
    if git["patch_changed"]:
        git_lines.append("  uncommitted patches differ (hydra-ledger show RUN --patch prints each)")
    section("git", git_lines)
    section("environment", _section_lines(diff["environment"], coloured))
    section("packages", _section_lines(diff["packages"], coloured))
    section("summary", _section_lines(diff["summary"], coloured))
    if same:
        out.extend(["", f"same: {', '.join(same)}"])
    return "\n".join(out) + "\n"
