"""``--gpus all`` discovery and its runtime config (the GPU itself is checked by tests/run/gpu_check.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocibuild.errors import UserInputError
from ocibuild.run.gpu import Device, GpuSetup, driver_libraries, gpu_setup
from ocibuild.run.spec import RunOptions, build_spec

LDCONFIG = """\
1234 libs found in cache `/etc/ld.so.cache'
\tlibnvidia-ml.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1
\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1
\tlibcuda.so.1 (libc6) => /usr/lib/i386-linux-gnu/libcuda.so.1
\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6
"""


def test_driver_libraries_are_read_from_ldconfig() -> None:
    assert driver_libraries(LDCONFIG) == {
        "libnvidia-ml.so.1": "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
        "libcuda.so.1": "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
    }


def test_no_gpu_is_a_one_line_error() -> None:
    if os.path.exists("/dev/nvidia0"):
        assert gpu_setup().devices
    else:
        with pytest.raises(UserInputError, match="no NVIDIA GPU found"):
            gpu_setup()


def test_gpu_devices_libraries_and_paths_enter_the_config(tmp_path: Path) -> None:
    setup = GpuSetup(
        [Device("/dev/nvidia0", "c", 195, 0, 0o666)],
        [("/host/libcuda.so.1", "/usr/local/nvidia/lib64/libcuda.so.1")],
        {"NVIDIA_VISIBLE_DEVICES": "all"},
    )
    spec = build_spec({"Env": ["PATH=/bin", "LD_LIBRARY_PATH=/opt/lib"], "Cmd": ["x"]}, tmp_path, RunOptions(gpu=setup))
    assert spec["linux"]["devices"][0]["path"] == "/dev/nvidia0"
    assert {
        "destination": "/usr/local/nvidia/lib64/libcuda.so.1",
        "type": "bind",
        "source": "/host/libcuda.so.1",
        "options": ["rbind", "ro"],
    } in spec["mounts"]
    env = spec["process"]["env"]
    assert "LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/opt/lib" in env and "PATH=/bin:/usr/local/nvidia/bin" in env
