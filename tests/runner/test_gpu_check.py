"""The runner's setup-time GPU compatibility check, against fake NVML and nvidia-smi answers (no GPU needed)."""

from __future__ import annotations

import ctypes
import json
import os
import stat
from pathlib import Path

import pytest

from cog import gpu, gpucheck

CU128 = {
    "cuda": "12.8",
    "driver_min": "525.60.13",
    "driver_toolkit": "570.26",
    "archs": ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"],
}
CU126 = {**CU128, "cuda": "12.6", "archs": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]}


def device(capability: str, driver: str = "570.86.15", name: str = "NVIDIA H200") -> dict:
    return {"index": 0, "name": name, "capability": capability, "driver_version": driver}


def test_kernels_cover_newer_minors_of_the_same_major_only() -> None:
    assert gpucheck.covered("8.9", ["sm_80", "sm_86"])
    assert gpucheck.covered("9.0", CU128["archs"])
    assert not gpucheck.covered("12.0", CU126["archs"])
    assert not gpucheck.covered("7.0", CU128["archs"])


def test_a_covered_gpu_with_a_new_driver_is_ok() -> None:
    report = gpucheck.check(CU128, [device("9.0")])
    assert report is not None and report["status"] == "ok" and report["problems"] == []


def test_a_gpu_without_kernels_in_the_build_is_reported() -> None:
    report = gpucheck.check(CU126, [device("12.0", name="NVIDIA RTX PRO 6000")])
    assert report is not None and report["status"] == "incompatible"
    assert report["problems"] == [
        "GPU 0 (NVIDIA RTX PRO 6000, compute capability 12.0): the image's CUDA 12.6 build has no kernels for it "
        "(built for sm_50, sm_60, sm_70, sm_75, sm_80, sm_86, sm_90)"
    ]


def test_an_old_driver_is_reported() -> None:
    report = gpucheck.check(CU128, [device("8.0", driver="470.82.01")])
    assert report is not None and report["problems"] == [
        "GPU 0 (NVIDIA H200, compute capability 8.0): driver 470.82.01 is older than 525.60.13, "
        "the oldest that runs CUDA 12.8"
    ]


def test_without_a_gpu_or_requirements_there_is_nothing_to_say(monkeypatch: pytest.MonkeyPatch) -> None:
    assert gpucheck.check(CU128, []) is None and gpucheck.check({}, [device("9.0")]) is None
    monkeypatch.delenv(gpucheck.ENV, raising=False)
    assert gpucheck.run_check() is None
    monkeypatch.setenv(gpucheck.ENV, "not json")
    assert gpucheck.run_check() is None


class FakeNvml:
    """Answers NVML's calls the way libnvidia-ml does, writing through the ctypes references."""

    def __init__(self, capability: tuple[int, int], driver: bytes) -> None:
        self.capability, self.driver = capability, driver

    def nvmlDeviceGetCount_v2(self, count) -> int:
        count._obj.value = 1
        return 0

    def nvmlSystemGetDriverVersion(self, buffer, size) -> int:
        ctypes.memmove(buffer, self.driver, len(self.driver))
        return 0

    def nvmlDeviceGetHandleByIndex_v2(self, index, handle) -> int:
        return 0

    def nvmlDeviceGetName(self, handle, buffer, size) -> int:
        ctypes.memmove(buffer, b"NVIDIA B200", 11)
        return 0

    def nvmlDeviceGetCudaComputeCapability(self, handle, major, minor) -> int:
        major._obj.value, minor._obj.value = self.capability
        return 0


def test_nvml_is_asked_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "_nvml", lambda: FakeNvml((10, 0), b"575.51.03"))
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv(gpucheck.ENV, json.dumps(CU126))
    assert gpucheck.probe() == [
        {"index": 0, "name": "NVIDIA B200", "capability": "10.0", "driver_version": "575.51.03"}
    ]
    report = gpucheck.run_check()
    assert report is not None and report["status"] == "incompatible" and "no kernels" in report["problems"][0]


def fake_smi(directory: Path, lines: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '%s' '{lines}'\n")  # printf is built in: PATH may hold only this
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def test_nvidia_smi_answers_without_nvml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "_nvml", lambda: None)
    bin_dir = fake_smi(tmp_path / "bin", "0, NVIDIA H200, 9.0, 570.86.15\n1, Tesla T4, 7.5, 570.86.15\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert [d["capability"] for d in gpucheck.probe()] == ["9.0", "7.5"]
    report = gpucheck.check(CU128, gpucheck.probe())
    assert report is not None and report["status"] == "ok"
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert gpucheck.probe() == []


def test_setup_logs_and_health_check_report_the_gpu(tmp_path: Path, start_server) -> None:
    bin_dir = fake_smi(tmp_path / "bin", "0, NVIDIA RTX PRO 6000, 12.0, 575.51.03\n")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", gpucheck.ENV: json.dumps(CU126)}
    server = start_server("echo", env=env)
    body = server.client.get("/health-check").json
    assert body["gpu_check"]["status"] == "incompatible"
    assert "GPU check: GPU 0 (NVIDIA RTX PRO 6000, compute capability 12.0)" in body["setup"]["logs"]


def test_without_requirements_health_check_has_no_gpu_check(tmp_path: Path, start_server) -> None:
    bin_dir = fake_smi(tmp_path / "bin", "0, NVIDIA H200, 9.0, 570.86.15\n")
    server = start_server("echo", env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert "gpu_check" not in server.client.get("/health-check").json
