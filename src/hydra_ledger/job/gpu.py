"""GPU memory and utilisation of the job's GPUs through NVML, when it is there.

The only module that touches NVML (package ``nvidia-ml-py``, imported as ``pynvml``), and
optional: no library, no driver or no GPU means the job's GPUs are recorded as
``"unavailable"`` with the reason, never an error. The GPUs are those in
``CUDA_VISIBLE_DEVICES`` (indices or UUIDs), all of the machine's when it is unset. NVML
reports device-wide figures: another process on a shared GPU counts too.
"""
from __future__ import annotations

import os
import sys
from typing import Any

UNAVAILABLE = "unavailable"
_NOT_INSTALLED = "NVML not installed: pip install nvidia-ml-py"
# The import path on which pynvml was looked for in vain: not searched again (once per job of a sweep) until it changes.
_nvml_missing_on: list[str] | None = None


class GpuSampler:
    """Peak memory and mean utilisation per visible GPU, from the samples taken."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._handles: list[tuple[str, Any]] = []
        self._nvml: Any = None
        self._peak: dict[str, int] = {}
        self._util: dict[str, list[float]] = {}
        self._total: dict[str, int] = {}
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None and visible.strip() in ("", "-1", "NoDevFiles"):
            self.reason = f"no GPU visible (CUDA_VISIBLE_DEVICES={visible!r})"
            return
        global _nvml_missing_on
        if _nvml_missing_on == sys.path:
            self.reason = _NOT_INSTALLED
            return
        try:
            import pynvml  # type: ignore[import-not-found,unused-ignore]  # nvidia-ml-py: optional
        except ImportError:
            _nvml_missing_on = list(sys.path)
            self.reason = _NOT_INSTALLED
            return
        try:
            pynvml.nvmlInit()
            if visible is None:
                names = [str(i) for i in range(pynvml.nvmlDeviceGetCount())]
            else:
                names = [part.strip() for part in visible.split(",") if part.strip()]
            for name in names:
                handle = (pynvml.nvmlDeviceGetHandleByIndex(int(name)) if name.isdigit()
                          else pynvml.nvmlDeviceGetHandleByUUID(name))
                self._handles.append((name, handle))
        except Exception as exc:  # noqa: BLE001 - pynvml.NVMLError, a bad name: recorded, not raised
            self.reason = f"NVML: {exc}"
            self._handles = []
            return
        if not self._handles:
            self.reason = "no GPU found by NVML"
        self._nvml = pynvml

    def sample(self) -> dict[str, Any] | None:
        """``{gpu: {memory_bytes, utilization_percent}}`` now, or None without GPUs."""
        if not self._handles:
            return None
        point: dict[str, Any] = {}
        for name, handle in self._handles:
            try:
                memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
                util = float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except Exception:  # noqa: BLE001 - a GPU that fell off the bus: no point for it
                continue
            self._peak[name] = max(self._peak.get(name, 0), int(memory.used))
            self._total[name] = int(memory.total)
            self._util.setdefault(name, []).append(util)
            point[name] = {"memory_bytes": int(memory.used), "utilization_percent": util}
        return point

    def summary(self) -> dict[str, Any]:
        """``gpu`` of the resources summary: per GPU, or ``"unavailable"`` and ``gpu_reason``."""
        if not self._handles:
            return {"gpu": UNAVAILABLE, "gpu_reason": self.reason}
        return {"gpu": {name: {"peak_memory_bytes": self._peak.get(name),
                               "memory_total_bytes": self._total.get(name),
                               "mean_utilization_percent": (round(sum(u) / len(u), 1)
                                                            if (u := self._util.get(name)) else None)}
                        for name, _ in self._handles}}
