"""The hash cache on its own: concurrent jobs hash a file once; a changed tree is hashed again."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hydra_ledger.job.inputs import HashStats, fingerprint_path

HASH_ONE = """
import json, sys
from pathlib import Path
from hydra_ledger.job.inputs import HashStats, fingerprint_path
stats = HashStats()
entry = fingerprint_path(sys.argv[1], stats, Path(sys.argv[2]))
print(json.dumps({"hash": entry["hash"], **stats.as_dict()}))
"""


def test_two_processes_starting_together_hash_the_file_once(tmp_path: Path):
    data = tmp_path / "data.bin"
    with open(data, "wb") as f:
        f.truncate(256 << 20)
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-c", HASH_ONE, str(data), str(cache)], stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert len({r["hash"] for r in results}) == 1
    assert sorted((r["files_hashed"], r["cache_hits"]) for r in results) == [(0, 1), (1, 0)]  # one waited


def test_a_changed_file_changes_the_tree_hash(tmp_path: Path):
    tree, cache = tmp_path / "tree", tmp_path / "cache"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    first = fingerprint_path(tree, HashStats(), cache)
    stats = HashStats()
    assert fingerprint_path(tree, stats, cache) == first
    assert (stats.files_hashed, stats.cache_hits) == (0, 1)
    (tree / "sub" / "b.txt").write_text("B!")  # size and mtime change; the dir's own mtime does not
    stats = HashStats()
    second = fingerprint_path(tree, stats, cache)
    assert second["hash"] != first["hash"]
    assert (second["size"], second["files"]) == (3, 2)
    assert (stats.files_hashed, stats.cache_hits) == (1, 1)  # only b.txt read again; a.txt from the cache
    assert fingerprint_path(tmp_path / "nothing", HashStats(), cache) == {
        "path": str(tmp_path / "nothing"), "kind": "missing", "hash": None}
