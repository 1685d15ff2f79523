"""CUDA for GPU images from NVIDIA's wheels, for any framework (data: base-images/cuda-wheels.json).

torch brings its CUDA as nvidia-* dependencies; TensorFlow, onnxruntime-gpu, cupy and paddle do not (without an
extra), and jax needs its CUDA plugin. ``cuda_requirements`` returns the requirement lines that complete a
``gpu: true`` project for the chosen CUDA/cuDNN: the nvidia-* runtime wheels its framework loads (ranges for that
CUDA minor), or the framework's own CUDA package (``jax-cuda12-plugin[with-cuda]``). They join the same uv
resolution through ``Requirements.with_defaults``, so a line the user wrote for the same project wins. Nothing is
added for torch (its wheels pin their own), nor when the user asked for the framework's CUDA extra
(``tensorflow[and-cuda]``, ``jax[cuda12]``, ``onnxruntime-gpu[cuda,cudnn]``, ``cupy-cuda12x[ctk]``).

When build.run compiles CUDA code (it mentions nvcc, CUDA_HOME, flash-attn, ...), nvcc, the runtime headers and
CCCL are added too; ``ocibuild.cog.cudaimage`` points CUDA_HOME, PATH and CPATH at them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from ocibuild.cog.specifiers import NAME, release, requirement_specifiers, satisfies

_EXTRAS = re.compile(r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*\[([^\]]*)\]")


@cache
def wheel_table() -> dict[str, Any]:
    """base-images/cuda-wheels.json."""
    from ocibuild.resources import data_dir

    return json.loads((data_dir("base-images") / "cuda-wheels.json").read_text())


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _minor(cuda: str) -> str:
    parts = (*release(cuda), 0, 0)
    return f"{parts[0]}.{parts[1]}"


def requirement_extras(requirement_lines: Sequence[str]) -> dict[str, set[str]]:
    """Each named requirement's normalised extras (``tensorflow[and-cuda]`` -> {"tensorflow": {"and-cuda"}})."""
    extras: dict[str, set[str]] = {}
    for raw in requirement_lines:
        line = raw.split(" #", 1)[0].strip()
        name = NAME.match(line) if line and not line.startswith(("#", "-")) else None
        if name is None:
            continue
        found = _EXTRAS.match(line)
        values = {_normal(e) for e in found.group(1).split(",") if e.strip()} if found else set()
        extras.setdefault(_normal(name.group(1)), set()).update(values)
    return extras


def framework_rows(requirement_lines: Sequence[str], major: str | None = None) -> list[dict[str, Any]]:
    """The frameworks rows the requirements name: a `==` pin picks its row; otherwise the first (newest) row with
    a build for CUDA ``major`` (when given), else the first row."""
    specs = requirement_specifiers(list(requirement_lines))
    rows: list[dict[str, Any]] = []
    for package in dict.fromkeys(row["package"] for row in wheel_table()["frameworks"]):
        if package not in specs:
            continue
        candidates = [row for row in wheel_table()["frameworks"] if row["package"] == package]
        pin = re.fullmatch(r"==\s*([0-9][^,*]*)", specs[package])
        chosen = next((r for r in candidates if pin and satisfies(pin.group(1), r.get("versions", ""))), None)
        fitting = next((r for r in candidates if major in r.get("cuda_majors", [])), None) if major else None
        rows.append(chosen or fitting or candidates[0])
    return rows


def framework_default_cuda(requirement_lines: Sequence[str]) -> str | None:
    """The CUDA a GPU framework in the requirements is built for, when nothing else chose one (else None)."""
    if set(requirement_specifiers(list(requirement_lines))) & set(wheel_table()["self_provisioning"]):
        return None
    return next((row["default_cuda"] for row in framework_rows(requirement_lines) if "default_cuda" in row), None)


def needs_build_tools(build_run: Sequence[str]) -> bool:
    """Whether a build.run command compiles CUDA code (mentions nvcc, CUDA_HOME, flash-attn, ...)."""
    triggers = wheel_table()["build_tools"]["triggers"]
    return any(trigger.lower() in command.lower() for command in build_run for trigger in triggers)


