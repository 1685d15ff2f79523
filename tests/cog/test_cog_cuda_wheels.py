"""CUDA from NVIDIA's wheels for any framework: which lines join the resolution, and what the image config says.

No network: these check the requirement lines and the config; tests/cog/test_cog_gpu_lock.py locks them with uv.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocibuild.cog.contract import Contract
from ocibuild.cog.cuda import resolve_cuda
from ocibuild.cog.cudaimage import GPU_LABEL, gpu_requirements, library_dir, library_dirs, with_cuda
from ocibuild.cog.cudawheels import cuda_requirements, library_requirement, needs_build_tools, wheel_table
from ocibuild.cog.specifiers import requirement_specifiers, satisfies
from ocibuild.sources.python import read_requirements

SITE = "/usr/local/lib/python3.12/site-packages"
CU122_TF = [
    "nvidia-cuda-runtime-cu12==12.2.*",
    "nvidia-cublas-cu12==12.2.*",
    "nvidia-cudnn-cu12==8.9.*",
    "nvidia-cufft-cu12>=11.0.8,<11.0.11",
    "nvidia-curand-cu12>=10.3.3,<10.3.4",
    "nvidia-cusolver-cu12>=11.5.0,<11.5.3",
    "nvidia-cusparse-cu12>=12.1.1,<12.1.3",
    "nvidia-nccl-cu12",
    "nvidia-nvjitlink-cu12==12.2.*",
    "nvidia-cuda-nvrtc-cu12==12.2.*",
    "nvidia-cuda-cupti-cu12==12.2.*",
    "nvidia-cuda-nvcc-cu12==12.2.*",
]


def lines_for(requirements: list[str], build_run: tuple[str, ...] = ()) -> tuple[str, ...]:
    choice = resolve_cuda(True, None, None, requirements, build_run)
    assert choice is not None
    return choice.requirements


def test_tensorflow_gets_the_cuda_and_cudnn_of_its_row() -> None:
    assert lines_for(["tensorflow==2.15.0"]) == tuple(CU122_TF)


def test_onnxruntime_gpu_gets_cuda_12_wheels_and_old_releases_cuda_11() -> None:
    assert lines_for(["onnxruntime-gpu==1.22.0"]) == (
        "nvidia-cuda-runtime-cu12==12.8.*",
        "nvidia-cublas-cu12==12.8.*",
        "nvidia-cudnn-cu12==9.*",
        "nvidia-cufft-cu12>=11.3.3,<11.4.0",
        "nvidia-curand-cu12>=10.3.9,<10.3.10",
        "nvidia-cuda-nvrtc-cu12==12.8.*",
        "nvidia-nvjitlink-cu12==12.8.*",
    )
    assert lines_for(["onnxruntime-gpu==1.17.1"])[:3] == (
        "nvidia-cuda-runtime-cu11==11.8.*",
        "nvidia-cublas-cu11>=11.11.3",
        "nvidia-cudnn-cu11==8.*",
    )


def test_an_unpinned_framework_takes_its_row_for_the_chosen_cuda_major() -> None:
    choice = resolve_cuda(True, "11.8", None, ["onnxruntime-gpu"])
    assert choice is not None and choice.warnings == ()
    assert choice.requirements[0] == "nvidia-cuda-runtime-cu11==11.8.*"


def test_jax_gets_its_cuda_plugin_and_cuda_13_its_13_plugin() -> None:
    assert lines_for(["jax==0.7.2"]) == ("jax-cuda12-plugin[with-cuda]",)
    choice = resolve_cuda(True, "13.0", None, ["jax"])
    assert choice is not None and choice.requirements == ("jax-cuda13-plugin[with-cuda]",)


def test_a_framework_without_a_build_for_the_cuda_major_warns_and_adds_nothing() -> None:
    choice = resolve_cuda(True, "11.8", None, ["jax"])
    assert choice is not None and choice.requirements == ()
    assert choice.warnings == ("jax has no CUDA 11 build; set build.cuda to a CUDA 12 or 13.x version",)


@pytest.mark.parametrize(
    "requirements",
    [
        ["torch==2.7.1"],
        ["torch>=2.1", "onnxruntime-gpu"],
        ["tensorflow[and-cuda]==2.15.0"],
        ["jax[cuda12]"],
        ["onnxruntime-gpu[cuda,cudnn]==1.22.0"],
        ["cupy-cuda12x[ctk]"],
        ["numpy", "pillow"],
    ],
)
def test_nothing_is_added_when_a_framework_brings_its_own_cuda_or_none_is_needed(requirements: list[str]) -> None:
    assert lines_for(requirements) == ()


def test_the_users_own_pins_win(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("tensorflow==2.15.0\nnvidia-cudnn-cu12==8.9.4.25\n")
    reqs = read_requirements(tmp_path, "requirements.txt")
    lines = lines_for(["tensorflow==2.15.0", "nvidia-cudnn-cu12==8.9.4.25"])
    merged = reqs.with_defaults(lines, "build.gpu: CUDA libraries")
    texts = [r.text for r in merged.requirements]
    assert texts.count("nvidia-cudnn-cu12==8.9.4.25") == 1 and "nvidia-cudnn-cu12==8.9.*" not in texts
    assert "nvidia-cublas-cu12==12.2.*" in texts


def test_build_run_that_compiles_cuda_gets_nvcc_headers_and_cccl() -> None:
    assert needs_build_tools(["pip install flash-attn --no-build-isolation"])
    assert needs_build_tools(["CUDA_HOME=/x make"]) and not needs_build_tools(["apt-get install -y curl"])
    tools = ("nvidia-cuda-nvcc-cu12==12.8.*", "nvidia-cuda-runtime-cu12==12.8.*", "nvidia-cuda-cccl-cu12==12.8.*")
    assert lines_for(["torch==2.7.1"], ("pip install flash-attn",)) == tools
    assert lines_for(["numpy"], ("nvcc -o k k.cu",)) == (
        "nvidia-cuda-nvcc-cu11==11.8.*",
        "nvidia-cuda-runtime-cu11==11.8.*",
        "nvidia-cuda-cccl-cu11==11.8.*",
    )


def test_a_cuda_without_wheels_warns() -> None:
    lines, warnings = cuda_requirements("11.2", "8", ["onnxruntime-gpu==1.10.0"])
    assert lines == [] and warnings[0].startswith("NVIDIA publishes no CUDA 11.2 wheels")


def test_every_cuda_minor_with_wheels_has_a_range_for_every_library() -> None:
    table = wheel_table()
    for major, minors in table["wheel_cudas"].items():
        for minor in minors:
            for library in table["distributions"][major]:
                line = library_requirement(library, minor, "9")
                assert line is not None, (minor, library)
                assert line.startswith(table["distributions"][major][library])


def test_specifiers() -> None:
    assert satisfies("2.4.1", "~=2.4.0") and not satisfies("2.5.0", "~=2.4.0")
    assert satisfies("2.5.1", ">=2.1,<2.6") and not satisfies("2.6.0", ">=2.1,<2.6")
    assert satisfies("2.4.1", "==2.4.*") and not satisfies("2.40.0", "==2.4.*") and satisfies("9", "")
    assert requirement_specifiers(["Torch[x] >= 2.1, <3 ; python_version>'3'", "jax  # c", "-r x"]) == {
        "torch": ">=2.1,<3",
        "jax": "",
    }


def test_library_dirs_follow_the_wheels_layout() -> None:
    assert library_dir("nvidia-cuda-runtime-cu12") == "nvidia/cuda_runtime/lib"
    assert library_dir("nvidia_cublas_cu11") == "nvidia/cublas/lib"
    assert library_dir("nvidia-cublas") == "nvidia/cu13/lib"
    assert library_dir("nvidia-cudnn-cu13") == "nvidia/cudnn/lib"
    assert library_dir("nvidia-cuda-cccl-cu12") is None and library_dir("numpy") is None
    dists = [{"name": n} for n in ("nvidia-cublas", "nvidia-cufft", "nvidia-nccl-cu13", "torch")]
    assert library_dirs(dists, SITE + "/") == [f"{SITE}/nvidia/cu13/lib", f"{SITE}/nvidia/nccl/lib"]


def _contract() -> Contract:
    env = ["PATH=/usr/bin:/bin", "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64"]
    return Contract(env, ["python"], None, "/src", {}, {"run.cog.version": "x"}, {})


LOCKED = [
    {"name": "torch", "version": "2.7.1"},
    {"name": "nvidia-cuda-runtime-cu12", "version": "12.6.77"},
    {"name": "nvidia-cublas-cu12", "version": "12.6.4.1"},
    {"name": "nvidia-cuda-nvcc-cu12", "version": "12.6.85"},
    {"name": "nvidia-cuda-cccl-cu12", "version": "12.6.77"},
]


def test_the_image_env_lets_the_loader_and_nvcc_find_the_wheels() -> None:
    contract = with_cuda(_contract(), True, "12.8", {"distributions": LOCKED}, SITE, ["pip install flash-attn"])
    env = dict(item.split("=", 1) for item in contract.env)
    assert env["LD_LIBRARY_PATH"].split(":") == [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/local/nvidia/lib64",
        f"{SITE}/nvidia/cublas/lib",
        f"{SITE}/nvidia/cuda_nvcc/lib",
        f"{SITE}/nvidia/cuda_runtime/lib",
    ]
    assert env["CUDA_HOME"] == f"{SITE}/nvidia/cuda_nvcc"
    assert env["PATH"] == f"{SITE}/nvidia/cuda_nvcc/bin:/usr/bin:/bin"
    assert env["CPATH"].split(":") == [f"{SITE}/nvidia/{m}/include" for m in ("cuda_cccl", "cuda_nvcc", "cuda_runtime")]
    info = json.loads(contract.labels[GPU_LABEL])
    assert info == json.loads(env["OCIBUILD_GPU"])
    assert info["cuda"] == "12.6" and info["driver_min"] == "525.60.13" and info["driver_toolkit"] == "560.28.03"
    assert info["archs"] == ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]


def test_cpu_images_and_images_without_cuda_wheels_are_unchanged() -> None:
    contract = _contract()
    assert with_cuda(contract, False, None, {"distributions": LOCKED}, SITE) is contract
    assert with_cuda(contract, True, "12.8", {"distributions": [{"name": "numpy"}]}, SITE) is contract


def test_gpu_requirements_take_the_torch_build_from_its_local_version() -> None:
    dists = [{"name": "torch", "version": "2.9.0+cu130"}, {"name": "nvidia-cuda-runtime", "version": "13.0.96"}]
    info = gpu_requirements(dists, "13.0")
    assert info["archs"][-1] == "sm_120" and "sm_70" not in info["archs"] and info["driver_min"] == "580.65.06"
    assert gpu_requirements([], "11.8")["archs"] == []


def test_nvidia_apt_packages_become_the_wheels_with_their_libraries() -> None:
    from ocibuild.cog.cudawheels import apt_requirements

    names = ["ffmpeg", "cudnn9-cuda-12", "libcudnn8", "libnccl2", "libcublas-12-4", "cuda-nvcc-12-4", "cuda-toolkit"]
    found, warnings = apt_requirements(names, "11.8", "8")
    assert "ffmpeg" not in found and not warnings
    assert found["cudnn9-cuda-12"] == ["nvidia-cudnn-cu12==9.*"]  # the package's own CUDA and cuDNN majors
    assert found["libcudnn8"] == ["nvidia-cudnn-cu11==8.*"]  # the image's CUDA
    assert found["libnccl2"] == ["nvidia-nccl-cu11"]
    assert found["libcublas-12-4"] == ["nvidia-cublas-cu12==12.4.*"]
    assert {"nvidia-cuda-nvcc-cu12==12.4.*", "nvidia-cuda-cccl-cu12==12.4.*"} <= set(found["cuda-nvcc-12-4"])
    assert "nvidia-cuda-nvcc-cu11==11.8.*" in found["cuda-toolkit"] and len(found["cuda-toolkit"]) > 5
    _, warnings = apt_requirements(["libcublas-11-2"], "12.4", "9")  # NVIDIA publishes no CUDA 11.2 wheels
    assert warnings == ["system_packages: libcublas-11-2 is NVIDIA's apt package, with no nvidia-* wheel for CUDA 11.2"]


def test_a_gpu_build_leaves_nvidia_apt_packages_out_of_debians_list() -> None:
    choice = resolve_cuda(True, "12.4", None, [], (), ["cudnn9-cuda-12", "zsh"])
    assert choice is not None and choice.apt_packages == ("cudnn9-cuda-12",)
    assert "nvidia-cudnn-cu12==9.*" in choice.requirements
    assert resolve_cuda(False, None, None, [], (), ["cudnn9-cuda-12"]) is None  # a CPU image: Debian is asked
