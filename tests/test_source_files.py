"""Code pickled by value, as joblib and submitit ship an app's ``__main__``, keeps its real file."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = '''\
import json
import cloudpickle
from hydra_ledger.job.source_files import defining_file, format_exception

def inner():
    raise KeyError("deep")

def task():
    try:
        inner()
    except KeyError as exc:
        raise ValueError("outer") from exc

shipped = cloudpickle.loads(cloudpickle.dumps(task))  # by value: task lives in __main__
try:
    shipped()
except ValueError as exc:
    print(json.dumps({"code_file": shipped.__code__.co_filename, "file": defining_file(shipped),
                      "traceback": format_exception(exc)}))
'''


def test_pickled_code_names_its_script_and_source_lines(tmp_path: Path) -> None:
    script = tmp_path / "my app.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["code_file"] == "<dynamic-code>"  # cloudpickle >= 3.1.3 (cloudpipe/cloudpickle#560)
    assert result["file"] == str(script)
    text = result["traceback"]
    assert "<dynamic-code>" not in text
    assert f'File "{script}", line 6, in inner\n    raise KeyError("deep")\n' in text
    assert f'File "{script}", line 10, in task\n    inner()\n' in text
    assert f'File "{script}", line 12, in task\n    raise ValueError("outer") from exc\n' in text
    assert text.endswith("ValueError: outer\n")
