"""A temporary git worktree holding the code of a recorded run: commit + patch + untracked files.

``git worktree add --detach`` checks the commit out into a new directory; the user's
working tree, branch, index and stash are never touched. The worktree is removed on
exit, also when the rerun fails.
"""
from __future__ import annotations

import contextlib
import logging
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hydra_ledger.untracked import restore_untracked

log = logging.getLogger(__name__)


class WorktreeError(RuntimeError):
    """The recorded code cannot be checked out; the message says why and what to do."""


@dataclass
class CodeSnapshot:
    """What to check out: a commit of ``repo``, an optional patch, optional saved untracked files."""

    repo: Path
    commit: str
    patch: Path | None = None
    untracked_dir: Path | None = None
    untracked: Sequence[str] = field(default_factory=list)

    def commands(self, where: str = "<tmp>/worktree") -> list[str]:
        """The shell commands a checkout runs, for ``--dry-run``."""
        q = shlex.quote
        cmds = [f"git -C {q(str(self.repo))} worktree add --detach {q(where)} {self.commit}"]
        if self.patch is not None:
            cmds.append(f"git -C {q(where)} apply --binary --whitespace=nowarn {q(str(self.patch))}")
        if self.untracked:
            cmds.append(f"cp -R {q(str(self.untracked_dir))}/. {q(where)}/  # {len(self.untracked)} untracked file(s)")
        return cmds


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise WorktreeError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout


@contextlib.contextmanager
def checked_out(snapshot: CodeSnapshot) -> Iterator[Path]:
    """Yield the root of a temporary worktree with the snapshot's code; remove it afterwards."""
    if not (snapshot.repo / ".git").exists():
        raise WorktreeError(f"no git repository at {snapshot.repo} (recorded git root); "
                            "rerun from a clone of it, or with --current-code")
    probe = subprocess.run(["git", "-C", str(snapshot.repo), "cat-file", "-e", f"{snapshot.commit}^{{commit}}"],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        raise WorktreeError(f"commit {snapshot.commit} is not in the repository {snapshot.repo} "
                            "(fetch it, e.g. 'git fetch --all', or rerun with --current-code)")
    tmp = Path(tempfile.mkdtemp(prefix="hydra-ledger-rerun-"))
    where = tmp / "worktree"
    added = False
    try:
        _git(snapshot.repo, "worktree", "add", "--detach", str(where), snapshot.commit)
        added = True
        if snapshot.patch is not None:
            _git(where, "apply", "--binary", "--whitespace=nowarn", str(snapshot.patch.resolve()))
        if snapshot.untracked and snapshot.untracked_dir is not None:
            restore_untracked(snapshot.untracked_dir, snapshot.untracked, where)
        yield where
    finally:
        if added:
            try:
                _git(snapshot.repo, "worktree", "remove", "--force", str(where))
            except WorktreeError as exc:
                log.warning("%s", exc)
        shutil.rmtree(tmp, ignore_errors=True)
        # a worktree dir removed by other means leaves bookkeeping behind in .git/worktrees
        subprocess.run(["git", "-C", str(snapshot.repo), "worktree", "prune"], capture_output=True, check=False)
