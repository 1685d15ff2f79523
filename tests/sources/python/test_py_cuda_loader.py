"""CUDA-free check that the loader path an image gets names directories its layers really hold, and that the
dynamic loader finds a library there by soname (stand-in wheels shaped like NVIDIA's, holding a real .so)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocibuild.cog.contract import Contract
from ocibuild.cog.cudaimage import with_cuda
from ocibuild.oci.store import Store
from ocibuild.sources.python import PythonTarget, lock_python, python_layers, read_requirements

TARGET = PythonTarget()
REAL_SO = next((p for p in (Path("/lib/x86_64-linux-gnu/libz.so.1"), Path("/usr/lib/libz.so.1")) if p.exists()), None)
LIBRARIES = {  # distribution -> its lib file, as NVIDIA lays the wheels out (CUDA 12 per module, CUDA 13 shared)
    ("nvidia_cublas_cu12", "12.8.4.1"): "nvidia/cublas/lib/libcublas.so.12",
    ("nvidia_cuda_runtime_cu12", "12.8.90"): "nvidia/cuda_runtime/lib/libcudart.so.12",
    ("nvidia_cufft", "12.0.0.61"): "nvidia/cu13/lib/libcufft.so.12",
}


@pytest.fixture
def rootfs(tmp_path: Path, make_wheel, unpack) -> tuple[Path, list[str]]:
    """The unpacked Python layers of a project locking three stand-in nvidia wheels, and the image's env."""
    assert REAL_SO is not None
    project = tmp_path / "project"
    (project / "wheels").mkdir(parents=True)
    lines = []
    for (name, version), member in LIBRARIES.items():
        wheel = make_wheel(project / "wheels", name, version, {member: REAL_SO.read_bytes()})
        lines.append(f"wheels/{wheel.name}")
    (project / "requirements.txt").write_text("\n".join(lines) + "\n")
    section = lock_python(read_requirements(project, "requirements.txt"), TARGET)
    layers = python_layers(section, TARGET, Store(tmp_path / "store"), 0, project_dir=project)
    contract = Contract(["LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu"], [], None, "/src", {}, {}, {})
    env = with_cuda(contract, True, "12.8", section, TARGET.site_packages).env
    return unpack(layers, tmp_path / "rootfs"), env


def _loader_dirs(root: Path, env: list[str]) -> list[Path]:
    value = next(item.split("=", 1)[1] for item in env if item.startswith("LD_LIBRARY_PATH="))
    return [root / d.lstrip("/") for d in value.split(":")[1:]]


@pytest.mark.skipif(REAL_SO is None, reason="no libz.so.1 to stand in for a CUDA library")
def test_every_loader_directory_is_in_the_layers(rootfs: tuple[Path, list[str]]) -> None:
    root, env = rootfs
    dirs = _loader_dirs(root, env)
    assert [d.relative_to(root / TARGET.site_packages.lstrip("/")).as_posix() for d in dirs] == [
        "nvidia/cu13/lib",
        "nvidia/cublas/lib",
        "nvidia/cuda_runtime/lib",
    ]
    assert all(d.is_dir() and any(d.glob("lib*.so.*")) for d in dirs)


@pytest.mark.skipif(REAL_SO is None, reason="no libz.so.1 to stand in for a CUDA library")
def test_the_dynamic_loader_finds_the_libraries_by_soname(rootfs: tuple[Path, list[str]]) -> None:
    root, env = rootfs
    load = "import ctypes; [ctypes.CDLL(n) for n in ('libcublas.so.12', 'libcudart.so.12', 'libcufft.so.12')]"
    path = ":".join(str(d) for d in _loader_dirs(root, env))
    found = subprocess.run([sys.executable, "-c", load], env={**os.environ, "LD_LIBRARY_PATH": path}, check=False)
    assert found.returncode == 0
    missing = subprocess.run(
        [sys.executable, "-c", load], env={**os.environ, "LD_LIBRARY_PATH": ""}, capture_output=True, check=False
    )
    assert missing.returncode != 0 and b"libcublas.so.12" in missing.stderr
