"""Pick CUDA and cuDNN for a GPU build the way Cog does (pkg/config/config.go::validateAndCompleteCUDA).

Order: TensorFlow (pinned, or the newest row a range admits) decides CUDA and cuDNN; else torch (or
torchvision/torchaudio) picks the newest CUDA it has wheels for (a `+cuXYZ` local version picks that one); else
`build.cuda`; else the default CUDA of another GPU framework in the requirements (base-images/cuda-wheels.json:
jax, onnxruntime-gpu, cupy, paddle); else 11.8. torch need not be pinned: a range (`torch>=2.1`, `torch~=2.4`) or
a bare `torch` takes the newest table row it admits, as the resolver will take the newest release (Cog itself
reads the first version of the line, and refuses a bare `torch`).
cuDNN defaults to the newest one the nvidia/cuda images ship for that CUDA. The data lives in
base-images/cuda-compat.json (see its `_source`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ocibuild.cog.cudawheels import apt_requirements, cuda_requirements, framework_default_cuda
from ocibuild.cog.specifiers import requirement_specifiers, satisfies
from ocibuild.cogimage import TORCH_FAMILY
from ocibuild.errors import UserInputError
from ocibuild.resources import data_dir

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PIN = re.compile(r"==\s*([^\s;,#]+)")


@dataclass(frozen=True)
class CudaChoice:
    """The resolved CUDA toolkit, cuDNN major, the PyTorch wheel index suffix (e.g. "cu128"), and the requirement
    lines that bring the CUDA libraries (nvidia-* wheels, a framework's CUDA plugin; see ``cudawheels``)."""

    cuda: str
    cudnn: str
    torch_index_suffix: str | None = None
    warnings: tuple[str, ...] = field(default=())
    requirements: tuple[str, ...] = field(default=())
    apt_packages: tuple[str, ...] = field(default=())
    """system_packages that are NVIDIA's apt packages: their libraries come as wheels (in ``requirements``)."""


@cache
def compat_table() -> dict[str, Any]:
    """The CUDA/cuDNN/torch/TensorFlow table from base-images/cuda-compat.json (source tree or wheel)."""
    return json.loads((data_dir("base-images") / "cuda-compat.json").read_text())


def pinned_versions(requirement_lines: list[str]) -> dict[str, str | None]:
    """Map each requirement's normalised name to its `==` version (None when not pinned)."""
    pins: dict[str, str | None] = {}
    for raw in requirement_lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        match = _NAME.match(line)
        if not match:
            continue
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        pin = _PIN.search(line)
        pins.setdefault(name, pin.group(1) if pin else None)
    return pins


def _parts(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+", 1)[0]))


def _minor(version: str) -> str:
    major, minor = (*_parts(version), 0, 0)[:2]
    return f"{major}.{minor}"


def _matches(prefix: str, version: str) -> bool:
    """Cog's version.Matches: "2.3" matches 2.3.0 and 2.3.1; "2.3.1" only itself."""
    want = _parts(prefix)
    return bool(want) and _parts(version)[: len(want)] == want


def _suffix(cuda: str) -> str:
    return "cu" + _minor(cuda).replace(".", "")


def _torch_version(requirement_lines: list[str], cuda: str | None = None) -> tuple[str, str] | None:
    """The (requirement as written, torch version) of the first torch-family requirement: a `==` pin maps to
    its row; a range or no version takes the newest row it admits (the version uv will pick); an unknown
    version is returned as written, which has no CUDA builds. With ``cuda`` set, a range prefers the newest row
    with a build for that CUDA or an older one (Cog's torchGPUPackage)."""
    specs = requirement_specifiers(requirement_lines)
    pins = pinned_versions(requirement_lines)
    for package in TORCH_FAMILY:
        if package not in specs:
            continue
        version = pins[package]
        rows = compat_table()["torch"]
        if version is not None and "*" not in version:
            local = version.split("+", 1)
            for row in rows:
                if _matches(local[0], row[package]):
                    return f"{package}=={version}", row["torch"] + (f"+{local[1]}" if len(local) > 1 else "")
            return f"{package}=={version}", version
        admitted = [row for row in rows if satisfies(row[package], specs[package])]
        written = package + specs[package]
        if cuda and admitted:

            def fit(row: dict[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
                builds = [_parts(c) for c in row["cuda"] if _parts(c) <= _parts(_minor(cuda))]
                return max(builds, default=()), _parts(row["torch"])

            return written, max(admitted, key=fit)["torch"]
        if not admitted:
            return written, "0"
        return written, max(admitted, key=lambda row: _parts(row["torch"]))["torch"]
    return None


def _newest_admitted_tensorflow(requirement_lines: list[str]) -> str | None:
    """For a TensorFlow range or bare name, the newest row it admits (what uv will install); None if none."""
    spec = requirement_specifiers(requirement_lines).get("tensorflow")
    if spec is None:
        return None
    rows = [r["tensorflow"] for r in compat_table()["tensorflow"] if satisfies(r["tensorflow"], spec)]
    return max(rows, key=_parts, default=None)


def _torch_cudas(torch_version: str) -> list[str]:
    base, _, local = torch_version.partition("+")
    rows = [row for row in compat_table()["torch"] if _matches(base, row["torch"])]
    cudas = sorted({c for row in rows for c in row["cuda"]}, key=_parts)
    if local.startswith("cu"):
        chosen = [c for c in cudas if _suffix(c) == local]
        return chosen or cudas
    return cudas


def _cudnns_for(cuda: str) -> list[str]:
    return compat_table()["cudnn"].get(_minor(cuda), [])


def resolve_cuda(
    gpu: bool,
    cuda: str | None,
    cudnn: str | None,
    requirement_lines: list[str],
    build_run: Sequence[str] = (),
    system_packages: Sequence[str] = (),
) -> CudaChoice | None:
    """Resolve CUDA/cuDNN for a `gpu: true` build (None for CPU builds); UserInputError when impossible."""
    if not gpu:
        return None
    pins = pinned_versions(requirement_lines)
    warnings: list[str] = []
    torch = _torch_version(requirement_lines, cuda)
    tf_version = pins.get("tensorflow") or _newest_admitted_tensorflow(requirement_lines)
    tf_cudnn: str | None = None
    if tf_version:
        row = next((r for r in compat_table()["tensorflow"] if r["tensorflow"] == tf_version), None)
        if row is None and not cuda:
            raise UserInputError(
                f"Cog doesn't know which CUDA version is compatible with tensorflow=={tf_version}; set build.cuda"
            )
        if row is not None:
            tf_cudnn = row["cudnn"]
            if not cuda:
                cuda = row["cuda"]
            elif _minor(cuda) != row["cuda"]:
                warnings.append(f"tensorflow=={tf_version} is built for CUDA {row['cuda']}, not {cuda}")
    elif torch is not None:
        written, version = torch
        cudas = _torch_cudas(version)
        if not cuda:
            if not cudas:
                raise UserInputError(
                    f"Cog doesn't know which CUDA version is compatible with {written}; set build.cuda"
                )
            cuda = cudas[-1]
        elif cudas and _minor(cuda) not in cudas:
            warnings.append(f"torch {version} has no CUDA {cuda} build; try one of {', '.join(cudas)}")
    cuda = cuda or framework_default_cuda(requirement_lines) or compat_table()["default_cuda"]
    known = _cudnns_for(cuda)
    if not known:
        raise UserInputError(f"CUDA {cuda} is not supported; known versions: {', '.join(compat_table()['cudnn'])}")
    if cudnn is None:
        cudnn = tf_cudnn if tf_cudnn in known else max(known, key=_parts)
    elif cudnn not in known:
        raise UserInputError(f"CUDA {cuda} is not compatible with cuDNN {cudnn}; compatible: {', '.join(known)}")
    suffix = _torch_index_suffix(torch, cuda, warnings)
    lines, wheel_warnings = cuda_requirements(cuda, cudnn, requirement_lines, build_run)
    apt, apt_warnings = apt_requirements(system_packages, cuda, cudnn)
    for name, apt_lines in apt.items():
        if apt_lines:
            apt_warnings.append(f"system_packages: {name} is NVIDIA's apt package; installed as {', '.join(apt_lines)}")
    lines = list(dict.fromkeys([*lines, *(line for apt_lines in apt.values() for line in apt_lines)]))
    warnings += wheel_warnings + apt_warnings
    return CudaChoice(cuda, cudnn, suffix, tuple(warnings), tuple(lines), tuple(apt))


def _torch_index_suffix(torch: tuple[str, str] | None, cuda: str, warnings: list[str]) -> str | None:
    """The newest torch CUDA build not newer than the toolkit (Cog's torchGPUPackage)."""
    if torch is None:
        return None
    fitting = [c for c in _torch_cudas(torch[1]) if _parts(c) <= _parts(_minor(cuda))]
    if not fitting:
        warnings.append(f"no torch {torch[1]} wheel is built for CUDA {cuda} or older")
        return None
    return _suffix(fitting[-1])
