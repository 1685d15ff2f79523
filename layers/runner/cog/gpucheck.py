"""At setup: does the GPU present fit the image's CUDA build? (stdlib only; a no-op without a GPU.)

The image says what it needs in ``OCIBUILD_GPU`` (written by ocibuild from the lock): ``{"cuda": "12.8",
"driver_min": "525.60.13", "driver_toolkit": "570.26", "archs": ["sm_75", ...]}``. The GPUs are read through NVML
(``libnvidia-ml.so.1``) or, failing that, ``nvidia-smi``; both are optional. A GPU is covered when the build has
kernels for its compute capability: ``sm_XY`` runs on capability X.Z for any Z >= Y (same major).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
from typing import Any

from cog import gpu

ENV = "OCIBUILD_GPU"


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in str(text).strip().split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _nvml_probe() -> list[dict[str, Any]] | None:
    library = gpu._nvml()
    if library is None:
        return None
    try:
        count = ctypes.c_uint()
        if library.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return None
        driver = ctypes.create_string_buffer(96)
        library.nvmlSystemGetDriverVersion(driver, 96)
        devices = []
        for index in range(count.value):
            handle = ctypes.c_void_p()
            if library.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
                continue
            name = ctypes.create_string_buffer(96)
            library.nvmlDeviceGetName(handle, name, 96)
            major, minor = ctypes.c_int(), ctypes.c_int()
            library.nvmlDeviceGetCudaComputeCapability(handle, ctypes.byref(major), ctypes.byref(minor))
            devices.append(
                {
                    "index": index,
                    "name": name.value.decode(errors="replace"),
                    "capability": f"{major.value}.{minor.value}",
                    "driver_version": driver.value.decode(errors="replace"),
                }
            )
        return devices
    except (OSError, AttributeError):
        return None


def _smi_probe() -> list[dict[str, Any]] | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    query = ["--query-gpu=index,name,compute_cap,driver_version", "--format=csv,noheader"]
    try:
        out = subprocess.run([smi, *query], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    devices = []
    for line in out.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 4:
            devices.append(
                {"index": int(fields[0]), "name": fields[1], "capability": fields[2], "driver_version": fields[3]}
            )
    return devices


def probe() -> list[dict[str, Any]]:
    """The GPUs (index, name, capability "X.Y", driver_version): NVML first, then nvidia-smi; [] without."""
    found = _nvml_probe()
    return found if found is not None else (_smi_probe() or [])


def covered(capability: str, archs: list[str]) -> bool:
    """Whether a build for ``archs`` (``sm_80``, ...) has kernels for a GPU of ``capability`` ("8.6")."""
    major, minor = (*_version(capability), 0)[:2]
    for arch in archs:
        digits = "".join(ch for ch in arch if ch.isdigit())
        if len(digits) >= 2 and int(digits[:-1]) == major and int(digits[-1]) <= minor:
            return True
    return False


def check(needs: dict[str, Any], devices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The report for ``devices`` against the image's ``needs``; None when there is nothing to say (no GPU)."""
    if not devices or not needs:
        return None
    problems = []
    archs = list(needs.get("archs") or [])
    driver_min = needs.get("driver_min")
    for device in devices:
        label = f"GPU {device['index']} ({device['name']}, compute capability {device['capability']})"
        if archs and not covered(device["capability"], archs):
            problems.append(
                f"{label}: the image's CUDA {needs.get('cuda')} build has no kernels for it "
                f"(built for {', '.join(archs)})"
            )
        driver = device.get("driver_version") or ""
        if driver_min and driver and _version(driver) < _version(driver_min):
            problems.append(
                f"{label}: driver {driver} is older than {driver_min}, the oldest that runs CUDA {needs.get('cuda')}"
            )
    return {
        "status": "incompatible" if problems else "ok",
        "cuda": needs.get("cuda"),
        "devices": devices,
        "problems": problems,
    }


def image_needs() -> dict[str, Any]:
    """The image's ``OCIBUILD_GPU`` requirements ({} when unset or unreadable)."""
    try:
        value = json.loads(os.environ.get(ENV, "") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def run_check() -> dict[str, Any] | None:
    """The setup check: None (and no probing at all) on an image without GPU requirements or a host without GPUs."""
    needs = image_needs()
    return check(needs, probe()) if needs else None
