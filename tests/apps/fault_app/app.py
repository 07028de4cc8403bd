"""A task for fault tests: it can fill its disk, fail, sleep, or send itself a real signal at a
chosen point of the ledger's end hook (FAULT_SIGNAL_AT), so that the signal lands exactly there."""
import itertools
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import hydra_ledger

try:
    from hydra.utils import execution_whitelist  # noqa: F401  (Hydra >= 1.4)

    MAIN_KWARGS: dict = {"execution_whitelist": tuple(hydra_ledger.EXECUTION_WHITELIST)}
except ImportError:
    MAIN_KWARGS = {"version_base": "1.3"}


def _inside_ledger_finish(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "finish" and frame.f_code.co_filename.endswith("runtime.py"):
            return True
        frame = frame.f_back
    return False


def arm_signal(point: str, signum: int) -> None:
    """Send ``signum`` to this process once, when the ledger's final-status code reaches ``point``:
    a Python function name (``write_atomic``, ``wait_for``: in the heartbeat's release), ``c:<name>`` for a
    C function (``c:write``: the temp file is open and still empty), or ``random:<ms>``: a timer
    started when the ledger's finish() begins fires after a random delay of up to <ms>.
    ``<caller>:<name>``: when a function named ``<caller>`` (leading underscores aside) calls
    ``<name>``: ``run_job:return_value`` once the task has returned or raised, as Hydra's run_job
    (``_run_job`` in 1.4) stores its outcome before any end hook; ``main:clean_up`` in the task's
    own except block."""
    armed = [True]

    def profile(frame, event, arg):
        if not armed[0]:
            return
        if point.startswith("random:"):
            if event == "call" and frame.f_code.co_name == "finish" \
                    and frame.f_code.co_filename.endswith("runtime.py"):
                armed[0] = False
                delay = random.uniform(0, float(point.split(":")[1]) / 1000)
                threading.Timer(delay, os.kill, (os.getpid(), signum)).start()
            return
        if point.startswith("c:"):
            hit = event == "c_call" and getattr(arg, "__name__", None) == point[2:] and _inside_ledger_finish(frame)
        elif ":" in point:
            caller, name = point.split(":")
            hit = event == "call" and frame.f_code.co_name == name and frame.f_back is not None \
                and frame.f_back.f_code.co_name.lstrip("_") == caller
        else:
            hit = event == "call" and frame.f_code.co_name == point and _inside_ledger_finish(frame)
        if hit:
            armed[0] = False
            sys.setprofile(None)
            os.kill(os.getpid(), signum)

    sys.setprofile(profile)


# FAULT_CATCH=SIGTERM: the app stops its work gracefully on SIGTERM (a handler set at import,
# before Hydra starts), as training scripts that checkpoint do; =SIGINT: it catches Ctrl-C.
STOP = threading.Event()
if os.environ.get("FAULT_CATCH") == "SIGTERM":
    signal.signal(signal.SIGTERM, lambda signum, frame: STOP.set())


@hydra.main(config_path=".", config_name="config", **MAIN_KWARGS)
def main(cfg: DictConfig):
    out = Path(HydraConfig.get().runtime.output_dir)
    if cfg.fill_disk:  # a task that fills its disk: nothing is left for the ledger's final write
        with open(out / "filler", "wb", buffering=0) as f:
            for size in (1 << 16, 1):
                try:
                    while True:
                        f.write(b"x" * size)
                except OSError:
                    pass
    if os.environ.get("FAULT_MARKER"):  # outside the (maybe full) output dir: "the task runs"
        Path(os.environ["FAULT_MARKER"]).write_text(str(os.getpid()))
    if cfg.hold_gil:  # one C call that never lets the heartbeat thread run (e.g. a long numpy op)
        n, took = 2 * 10**6, []
        for _ in range(3):  # the fastest of three: a busy machine only slows some of them
            start = time.perf_counter()
            sum(itertools.repeat(1, n))
            took.append(time.perf_counter() - start)
        sum(itertools.repeat(1, int(n * cfg.hold_gil / max(min(took), 1e-6))))
    if cfg.sleep and os.environ.get("FAULT_CATCH"):
        try:
            STOP.wait(cfg.sleep)  # returns early on SIGTERM
        except KeyboardInterrupt:
            print("stopped early by Ctrl-C", file=sys.stderr)
    elif cfg.sleep:
        time.sleep(cfg.sleep)
    if os.environ.get("FAULT_SIGNAL_AT"):
        arm_signal(os.environ["FAULT_SIGNAL_AT"], getattr(signal, os.environ.get("FAULT_SIGNAL", "SIGTERM")))
    if cfg.fail:
        try:
            raise ValueError(f"x={cfg.x} is bad")
        except ValueError:
            clean_up()  # as a task that saves a checkpoint before it fails does
            raise
    return {"x": cfg.x}


def clean_up() -> None:
    """The task's own handling of its failure (a point where FAULT_SIGNAL_AT can strike)."""


if __name__ == "__main__":
    main()
