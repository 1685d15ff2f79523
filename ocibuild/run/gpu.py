"""``--gpus all``: what the NVIDIA container toolkit would add to a container, found on this host.

The device nodes (``/dev/nvidia*``, ``/dev/nvidiactl``, ``/dev/nvidia-uvm*``, ``/dev/nvidia-caps/*``) are
passed in with their numbers; the driver's user-space libraries (from ``ldconfig -p``, else the usual driver
directories) and tools are bound
read-only under ``/usr/local/nvidia`` and put on ``LD_LIBRARY_PATH``/``PATH``, as CUDA images expect.
"""

from __future__ import annotations

import glob
import os
import platform
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass, field

from ocibuild.errors import UserInputError

LIB_DIR = "/usr/local/nvidia/lib64"
BIN_DIR = "/usr/local/nvidia/bin"
DEVICE_GLOBS = ("/dev/nvidia[0-9]*", "/dev/nvidiactl", "/dev/nvidia-uvm*", "/dev/nvidia-modeset", "/dev/nvidia-caps/*")
LIBRARY_PREFIXES = (
    "libcuda.so",
    "libcudadebugger.so",
    "libnvidia-ml.so",
    "libnvidia-ptxjitcompiler.so",
    "libnvidia-nvvm.so",
    "libnvidia-gpucomp.so",
    "libnvidia-allocator.so",
    "libnvidia-cfg.so",
    "libnvidia-opencl.so",
    "libnvidia-fatbinaryloader.so",
)
TOOLS = ("nvidia-smi", "nvidia-debugdump", "nvidia-persistenced")
_LDCONFIG_LINE = re.compile(r"^\s*(\S+) \(([^)]*)\) => (\S+)$")


@dataclass(frozen=True)
class Device:
    path: str
    kind: str  # "c" or "b"
    major: int
    minor: int
    mode: int


@dataclass
class GpuSetup:
    """Devices, read-only binds (host path -> container path) and environment for a GPU container."""

    devices: list[Device] = field(default_factory=list)
    binds: list[tuple[str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def find_devices() -> list[Device]:
    devices = []
    for pattern in DEVICE_GLOBS:
        for path in sorted(glob.glob(pattern)):
            st = os.stat(path)
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
                devices.append(Device(path, kind, os.major(st.st_rdev), os.minor(st.st_rdev), st.st_mode & 0o777))
    return devices


def driver_libraries(ldconfig_output: str) -> dict[str, str]:
    """Soname -> host file of the 64-bit NVIDIA driver libraries listed by ``ldconfig -p``."""
    found: dict[str, str] = {}
    for line in ldconfig_output.splitlines():
        match = _LDCONFIG_LINE.match(line)
        if not match or not any(tag in match.group(2) for tag in ("x86-64", "64bit", "AArch64")):
            continue
        name, path = match.group(1), match.group(3)
        if name.startswith(LIBRARY_PREFIXES):
            found.setdefault(name, os.path.realpath(path))
    return found


def _library_dirs() -> list[str]:
    extra = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    multiarch = f"/usr/lib/{platform.machine()}-linux-gnu"
    return [*extra, "/usr/local/nvidia/lib64", multiarch, "/usr/lib64", "/usr/lib/wsl/lib"]


def libraries_in(directories: list[str]) -> dict[str, str]:
    """Soname -> host file of the driver libraries found in ``directories`` (when ldconfig does not list them)."""
    found: dict[str, str] = {}
    for directory in directories:
        for path in sorted(glob.glob(os.path.join(directory, "lib*.so.*"))):
            name = os.path.basename(path)
            if name.startswith(LIBRARY_PREFIXES):
                found.setdefault(name, os.path.realpath(path))
    return found


def gpu_setup() -> GpuSetup:
    """Everything ``--gpus all`` needs; raises ``UserInputError`` when this host has no NVIDIA GPU."""
    devices = find_devices()
    if not any(re.fullmatch(r"/dev/nvidia\d+", d.path) for d in devices):
        raise UserInputError("--gpus: no NVIDIA GPU found (no /dev/nvidia0 device on this host)")
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    listing = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=False).stdout
    libraries = driver_libraries(listing) or libraries_in(_library_dirs())
    if not any(name.startswith("libcuda.so") for name in libraries):
        raise UserInputError("--gpus: the NVIDIA driver library libcuda.so was not found (ldconfig -p)")
    binds = [(path, f"{LIB_DIR}/{name}") for name, path in sorted(libraries.items())]
    for tool in TOOLS:
        host = shutil.which(tool)
        if host:
            binds.append((os.path.realpath(host), f"{BIN_DIR}/{tool}"))
    env = {
        "NVIDIA_VISIBLE_DEVICES": "all",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    return GpuSetup(devices, binds, env)


def apply_gpu_env(env: dict[str, str], setup: GpuSetup) -> None:
    """Add the GPU variables and put the driver directories in front of the library and command paths."""
    env.update(setup.env)
    for key, directory in (("LD_LIBRARY_PATH", LIB_DIR), ("PATH", BIN_DIR)):
        current = [p for p in env.get(key, "").split(":") if p and p != directory]
        env[key] = ":".join([*current, directory]) if key == "PATH" else ":".join([directory, *current])
