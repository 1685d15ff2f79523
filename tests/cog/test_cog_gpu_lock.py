"""GPU projects for every framework, locked with uv (metadata only, nothing large downloaded) and planned: the
nvidia-* wheels each one gets, and the loader configuration of its image."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from ocibuild.cog.build import BuildOptions, load_project, plan_project
from ocibuild.oci import Store

pytestmark = pytest.mark.integration

PREDICTOR = """from cog import BasePredictor


class Predictor(BasePredictor):
    def predict(self, x: str) -> str:
        return x
"""

CU12 = "nvidia-{}-cu12"
TF_LIBS = {CU12.format(n) for n in ("cublas", "cudnn", "cufft", "curand", "cusolver", "cusparse", "nccl", "nvjitlink")}
TF_LIBS |= {CU12.format(f"cuda-{n}") for n in ("runtime", "nvrtc", "cupti", "nvcc")}
ORT_LIBS = {CU12.format(n) for n in ("cublas", "cudnn", "cufft", "curand", "nvjitlink", "cuda-runtime", "cuda-nvrtc")}

CASES = {
    # name: (python, cuda, requirements, build.run, nvidia-* wanted, CUDA of the runtime wheel, loader dirs included)
    "tensorflow": ("3.11", None, "tensorflow==2.15.0", [], TF_LIBS, "12.2", ["cudnn", "cublas", "nccl"]),
    "onnxruntime-gpu": ("3.12", None, "onnxruntime-gpu==1.22.0", [], ORT_LIBS, "12.8", ["cudnn", "cufft"]),
    "cupy": (
        "3.12",
        None,
        "cupy-cuda12x",
        [],
        {CU12.format("cusolver"), CU12.format("cuda-nvrtc")},
        "12.8",
        ["cusolver"],
    ),
    "jax": ("3.12", None, "jax==0.7.2", [], {CU12.format("cudnn"), CU12.format("cusolver")}, None, ["cudnn"]),
    "torch range, no cuda": ("3.12", None, "torch>=2.1,<2.8", [], {CU12.format("cudnn")}, "12.6", ["cudnn"]),
    "torch range, cuda 12.4": ("3.12", "12.4", "torch~=2.5.0", [], {CU12.format("cublas")}, "12.4", ["cublas"]),
    "nvcc for build.run": (
        "3.12",
        "12.8",
        "numpy",
        ["pip install flash-attn --no-build-isolation"],
        {CU12.format("cuda-nvcc"), CU12.format("cuda-runtime"), CU12.format("cuda-cccl")},
        "12.8",
        ["cuda_runtime"],
    ),
}


def reachable(host: str) -> None:
    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError as exc:
        pytest.skip(f"{host} is not reachable: {exc}")


def plan_for(tmp_path: Path, python: str, cuda: str | None, requirements: str, run: list[str]) -> dict:
    project = tmp_path / "project"
    project.mkdir()
    build = {"gpu": True, "python_version": python, "python_requirements": "requirements.txt", "run": run}
    if cuda:
        build["cuda"] = cuda
    (project / "cog.yaml").write_text(json.dumps({"build": build, "run": "predict.py:Predictor"}))
    (project / "requirements.txt").write_text(requirements + "\n")
    (project / "predict.py").write_text(PREDICTOR)
    plan = plan_project(project / "cog.yaml", BuildOptions(store=Store(tmp_path / "store"), source_date_epoch=0))
    return plan.to_json()["platforms"][0]


@pytest.mark.parametrize("case", list(CASES))
def test_gpu_project_locks_its_cuda_wheels_and_points_the_loader_at_them(tmp_path: Path, case: str) -> None:
    python, cuda, requirements, run, wanted, runtime_cuda, dirs = CASES[case]
    reachable("pypi.org")
    if cuda and "torch" in requirements:
        reachable("download.pytorch.org")  # cuda: set picks that CUDA's PyTorch index, as Cog does
    platform = plan_for(tmp_path, python, cuda, requirements, run)
    installs = " ".join(s["created_by"] for s in platform["steps"] if s["created_by"].startswith("pip install"))
    locked = dict(re.findall(r"(\S+)==(\S+)", installs))
    nvidia = {name for name in locked if name.startswith("nvidia-")}
    assert wanted <= nvidia, sorted(nvidia)
    if runtime_cuda:
        runtime = next(v for n, v in locked.items() if re.fullmatch(r"nvidia-cuda-runtime(-cu\d+)?", n))
        assert runtime.startswith(runtime_cuda + "."), runtime
    env = dict(item.split("=", 1) for item in platform["env"])
    loader = env["LD_LIBRARY_PATH"].split(":")
    site = loader[3].split("/nvidia/")[0]
    assert site.startswith(f"/usr/local/lib/python{python}/") and site.endswith("-packages")
    assert loader[:3] == ["/usr/lib/x86_64-linux-gnu", "/usr/local/nvidia/lib64", "/usr/local/nvidia/bin"]
    assert {f"{site}/nvidia/{d}/lib" for d in dirs} <= set(loader)
    assert all(d.startswith(site + "/nvidia/") for d in loader[3:])
    gpu = json.loads(env["OCIBUILD_GPU"])
    assert gpu["driver_min"] and (runtime_cuda is None or gpu["cuda"] == runtime_cuda)
    if run:
        assert env["CUDA_HOME"] == f"{site}/nvidia/cuda_nvcc"
        assert env["PATH"].startswith(f"{site}/nvidia/cuda_nvcc/bin:")


def test_nvidia_apt_packages_in_system_packages_come_as_their_wheels(tmp_path: Path) -> None:
    reachable("pypi.org")
    project = tmp_path / "project"
    project.mkdir()
    build = {"gpu": True, "cuda": "12.4", "python_version": "3.11", "system_packages": ["cudnn9-cuda-12", "libnccl2"]}
    (project / "cog.yaml").write_text(json.dumps({"build": build, "run": "predict.py:Predictor"}))
    (project / "predict.py").write_text(PREDICTOR)
    options = BuildOptions(store=Store(tmp_path / "store"), source_date_epoch=0)
    platform = plan_project(project / "cog.yaml", options).to_json()["platforms"][0]
    steps = " ".join(s["created_by"] for s in platform["steps"])
    locked = dict(re.findall(r"(nvidia-\S+)==(\S+)", steps))
    assert locked["nvidia-cudnn-cu12"].startswith("9.") and "nvidia-nccl-cu12" in locked, locked
    assert "apt-get install" not in steps  # nothing of them is asked of Debian
    warnings = load_project(project / "cog.yaml", options).warnings
    said = "cudnn9-cuda-12 is NVIDIA's apt package; installed as nvidia-cudnn-cu12==9.*"
    assert any(w.endswith(said) for w in warnings), warnings
