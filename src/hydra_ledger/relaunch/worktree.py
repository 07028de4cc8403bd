"""A temporary git worktree holding the code of a recorded run: commit + patch + untracked files.

``git worktree add --detach`` checks the commit out into a new directory; the user's
working tree, branch, index and stash are never touched. The worktree is removed on
exit, also when the rerun fails. Git runs through GitPython (a rerun is not a hot path;
the per-job capture in ``capture.git`` calls the git CLI directly to start fast).
"""
from __future__ import annotations

import contextlib
import logging
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import git

from hydra_ledger.errors import LedgerError
from hydra_ledger.job.untracked import object_path, restore_untracked

log = logging.getLogger(__name__)


class WorktreeError(LedgerError, RuntimeError):
    """The recorded code cannot be checked out; the message says why and what to do."""


@dataclass
class CodeSnapshot:
    """What to check out: a commit of ``repo``, an optional patch, optional saved untracked files."""

    repo: Path
    commit: str
    patch: Path | None = None
    untracked_dir: Path | None = None
    untracked: Sequence[str] = field(default_factory=list)
    untracked_objects: Mapping[str, str] = field(default_factory=dict)  # path -> sha256, in object_store
    object_store: Path | None = None

    def commands(self, where: str = "<tmp>/worktree") -> list[str]:
        """The shell commands a checkout runs, for ``--dry-run``."""
        q = shlex.quote
        cmds = [f"git -C {q(str(self.repo))} worktree add --detach {q(where)} {self.commit}"]
        if self.patch is not None:
            cmds.append(f"git -C {q(where)} apply --binary --whitespace=nowarn {q(str(self.patch))}")
        stored = [rel for rel in self.untracked if rel in self.untracked_objects]
        if len(stored) < len(self.untracked):
            cmds.append(f"cp -R {q(str(self.untracked_dir))}/. {q(where)}/  "
                        f"# {len(self.untracked) - len(stored)} untracked file(s)")
        cmds.extend(f"cp {q(str(object_path(self.object_store, self.untracked_objects[rel])))} {q(where + '/' + rel)}"
                    for rel in stored if self.object_store is not None)
        return cmds


def _git(repo: Path, command: str, *args: str) -> str:
    """``git <command> <args>`` in ``repo`` through GitPython; a failure is a WorktreeError naming
    the command, the dir and git's own message."""
    text = f"git {command} {' '.join(args)}"
    try:
        with git.Repo(repo) as handle:
            return str(getattr(handle.git, command.replace("-", "_"))(*args))
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise WorktreeError(f"{text} failed in {repo}: not a git repository ({exc})") from None
    except git.GitCommandError as exc:
        raise WorktreeError(f"{text} failed in {repo}: {_stderr(exc)}") from None


def _stderr(exc: git.GitCommandError) -> str:
    """Git's own message, without GitPython's ``stderr: '...'`` wrapping."""
    text = str(exc.stderr or "").strip()
    if text.startswith("stderr: '") and text.endswith("'"):
        text = text[len("stderr: '"):-1]
    return text.strip() or f"exit {exc.status}"


@contextlib.contextmanager
def checked_out(snapshot: CodeSnapshot) -> Iterator[Path]:
    """Yield the root of a temporary worktree with the snapshot's code; remove it afterwards."""
    if not (snapshot.repo / ".git").exists():
        raise WorktreeError(f"no git repository at {snapshot.repo} (recorded git root); "
                            "rerun from a clone of it, or with --current-code")
    try:
        _git(snapshot.repo, "cat-file", "-e", f"{snapshot.commit}^{{commit}}")
    except WorktreeError:
        raise WorktreeError(f"commit {snapshot.commit} is not in the repository {snapshot.repo} "
                            "(fetch it, e.g. 'git fetch --all', or rerun with --current-code)") from None
    tmp = Path(tempfile.mkdtemp(prefix="hydra-ledger-rerun-"))
    where = tmp / "worktree"
    added = False
    try:
        _git(snapshot.repo, "worktree", "add", "--detach", str(where), snapshot.commit)
        added = True
        if snapshot.patch is not None:
            _git(where, "apply", "--binary", "--whitespace=nowarn", str(snapshot.patch.resolve()))
        if snapshot.untracked and snapshot.untracked_dir is not None:
            restore_untracked(snapshot.untracked_dir, snapshot.untracked, where, snapshot.untracked_objects,
                              snapshot.object_store)
        yield where
    finally:
        if added:
            try:
                _git(snapshot.repo, "worktree", "remove", "--force", str(where))
            except WorktreeError as exc:
                log.warning("%s", exc)
        shutil.rmtree(tmp, ignore_errors=True)
        # a worktree dir removed by other means leaves bookkeeping behind in .git/worktrees
        with contextlib.suppress(WorktreeError):
            _git(snapshot.repo, "worktree", "prune")
