"""The HTML report, opened in a real headless Chromium driven over the DevTools protocol
(tests/_cdp.py). How fast the report is made and used is measured by bench/bench_report.py."""
from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _cdp import CHROMIUM, NO_CHROMIUM, DevTools
from conftest import APPS, app_env, commit_all, init_repo

import hydra_ledger
from hydra_ledger.cli import main
from hydra_ledger.job.callback import new_id
from hydra_ledger.record.files import append_line, write_json_atomic
from hydra_ledger.record.paths import RunPaths
from hydra_ledger.record.schema import read_record
from hydra_ledger.report.build import report_data


@pytest.fixture
def browser(tmp_path: Path):
    if CHROMIUM is None:
        pytest.fail(NO_CHROMIUM)
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


@pytest.fixture(scope="module")
def group_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config-group sweep of 16 jobs: model=svm,forest x dataset=a,b x seed=0,1 x a key with a long name."""
    repo = tmp_path_factory.mktemp("groups") / "repo"
    shutil.copytree(APPS / "group_sweep", repo)
    init_repo(repo)
    commit_all(repo, "initial")
    proc = subprocess.run([sys.executable, "app.py", "-m", "model=svm,forest", "dataset=a,b", "seed=0,1",
                           "+preprocessing_pipeline_variant=standard_scaler,robust_scaler_with_quantile_clipping",
                           "hydra.sweep.dir=multirun/sweep"], cwd=repo, env=app_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
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
    assert data["swept"] == ["choice.model", "cfg.seed", "cfg.lr"]  # as given on the command line
    assert data["folded"] == ["cfg.model.name", "cfg.model.width", "cfg.model.unstable"]  # they follow the model
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


@pytest.mark.browser
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
        "cfg.lr", "choice.model"]  # defaults: a numeric swept key (not the seed) by a text one

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
    first_id = browser.js("document.querySelector('#runs tbody tr').children[Array.from("
                          "document.querySelectorAll('#runs th')).findIndex(th => th.dataset.col === 'run_id')]"
                          ".textContent")
    assert "run_id" + first_id in details and "cfg.model.name" in details
    shot = tmp_path / "report.png"
    browser.screenshot(shot)
    assert shot.stat().st_size > 20_000
    assert browser.errors == []


@pytest.mark.browser
def test_report_of_5000_runs(sweep, tmp_path, browser):
    root = clone_runs(sorted(p for p in sweep.iterdir() if p.name.isdigit()), tmp_path / "many", 5000)
    out = tmp_path / "many.html"
    assert main(["report", str(root), "-o", str(out)]) == 0
    frame = hydra_ledger.load_runs(root)
    browser.open(out)
    assert browser.js("document.querySelectorAll('#runs tbody tr').length") == 100  # one page at a time
    assert browser.js("document.getElementById('count').textContent") == "5000 runs"
    # sorting by loss: the first page holds the 100 lowest losses of all 5000, in order
    browser.js("document.querySelector('th[data-col=\"summary.loss\"]').click()")
    column = ("Array.from(document.querySelectorAll('#runs tbody tr')).map(tr => tr.children["
              "Array.from(document.querySelectorAll('#runs th')).findIndex(th => th.dataset.col === 'summary.loss')"
              "].textContent)")
    assert [float(v) for v in browser.js(column)] == sorted(frame["summary.loss"])[:100]
    browser.js("(() => { const f = document.getElementById('filter'); f.value = 'lr=0.1 model.width>15';"
               "f.dispatchEvent(new Event('input')); })()")
    shown = int(((frame["cfg.lr"] == 0.1) & (frame["cfg.model.width"] > 15)).sum())
    browser.wait_for(f"document.getElementById('count').textContent === '{shown} of 5000 runs'")
    assert browser.js("document.querySelectorAll('#runs tbody tr').length") == min(shown, 100)
    shot = tmp_path / "many.png"
    browser.screenshot(shot)
    assert shot.stat().st_size > 20_000
    assert browser.errors == []


HEADERS = "Array.from(document.querySelectorAll('#runs th')).map(th => th.dataset.col)"
AXES = "Array.from(document.querySelectorAll('#pc-axes .axis')).map(g => g.dataset.key)"
TITLES = "Array.from(document.querySelectorAll('#pc-axes .title')).map(t => t.firstChild ? t.firstChild.nodeValue : '')"
# [labels drawn, pairs of labels whose boxes intersect]
OVERLAPS = """(selector => {
  const boxes = Array.from(document.querySelectorAll(selector)).map(t => t.getBoundingClientRect())
    .filter(b => b.width > 0 && b.height > 0);
  let hits = 0;
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) hits++;
  }
  return [boxes.length, hits];
})"""


@pytest.mark.browser
def test_report_of_a_config_group_sweep_leads_with_the_swept_keys(group_sweep, tmp_path, browser):
    out = tmp_path / "groups.html"
    assert main(["report", str(group_sweep), "-o", str(out)]) == 0
    browser.open(out)
    swept = ["choice.model", "choice.dataset", "cfg.seed", "cfg.preprocessing_pipeline_variant"]
    assert browser.js(HEADERS) == ["status", *swept, "summary.accuracy", "run_id", "started_at", "duration_s"]
    browser.js("document.getElementById('show-folded').click()")  # the keys of each model and dataset, on request
    assert browser.js(HEADERS) == [
        "status", *swept, "cfg.model.kind", "cfg.model.C", "cfg.model.kernel", "cfg.dataset.kind",
        "cfg.dataset.n_samples", "cfg.dataset.noise", "cfg.model.n_estimators", "cfg.model.max_depth",
        "summary.accuracy", "run_id", "started_at", "duration_s"]

    # parallel coordinates: one axis per swept key and one for the metric, no two labels overlapping
    assert browser.js(AXES) == [*swept, "summary.accuracy"]
    assert browser.js(TITLES) == ["model", "dataset", "seed", "preprocessing_pipeline_variant", "accuracy"]
    labels, overlaps = browser.js(OVERLAPS + "('#pc-axes text')")
    assert labels >= 5 + 2 * 4 + 2 and overlaps == 0  # titles, two ticks per key, the metric's
    browser.js("document.getElementById('pc-box').style.width = '420px'; window.dispatchEvent(new Event('resize'))")
    browser.wait_for("document.getElementById('parcoords').style.width === '420px'")
    labels, overlaps = browser.js(OVERLAPS + "('#pc-axes text')")
    assert labels >= 5 + 2 * 4 + 2 and overlaps == 0
    titles = browser.js(TITLES)
    assert titles[3].endswith("\u2026") and "preprocessing_pipeline_variant".startswith(titles[3][:-1])
    assert browser.js("document.querySelector('#pc-axes .title title').textContent") == "choice.model"

    # metric vs key: a swept key by another; the curves coloured by it, with a legend, and hover
    assert browser.js("['mk-key', 'mk-series', 'curve-colour'].map(id => document.getElementById(id).value)") == [
        "choice.model", "choice.dataset", "choice.dataset"]
    labels, overlaps = browser.js(OVERLAPS + "('#mvk-svg text')")
    assert labels >= 2 + 3 + 2 + 2 and overlaps == 0  # key values, metric ticks, axis names, series legend
    assert browser.js("Array.from(document.querySelectorAll('#curve-legend .legend-item')).map(i => i.textContent)"
                      ) == ["dataset=a", "dataset=b"]
    tip = browser.js("""(() => {
      const c = document.getElementById('curves'), r = c.getBoundingClientRect();
      c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + r.width / 2, clientY: r.top + r.height / 2}));
      const t = document.getElementById('curve-tip');
      return [t.hidden, t.textContent];
    })()""")
    assert tip[0] is False
    assert re.fullmatch(r"[0-9a-f]{12}  model=(svm|forest) dataset=[ab] seed=[01] preprocessing_pipeline_variant="
                        r"(standard_scaler|robust_scaler_with_quantile_clipping)  step 1: loss = [0-9.]+", tip[1])
    browser.js("document.getElementById('curves').dispatchEvent(new MouseEvent('mouseleave'))")
    assert browser.js("document.getElementById('curve-tip').hidden") is True
    browser.screenshot(tmp_path / "groups.png")
    assert browser.errors == []
