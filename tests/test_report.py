"""The HTML report, opened in a real headless Chromium driven over the DevTools protocol.

Chromium comes from Debian (``apt-get install -y chromium``, done by .ci/run). The page is
driven with a small stdlib WebSocket client: no browser download, no extra package.
"""
from __future__ import annotations

import base64
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import APPS, app_env, commit_all, init_repo

import hydra_ledger
from hydra_ledger.callback import new_id
from hydra_ledger.cli import main
from hydra_ledger.record import RunPaths, append_line, read_record, write_json_atomic
from hydra_ledger.report.build import report_data

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# -- a minimal DevTools protocol client -----------------------------------------------------------

class DevTools:
    """One page of a headless Chromium: ``call(method, **params)``, with console errors collected."""

    def __init__(self, tmp: Path) -> None:
        if CHROMIUM is None:
            pytest.fail("chromium is not installed: apt-get update && apt-get install -y chromium (.ci/run does this)")
        profile = tmp / "chromium-profile"
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1300,1500", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
            pages = [t for t in json.load(response) if t["type"] == "page"]
        path = pages[0]["webSocketDebuggerUrl"].split(str(port), 1)[1]
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.next_id = 0
        self.errors: list[str] = []

    def _send(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        header = b"\x81" + (bytes([0x80 | n]) if n < 126 else
                            bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                            bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("chromium closed the DevTools connection")
            data += chunk
        return data

    def _receive(self) -> dict[str, Any]:
        message = b""
        while True:
            first, second = self._read(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            message += self._read(n)
            if first & 0x80:  # FIN
                return json.loads(message)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = self._receive()
            if message.get("method") == "Runtime.exceptionThrown":
                self.errors.append(json.dumps(message["params"]["exceptionDetails"])[:2000])
            elif message.get("method") == "Runtime.consoleAPICalled" and message["params"]["type"] in ("error", "assert"):
                self.errors.append(json.dumps(message["params"]["args"])[:2000])
            elif message.get("method") == "Log.entryAdded" and message["params"]["entry"]["level"] == "error":
                self.errors.append(message["params"]["entry"]["text"])
            elif message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> float:
        """Seconds until ``expression`` is true in the page."""
        start = time.monotonic()
        while not self.js(expression):
            if time.monotonic() - start > timeout:
                raise TimeoutError(expression)
            time.sleep(0.05)
        return time.monotonic() - start

    def open(self, page: Path) -> float:
        self.call("Runtime.enable")
        self.call("Log.enable")
        self.call("Page.enable")
        start = time.monotonic()
        self.call("Page.navigate", url=page.as_uri())
        self.wait_for("document.body && document.body.getAttribute('data-ready') === '1'")
        return time.monotonic() - start

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def browser(tmp_path: Path):
    devtools = DevTools(tmp_path)
    try:
        yield devtools
    finally:
        devtools.close()


# -- runs -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real sweep of 12 jobs (2 failing): model=small,large x seed=0,1,2 x lr=0.1,0.01."""
    repo = tmp_path_factory.mktemp("report") / "repo"
    shutil.copytree(APPS / "cli_sweep", repo)
    init_repo(repo)
    commit_all(repo, "initial")
    proc = subprocess.run([sys.executable, "app.py", "-m", "model=small,large", "seed=0,1,2", "lr=0.1,0.01",
                           "hydra.sweep.dir=multirun/sweep"], cwd=repo, env=app_env(), capture_output=True,
                          text=True, timeout=300)
    assert "FloatingPointError" in proc.stderr
    return repo / "multirun" / "sweep"


def clone_runs(template_dirs: list[Path], root: Path, count: int) -> Path:
    """``count`` job dirs in the real format: real records re-written with the project's writers.

    Each clone takes a real recorded job's record and metrics, with its own run id, config,
    overrides, summary and curve, so the report reads what real jobs leave on disk.
    """
    rng = random.Random(0)
    templates = [read_record(RunPaths(d).record) for d in template_dirs if read_record(RunPaths(d).record)["summary"]]
    for i in range(count):
        record = json.loads(json.dumps(templates[i % len(templates)]))
        sweep_no, num = divmod(i, 500)
        job_dir = root / f"sweep_{sweep_no:02d}" / str(num)
        model, lr, seed = rng.choice(["small", "large"]), rng.choice([0.1, 0.01, 0.001]), num % 5
        width = {"small": 10, "large": 40}[model]
        record["run_id"] = new_id()
        record["config"] = {"model": {"name": model, "width": width, "unstable": False}, "lr": lr,
                            "seed": seed, "sleep": 0}
        record["choices"] = {**record["choices"], "model": model}
        record["overrides"] = [f"model={model}", f"lr={lr}", f"seed={seed}"]
        record["job"] = {**record["job"], "num": num, "id": str(num), "output_dir": str(job_dir),
                         "sweep_dir": str(job_dir.parent)}
        record["summary"] = {"acc": round(width / 50 - lr + rng.gauss(0, 0.02), 4),
                             "loss": round(lr + 1 / width + rng.random() / 10, 4)}
        paths = RunPaths(job_dir)
        write_json_atomic(paths.record, record)
        for step in range(0, 50, 5):
            append_line(paths.metrics, {"step": step, "time": 0.0, "values": {"loss": 1 / (step + 1) + lr}})
    return root


# -- tests ----------------------------------------------------------------------------------------

def test_report_data_has_the_swept_keys_and_curves(sweep, tmp_path):
    frame = hydra_ledger.load_runs(sweep)
    data = report_data(frame, {"x": {"loss": [[0, 1.0]]}}, "t")
    assert data["count"] == 12
    assert data["swept"] == ["cfg.model.name", "cfg.model.width", "cfg.model.unstable", "cfg.lr", "cfg.seed",
                             "choice.model"]
    assert data["metrics"] == ["summary.acc", "summary.loss"]
    assert sorted(data["data"]["status"]) == ["COMPLETED"] * 10 + ["FAILED"] * 2


def test_report_escapes_script_closing_text(sweep, tmp_path, capsys):
    job = next(sweep.glob("*/.ledger/run.json")).parent.parent
    assert main(["note", str(job), "</script><script>alert(1)</script>"]) == 0
    out = tmp_path / "r.html"
    assert main(["report", str(sweep), "-o", str(out)]) == 0
    page = out.read_text()
    assert "</script><script>alert" not in page
    assert page.count("<script") == 2  # the data and the app: nothing from outside
    assert "\\u003c/script>\\u003cscript>alert(1)" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def test_report_in_a_browser(sweep, tmp_path, capsys, browser):
    out = tmp_path / "report.html"
    assert main(["report", str(sweep), "-o", str(out), "--title", "lr sweep"]) == 0
    assert capsys.readouterr().out == ""
    browser.open(out)
    rows = "document.querySelectorAll('#runs tbody tr').length"
    assert browser.js(rows) == 12
    assert browser.js("document.getElementById('count').textContent") == "12 runs"
    assert browser.js("document.getElementById('title').textContent") == "lr sweep"
    assert browser.js("[document.getElementById('mk-key').value, document.getElementById('mk-series').value]") == [
        "cfg.model.width", "cfg.model.name"]  # defaults: a numeric swept key (not the seed) by a text one

    # sorting: click the acc header -> ascending, missing (failed runs) last; again -> descending
    column = ("Array.from(document.querySelectorAll('#runs tbody tr')).map(tr => tr.children["
              "Array.from(document.querySelectorAll('#runs th')).findIndex(th => th.dataset.col === 'summary.acc')"
              "].textContent)")
    browser.js("document.querySelector('th[data-col=\"summary.acc\"]').click()")
    assert browser.js(column) == ["0.1", "0.1", "0.2", "0.2", "0.3", "0.3", "0.4", "0.4", "0.6", "0.6", "", ""]
    browser.js("document.querySelector('th[data-col=\"summary.acc\"]').click()")
    assert browser.js(column) == ["0.6", "0.6", "0.4", "0.4", "0.3", "0.3", "0.2", "0.2", "0.1", "0.1", "", ""]

    # filtering: column conditions and free text
    def set_filter(text: str) -> None:
        browser.js(f"(() => {{ const f = document.getElementById('filter'); f.value = {json.dumps(text)};"
                   "f.dispatchEvent(new Event('input')); })()")

    set_filter("model.name=large")
    browser.wait_for("document.getElementById('count').textContent === '6 of 12 runs'")
    assert browser.js(rows) == 6
    set_filter("status=FAILED lr<0.05")
    browser.wait_for("document.getElementById('count').textContent === '1 of 12 runs'")
    set_filter("nosuchcolumn>1")
    browser.wait_for("document.getElementById('filter-error').textContent === 'unknown column nosuchcolumn'")
    set_filter("")
    browser.wait_for("document.getElementById('filter-error').textContent === ''")
    assert browser.js("document.getElementById('count').textContent") == "12 runs"

    # plots: pixels on both canvases, one mean ± std point per (series, key value)
    inked = ("(id => { const c = document.getElementById(id); const d = c.getContext('2d')"
             ".getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4)"
             " if (d[i] > 0) n++; return n; })")
    assert browser.js(f"{inked}('parcoords')") > 2000
    assert browser.js(f"{inked}('curves')") > 500
    browser.js("(() => { for (const [id, v] of [['mk-metric', 'summary.acc'], ['mk-key', 'cfg.lr'], "
               "['mk-series', 'cfg.model.name']]) { const s = document.getElementById(id); s.value = v;"
               " s.dispatchEvent(new Event('change')); } })()")
    points = browser.js("Array.from(document.querySelectorAll('#mvk-svg circle.mean')).map(c => c.textContent)")
    assert points == ["large lr=0.01: 0.5 ± 0.141421 (n=2)", "large lr=0.1: 0.5 ± 0.141421 (n=2)",
                      "small lr=0.01: 0.2 ± 0.1 (n=3)", "small lr=0.1: 0.2 ± 0.1 (n=3)"]
    assert browser.js("document.getElementById('curve-note').textContent") == "12 curves"

    # details on click
    browser.js("document.querySelector('#runs tbody tr').click()")
    details = browser.js("document.getElementById('details').textContent")
    first_id = browser.js("document.querySelector('#runs tbody tr td').textContent")
    assert "run_id" + first_id in details and "cfg.model.name" in details
    shot = tmp_path / "report.png"
    browser.screenshot(shot)
    assert shot.stat().st_size > 20_000
    assert browser.errors == []


def test_report_of_5000_runs(sweep, tmp_path, capsys, browser):
    root = clone_runs(sorted(p for p in sweep.iterdir() if p.name.isdigit()), tmp_path / "many", 5000)
    out = tmp_path / "many.html"
    start = time.monotonic()
    assert main(["report", str(root), "-o", str(out)]) == 0
    build_s = time.monotonic() - start
    size = out.stat().st_size
    load_s = browser.open(out)
    assert browser.js("document.querySelectorAll('#runs tbody tr').length") == 100  # one page at a time
    assert browser.js("document.getElementById('count').textContent") == "5000 runs"
    start = time.monotonic()
    browser.js("document.querySelector('th[data-col=\"summary.loss\"]').click()")
    sort_s = time.monotonic() - start
    browser.js("(() => { const f = document.getElementById('filter'); f.value = 'lr=0.1 model.width>15';"
               "f.dispatchEvent(new Event('input')); })()")
    filter_s = browser.wait_for("document.getElementById('count').textContent.includes(' of 5000')")
    shown = int(browser.js("document.getElementById('count').textContent").split()[0])
    frame = hydra_ledger.load_runs(root)
    assert shown == int(((frame["cfg.lr"] == 0.1) & (frame["cfg.model.width"] > 15)).sum())
    browser.screenshot(tmp_path / "many.png")
    assert browser.errors == []
    with capsys.disabled():
        print(f"\nreport of 5000 runs: built in {build_s:.1f}s, {size / 1e6:.2f} MB; page ready in {load_s:.1f}s, "
              f"sort {sort_s * 1000:.0f} ms, filter {filter_s * 1000:.0f} ms")
    # generous bounds: a shared 2-core machine; a regression to seconds per click would still show
    assert size < 15_000_000
    assert build_s < 120 and load_s < 30 and sort_s < 5 and filter_s < 5
