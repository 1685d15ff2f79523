"""What a GPU image's config says about its CUDA wheels: where the loader finds them, nvcc for build.run, and
what the GPU must offer (the runner checks it at setup: ``layers/runner/cog/gpucheck.py``).

**The loader: ``LD_LIBRARY_PATH``, not ``/etc/ld.so.conf.d``.** A conf.d file does nothing until ``ldconfig``
writes ``/etc/ld.so.cache`` inside the image, and ocibuild builds layers without running anything in the image
(build.run is optional and may not run on the build host). ``LD_LIBRARY_PATH`` takes effect for every process
with no cache, Cog's own Dockerfile already sets it (so users cannot set it: it is on Cog's deny-list), and the
frameworks that find CUDA by soname (TensorFlow, onnxruntime, cupy, paddle: ``dlopen("libcublas.so.12")``) need
exactly that. torch finds its wheels through its RPATH either way. The directories come from the lock: every
nvidia-* distribution's ``lib`` directory (``nvidia/<module>/lib``; CUDA 13 wheels share ``nvidia/cu13/lib``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from typing import Any

from ocibuild.cog.contract import Contract
from ocibuild.cog.cudawheels import needs_build_tools, wheel_table
from ocibuild.cog.specifiers import release

GPU_LABEL = "run.ocibuild.gpu"
"""Label holding the CUDA the image's wheels are built for, their GPU architectures and the minimum driver."""


def library_dir(name: str) -> str | None:
    """The directory under site-packages holding the shared libraries of nvidia-* distribution ``name``."""
    name = re.sub(r"[-_.]+", "-", name).lower()
    patterns = wheel_table()["lib_dirs"]
    if not name.startswith("nvidia-") or re.sub(r"-cu\d+$", "", name) in patterns["headers_only"]:
        return None
    module = name[len("nvidia-") :]
    suffixed = re.fullmatch(r"(.+)-cu(\d+)", module)
    if suffixed is None:
        return patterns["cu13_pattern"]
    return patterns["pattern"].format(module=suffixed.group(1).replace("-", "_"))


def _module_dir(name: str) -> str:
    """``nvidia/<module>`` (or ``nvidia/cu13``) of an nvidia-* distribution, headers-only ones included."""
    suffixed = re.fullmatch(r"nvidia-(.+)-cu(\d+)", name)
    return f"nvidia/{suffixed.group(1).replace('-', '_')}" if suffixed else "nvidia/cu13"


def library_dirs(distributions: Sequence[dict[str, Any]], site_packages: str) -> list[str]:
    """The absolute ``lib`` directories of the locked nvidia-* distributions, sorted, each once."""
    found = {library_dir(d["name"]) for d in distributions}
    return [f"{site_packages.rstrip('/')}/{d}" for d in sorted(x for x in found if x)]


def locked_cuda(distributions: Sequence[dict[str, Any]]) -> str | None:
    """The CUDA major.minor of the locked CUDA runtime wheel (what the image really has), or None."""
    for dist in distributions:
        if re.fullmatch(r"nvidia-cuda-runtime(-cu\d+)?", dist["name"].lower()):
            parts = release(dist["version"])
            return f"{parts[0]}.{parts[1]}" if len(parts) > 1 else None
    return None


def gpu_requirements(distributions: Sequence[dict[str, Any]], chosen_cuda: str) -> dict[str, Any]:
    """``{"cuda", "driver_min", "driver_toolkit", "archs"}`` for the image: the CUDA of its wheels (else the
    chosen one), the oldest driver that runs it (minor version compatibility), the toolkit's own driver, and
    the GPU architectures of its torch build (empty when unknown: only the driver is checked then)."""
    table = wheel_table()
    cuda = locked_cuda(distributions) or ".".join(map(str, (*release(chosen_cuda), 0)[:2]))
    major = cuda.split(".", 1)[0]
    torch = next((d for d in distributions if d["name"].lower() == "torch"), None)
    archs: list[str] = []
    if torch is not None:
        local = str(torch["version"]).partition("+")[2]
        suffix = local if local.startswith("cu") else "cu" + cuda.replace(".", "")
        archs = table["torch_arch_lists"].get(suffix, [])
    return {
        "cuda": cuda,
        "driver_min": table["driver_min"].get(major),
        "driver_toolkit": table["driver_toolkit"].get(cuda),
        "archs": archs,
    }


def build_tools_env(distributions: Sequence[dict[str, Any]], site_packages: str) -> dict[str, str]:
    """``CUDA_HOME`` (the nvcc wheel's root) and ``CPATH`` (nvcc, runtime and CCCL headers) when nvcc is locked."""
    root = site_packages.rstrip("/")
    names = sorted(d["name"].lower() for d in distributions)
    roots = {n: f"{root}/{_module_dir(n)}" for n in names if n.startswith("nvidia-")}
    nvcc = next((n for n in names if re.fullmatch(r"nvidia-cuda-nvcc(-cu\d+)?", n)), None)
    if nvcc is None:
        return {}
    headers = [n for n in names if re.fullmatch(r"nvidia-cuda-(nvcc|runtime|cccl)(-cu\d+)?", n)]
    return {"CUDA_HOME": roots[nvcc], "CPATH": ":".join(sorted({roots[n] + "/include" for n in headers}))}


def with_cuda(
    contract: Contract,
    gpu: bool,
    chosen_cuda: str | None,
    python: dict[str, Any],
    site_packages: str,
    build_run: Sequence[str] = (),
) -> Contract:
    """``contract`` with its env and labels completed for the CUDA wheels of the lock's ``python`` section:
    LD_LIBRARY_PATH gains their lib directories, build.run that compiles CUDA gets CUDA_HOME, CPATH and nvcc
    on PATH, and ``OCIBUILD_GPU`` (env, for the runner's check) and the ``run.ocibuild.gpu`` label say what the
    GPU must offer."""
    distributions = python.get("distributions", [])
    dirs = library_dirs(distributions, site_packages)
    if not gpu or chosen_cuda is None or not dirs:
        return contract
    tools = build_tools_env(distributions, site_packages) if needs_build_tools(build_run) else {}
    env = []
    for item in contract.env:
        key, _, value = item.partition("=")
        if key == "LD_LIBRARY_PATH":
            item = "LD_LIBRARY_PATH=" + ":".join([*filter(None, [value]), *dirs])
        elif key == "PATH" and tools:
            item = f"PATH={tools['CUDA_HOME']}/bin:{value}"
        env.append(item)
    env += [f"{key}={value}" for key, value in tools.items()]
    info = json.dumps(gpu_requirements(distributions, chosen_cuda), sort_keys=True, separators=(",", ":"))
    env.append(f"OCIBUILD_GPU={info}")
    return dataclasses.replace(contract, env=env, labels={**contract.labels, GPU_LABEL: info})
