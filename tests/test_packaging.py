"""The built wheel: its file set, and Hydra discovering the plugin from an installed (non-editable) copy."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (found,) = out.glob("hydra_ledger-*.whl")
    return found


def test_wheel_holds_the_package_the_plugin_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"hydra_ledger", "hydra_plugins", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "hydra_plugins/hydra_ledger/__init__.py" in names
    # hydra_plugins is a namespace shared with other plugins: shipping its __init__.py breaks them
    assert "hydra_plugins/__init__.py" not in names
    for module in ("__init__.py", "callback.py", "runtime.py", "record.py", "load.py", "py.typed",
                   "cli/__init__.py", "capture/git.py"):
        assert f"hydra_ledger/{module}" in names, module
    assert not [n for n in names if n.startswith(("tests/", "bench/", "example_app/"))]
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "hydra-ledger = hydra_ledger.cli:console_main" in entry_points
    assert "[hydra.plugins]" in entry_points
    assert "hydra_ledger = hydra_plugins.hydra_ledger:LedgerSearchPathPlugin" in entry_points


def test_hydra_discovers_the_plugin_from_the_installed_wheel(wheel: Path, tmp_path: Path, make_app, run_app) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True)
    app = make_app("basic")
    probe = "import hydra_ledger, hydra_plugins.hydra_ledger as p; print(hydra_ledger.__file__); print(p.__file__)"
    files = subprocess.run([sys.executable, "-c", probe], env={"PYTHONPATH": str(target)}, cwd=tmp_path,
                           check=True, capture_output=True, text=True).stdout.split()
    assert all(f.startswith(str(target)) for f in files), files
    proc = run_app(app, "seed=3", env={"PYTHONPATH": str(target)})
    assert proc.returncode == 0, proc.stderr
    (record,) = app.glob("outputs/*/*/.ledger/run.json")
    assert '"status": "COMPLETED"' in record.read_text()
