"""A stand-in for nvidia-ml-py's ``pynvml`` with two GPUs, for the NVML path of the sampler
(no machine of the test suite has an NVIDIA GPU). Only the calls the sampler makes."""
from types import SimpleNamespace

GIB = 1024 ** 3
_DEVICES = {"0": (1 * GIB, 16 * GIB, 10.0), "1": (3 * GIB, 16 * GIB, 50.0)}
_calls = {"1": 0}


class NVMLError(Exception):
    pass


def nvmlInit():
    pass


def nvmlDeviceGetCount():
    return len(_DEVICES)


def nvmlDeviceGetHandleByIndex(index):
    if str(index) not in _DEVICES:
        raise NVMLError("Invalid Argument")
    return str(index)


def nvmlDeviceGetHandleByUUID(uuid):
    raise NVMLError("Not Found")


def nvmlDeviceGetMemoryInfo(handle):
    used, total, _ = _DEVICES[handle]
    if handle == "1":  # GPU 1 uses 1 GiB more at every other sample, and is busier then
        _calls["1"] += 1
        used += GIB * (_calls["1"] % 2)
    return SimpleNamespace(used=used, total=total, free=total - used)


def nvmlDeviceGetUtilizationRates(handle):
    util = _DEVICES[handle][2]
    if handle == "1":
        util += 20.0 * (_calls["1"] % 2)
    return SimpleNamespace(gpu=util, memory=0)
