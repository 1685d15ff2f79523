"""Which GPUs the runner can see, through NVML (ctypes): the server never imports the model's torch.

Everything here is a cheap no-op on machines without an NVIDIA driver.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

_NVML_SUCCESS = 0
_NAME_BYTES = 96


class _Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


@functools.lru_cache(maxsize=1)
def _nvml() -> Any:
    """The initialised NVML library, or ``None`` when there is no NVIDIA driver."""
    try:
        library = ctypes.CDLL("libnvidia-ml.so.1")
        init = getattr(library, "nvmlInit_v2", None) or library.nvmlInit
    except (OSError, AttributeError):
        return None
    return library if init() == _NVML_SUCCESS else None


def _nvml_devices(library: Any) -> list[dict[str, Any]]:
    count = ctypes.c_uint()
    if library.nvmlDeviceGetCount_v2(ctypes.byref(count)) != _NVML_SUCCESS:
        return []
    driver = ctypes.create_string_buffer(_NAME_BYTES)
    library.nvmlSystemGetDriverVersion(driver, _NAME_BYTES)
    devices = []
    for index in range(count.value):
        handle = ctypes.c_void_p()
        if library.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != _NVML_SUCCESS:
            continue
        name = ctypes.create_string_buffer(_NAME_BYTES)
        library.nvmlDeviceGetName(handle, name, _NAME_BYTES)
        memory = _Memory()
        library.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory))
        devices.append(
            {
                "index": index,
                "name": name.value.decode(errors="replace"),
                "memory_total_mib": memory.total // (1 << 20),
                "memory_used_mib": memory.used // (1 << 20),
                "driver_version": driver.value.decode(errors="replace"),
            }
        )
    return devices


def describe() -> list[dict[str, Any]]:
    """One entry per visible GPU (name, memory, driver); empty without GPUs."""
    library = _nvml()
    if library is not None:
        try:
            return _nvml_devices(library)
        except (OSError, AttributeError):
            pass
    return []