def library_requirement(library: str, cuda: str, cudnn: str) -> str | None:
    """One library's requirement line for CUDA ``cuda`` (cuDNN major ``cudnn``), or None without a wheel."""
    table = wheel_table()
    major, minor = str(release(cuda)[0]), _minor(cuda)
    name = table["distributions"].get(major, {}).get(library)
    if name is None:
        return None
    if library == "cudnn":
        spec = table["cudnn"].get(cudnn, {}).get(major)
        return f"{name}{spec}" if spec else None
    firsts = table["first_versions"].get(major, {}).get(library)
    if firsts:
        minors = sorted(firsts, key=release)
        if minor not in firsts:
            return None
        later = minors[minors.index(minor) + 1 :]
        return f"{name}>={firsts[minor]}" + (f",<{firsts[later[0]]}" if later else "")
    if library in table["toolkit_versioned"]:
        return f"{name}=={minor}.*"
    return name


def cuda_requirements(
    cuda: str, cudnn: str, requirement_lines: Sequence[str], build_run: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """(requirement lines, warnings) that give a ``gpu: true`` project its CUDA libraries; see the module doc."""
    table = wheel_table()
    major, minor = str(release(cuda)[0]), _minor(cuda)
    extras = requirement_extras(requirement_lines)
    warnings: list[str] = []
    libraries: list[str] = []
    lines: list[str] = []
    if not set(extras) & set(table["self_provisioning"]):
        for row in framework_rows(requirement_lines, major):
            if extras.get(row["package"], set()) & set(row.get("provided_by_extras", [])):
                continue
            if row.get("cuda_majors") and major not in row["cuda_majors"]:
                warnings.append(
                    f"{row['package']} has no CUDA {major} build; set build.cuda to a CUDA "
                    f"{' or '.join(row['cuda_majors'])}.x version"
                )
                continue
            lines += [line.format(major=major) for line in row.get("lines", [])]
            libraries += row.get("libraries", [])
    if needs_build_tools(build_run):
        libraries += table["build_tools"]["libraries"]
    wanted = list(dict.fromkeys(libraries))
    if wanted and minor not in table["wheel_cudas"].get(major, []):
        warnings.append(
            f"NVIDIA publishes no CUDA {minor} wheels; the image gets no CUDA libraries "
            f"(wheels exist for {', '.join(c for m in table['wheel_cudas'].values() for c in m)})"
        )
        return lines, warnings
    for library in wanted:
        line = library_requirement(library, cuda, cudnn)
        if line is not None:
            lines.append(line)
    return list(dict.fromkeys(lines)), warnings


def apt_requirements(system_packages: Sequence[str], cuda: str, cudnn: str) -> tuple[dict[str, list[str]], list[str]]:
    """NVIDIA's apt packages among ``system_packages`` (``cudnn9-cuda-12``, ``libnccl2``, ``cuda-toolkit-12-4``, ...)
    as the requirement lines of the nvidia-* wheels with the same libraries, and warnings for those without one.

    Cog's CUDA base images carry NVIDIA's apt repository, so such names install there; Debian has none of them.
    The package's own CUDA (and cuDNN) major wins over the image's, as apt would install what the name says.
    """
    patterns = wheel_table()["apt_packages"]["patterns"]
    found: dict[str, list[str]] = {}
    warnings: list[str] = []
    for name in system_packages:
        row, match = next(((r, m) for r in patterns if (m := re.fullmatch(r["pattern"], name.strip()))), (None, None))
        if row is None or match is None:
            continue
        groups = match.groupdict()
        own, minor = groups.get("cuda"), groups.get("minor")
        if own and minor:
            version = f"{own}.{minor}"
        elif own and own != str(release(cuda)[0]):
            version = f"{own}.0"
        else:
            version = cuda
        libraries = [groups["library"]] if groups.get("library") else row["libraries"]
        if _minor(version) not in wheel_table()["wheel_cudas"].get(str(release(version)[0]), []):
            libraries = []
        lines = [library_requirement(lib, version, groups.get("cudnn") or cudnn) for lib in libraries]
        found[name] = [line for line in lines if line is not None]
        if not found[name]:
            warnings.append(
                f"system_packages: {name} is NVIDIA's apt package, with no nvidia-* wheel for CUDA {version}"
            )
    return found, warnings
