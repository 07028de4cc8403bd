"""``hydra-ledger watch``: one frame of a finished sweep (--once, on a pipe), and the live view of
a sweep that is running, driven in a real terminal (tmux: send-keys, capture-pane)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import app_env, start_app

TMUX = shutil.which("tmux")


def watch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hydra_ledger", "watch", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=app_env())


def test_once_prints_one_frame_with_progress_metric_trend_and_the_error(make_app, run_app):
    app = make_app("resources_app")
    proc = run_app(app, "-m", "mb=10", "burn_s=0.1", "steps=4", "fail=false,true", "hydra.sweep.dir=multirun/s",
                   timeout=300)
    assert proc.returncode == 1, proc.stderr  # the second job fails, as asked
    shown = watch(app, "multirun/s", "--once")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "\x1b" not in shown.stdout  # a pipe: no colour, no cursor movement
    assert lines[0] == "multirun/s  2/2 done, 1 failed"
    assert lines[1].split() == ["job", "status", "age", "beat", "loss", "trend", "cpu", "rss", "gpu", "error"]
    # loss = 1/(step+1): 1, 0.5, 0.333, 0.25
    assert re.fullmatch(r"\s*0\s+COMPLETED\s+\S+s\s+0\.25\s+█▃▁▁\s+\S+s\s+\S+M\s+-\s*", lines[2]), lines[2]
    assert re.fullmatch(r"\s*1\s+FAILED\s+\S+s\s+0\.25\s+█▃▁▁\s+\S+s\s+\S+M\s+-\s+"
                        r"ValueError: requested failure with mb=10", lines[3]), lines[3]
    assert "second line" not in shown.stdout
    assert re.fullmatch(r"\d\d:\d\d:\d\d", lines[-1])
    # the default view (no SWEEP: outputs/ and multirun/ here): nothing runs, so the latest sweep
    assert watch(app, "--once").stdout.splitlines()[:4] == lines[:4]
    other = watch(app, "multirun/s", "--once", "--metric", "nothing_logged").stdout.splitlines()
    assert other[1].split()[4] == "nothing_logged"
    assert re.fullmatch(r"\s*0\s+COMPLETED\s+\S+s\s+\S+s\s+\S+M\s+-\s*", other[2]), other[2]


def test_interval_must_be_positive(tmp_path):
    shown = watch(tmp_path, str(tmp_path), "--interval", "0")
    assert shown.returncode == 1
    assert shown.stderr == "hydra-ledger: --interval must be above 0 seconds, got 0\n"


class Tmux:
    """A tmux server of its own (its own socket), so that nothing else on the machine interferes."""

    def __init__(self, name: str) -> None:
        self.socket = name

    def __call__(self, *args: str) -> str:
        assert TMUX is not None
        return subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "watch")

    def wait_for(self, predicate, timeout: float, what: str) -> str:
        end = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > end:
                raise AssertionError(f"{what} not seen within {timeout} s; the screen:\n{screen}")
            time.sleep(0.5)


def _done(screen: str) -> int | None:
    match = re.search(r"multirun/live  (\d+)/3 done", screen)
    return int(match.group(1)) if match else None


@pytest.mark.terminal
@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
@pytest.mark.parametrize("key", ["q", "C-c"], ids=["q", "ctrl-c"])
def test_the_live_view_of_a_running_sweep_updates_in_place_and_quits(make_app, tmp_path, key):
    app = make_app("resources_app")
    sweep = start_app(app, "-m", "mb=10", "burn_s=0.1", "steps=10", "step_s=0.6", "fail=false,false,true",
                      "hydra.sweep.dir=multirun/live", "hydra.callbacks.ledger.heartbeat_s=1")
    tmux = Tmux(f"hl-watch-{os.getpid()}-{key}")
    env = app_env({"TERM": "xterm-256color"})
    env.pop("NO_COLOR", None)
    script = tmp_path / "watch.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items() if re.fullmatch(r"[A-Z_][A-Z0-9_]*", k))
    script.write_text(f"{exports}cd {shlex.quote(str(app))}\n"
                      f"{shlex.quote(sys.executable)} -m hydra_ledger watch multirun/live --interval 0.5\n"
                      "echo watch-exited-$?\nsleep 600\n")
    try:
        end = time.monotonic() + 240
        while not (app / "multirun/live/0/.ledger/run.json").exists():
            assert sweep.poll() is None and time.monotonic() < end, sweep.communicate()
            time.sleep(0.2)
        tmux("new-session", "-d", "-s", "watch", "-x", "200", "-y", "50", f"bash {shlex.quote(str(script))}")
        first = tmux.wait_for(lambda s: "RUNNING" in s and _done(s) is not None, 240, "a running job")
        assert "q or Ctrl-C quits" in first
        later = tmux.wait_for(lambda s: (_done(s) or 0) > (_done(first) or 0), 240, "a job finishing")
        assert later != first
        assert later.count("multirun/live  ") == 1  # drawn in place, not appended below
        tmux("send-keys", "-t", "watch", key)
        tmux.wait_for(lambda s: "watch-exited-0" in s, 60, "watch exiting with 0")
        sweep.communicate(timeout=240)
        final = subprocess.run([sys.executable, "-m", "hydra_ledger", "watch", "multirun/live", "--once"], cwd=app,
                               capture_output=True, text=True, timeout=120, env=app_env())
        assert final.stdout.startswith("multirun/live  3/3 done, 1 failed")
    finally:
        subprocess.run([TMUX, "-L", tmux.socket, "kill-server"], capture_output=True, timeout=30)
        if sweep.poll() is None:
            sweep.kill()
        sweep.communicate()
