"""The built wheel: its file set, and Hydra discovering the plugin from an installed (non-editable) copy."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def source_files() -> list[str]:
    """The source tree as a checkout holds it, uncommitted work included: tracked and untracked
    files, without what .gitignore leaves out (build/, *.egg-info, caches)."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True, text=True).stdout
    return sorted(name for name in set(listed.split("\0")) if name and (ROOT / name).is_file())


def build_from_sdist(work: Path) -> Path:
    """Build the sdist, then the wheel from the sdist, of a copy of the source tree.

    The copy holds no build/ nor egg-info, so nothing stale (an old build/lib, an old
    SOURCES.txt) can reach the wheel; and setuptools writes its egg-info and release tree into
    the copy, not into a source tree that other builds use at the same time.
    """
    tree = work / "tree"
    for name in source_files():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tree / name)
    out = work / "building"
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(tree)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Building wheel from sdist" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    os.replace(out, work / "dist")
    return work / "dist"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The wheel as pip and PyPI users get it: built from the sdist, once per test session."""
    base = tmp_path_factory.getbasetemp()
    work = (base.parent if worker_id != "master" else base) / "packaging"
    work.mkdir(exist_ok=True)
    with open(work.parent / "packaging.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first worker builds, the others wait and reuse
        dist = work / "dist"
        if not dist.exists():
            shutil.rmtree(work / "tree", ignore_errors=True)  # an earlier worker's failed attempt
            build_from_sdist(work)
    assert sorted(p.name for p in dist.iterdir()) == ["hydra_ledger-0.1.0-py3-none-any.whl",
                                                      "hydra_ledger-0.1.0.tar.gz"]
    return dist / "hydra_ledger-0.1.0-py3-none-any.whl"


def shipped_source_files() -> set[str]:
    """Every file of the package (modules and data) and every module of the plugin, as wheel paths."""
    files = source_files()
    return ({name[len("src/"):] for name in files if name.startswith("src/hydra_ledger/")}
            | {name for name in files if name.startswith("hydra_plugins/hydra_ledger/") and name.endswith(".py")})


def test_wheel_holds_the_package_the_plugin_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = wheel.name.split("-py3")[0] + ".dist-info/"
    # exactly the source tree's modules and data files (py.typed, the report's assets), plus dist-info
    assert sorted(n for n in names if not n.startswith(dist_info)) == sorted(shipped_source_files())
    for module in ("__init__.py", "job/callback.py", "job/runtime.py", "record/schema.py", "load/__init__.py",
                   "py.typed", "cli/__init__.py", "job/capture/git.py", "relaunch/rerun.py", "report/template.html"):
        assert f"hydra_ledger/{module}" in names, module
    assert "hydra_plugins/hydra_ledger/__init__.py" in names
    # hydra_plugins is a namespace shared with other plugins: shipping its __init__.py breaks them
    assert "hydra_plugins/__init__.py" not in names
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
    assert json.loads(record.read_text())["status"] == "COMPLETED"


# Modules of the optional integrations, with the extra that installs what they import.
OPTIONAL_MODULES = {"hydra_ledger.lightning": "lightning"}


def test_every_error_and_warning_of_the_package_has_the_exported_base() -> None:
    """``except hydra_ledger.LedgerError`` catches whatever the package raises on purpose."""
    import importlib
    import inspect
    import pkgutil

    import hydra_ledger

    defined = []
    for info in pkgutil.walk_packages(hydra_ledger.__path__, "hydra_ledger."):
        try:
            module = importlib.import_module(info.name)
        except ImportError as exc:  # an integration whose extra is not installed here: says which
            assert info.name in OPTIONAL_MODULES, exc
            assert f"pip install 'hydra-ledger[{OPTIONAL_MODULES[info.name]}]'" in str(exc)
            continue
        defined += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                    if cls.__module__ == info.name and issubclass(cls, BaseException)]
    assert len(defined) >= 10
    for cls in defined:
        base = hydra_ledger.LedgerWarning if issubclass(cls, Warning) else hydra_ledger.LedgerError
        assert issubclass(cls, base), f"{cls.__module__}.{cls.__qualname__} does not derive from {base.__name__}"


def test_the_loader_reads_a_missing_heartbeat_interval_as_the_callbacks_default() -> None:
    from hydra_ledger.record.schema import DEFAULT_HEARTBEAT_S
    from hydra_plugins.hydra_ledger import LedgerConf

    assert LedgerConf().heartbeat_s == DEFAULT_HEARTBEAT_S


def _pins(line: str) -> dict[str, str]:
    """``constraints/hydra-<line>.txt``, the set the tests run against: {distribution: version}."""
    from packaging.requirements import Requirement

    pins = {}
    for text in (ROOT / "constraints" / f"hydra-{line}.txt").read_text().splitlines():
        if text.strip() and not text.startswith("#"):
            requirement = Requirement(text)
            pins[requirement.name] = requirement.specifier
    return pins


def test_the_install_pins_of_each_hydra_line_are_the_tested_ones():
    """The README's 1.4 command pins what the 1.4 tests install; the extras admit the 1.3 set tested."""
    from packaging.requirements import Requirement

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the package depends on tomli there
        import tomli as tomllib

    command = next(t for t in (ROOT / "README.md").read_text().splitlines()
                   if t.startswith("pip install hydra-ledger hydra-core==1.4"))
    assert {str(Requirement(r)) for r in command.split()[3:]} == {f"{n}{s}" for n, s in _pins("1.4").items()}
    stable = _pins("1.3")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in ("optuna", "joblib", "submitit"):
        for text in extras[extra]:
            requirement = Requirement(text)
            # the mixed install stays out (a plain `in` would leave out every pre-release anyway)
            if requirement.name.startswith("hydra-"):
                assert not requirement.specifier.contains("1.4.0rc3", prereleases=True), (extra, text)
            tested = stable[requirement.name]
            if str(tested).startswith("=="):
                assert str(tested)[2:] in requirement.specifier, (extra, text, tested)
