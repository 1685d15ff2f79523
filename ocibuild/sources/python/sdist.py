"""Build a wheel from a locked sdist with uv (isolated build), and refuse wheels that cannot run on the target.

A build for an image runs inside that image's filesystem (``ocibuild.run.sdistbuild``: base, system_packages and
compilers), so the ``-dev`` packages of cog.yaml are visible as in Cog's ``pip install``; without one (a target
this machine cannot run, or a caller with no image) uv builds on the host.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from ocibuild.errors import BuildError
from ocibuild.oci.store import Store
from ocibuild.sources.python.fetch import pin
from ocibuild.sources.python.tags import wheel_rank, wheel_tags
from ocibuild.sources.python.target import PythonTarget
from ocibuild.sources.python.uv import UvError, run_uv


class BuildEnv(Protocol):
    """Where sdists are built for an image; ``key`` names it (wheels built elsewhere are not reused)."""

    key: str

    def build(self, source: Path, out_dir: Path, label: str) -> None: ...


def _host_glibc() -> tuple[int, ...]:
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return (99, 99)
    return tuple(int(x) for x in version.split(".")[:2]) if name == "glibc" else (99, 99)


def runs_on_target(filename: str, target: PythonTarget) -> bool:
    """A wheel fits when its tags do, or when it was built here for the same CPU, ABI and an older glibc."""
    if wheel_rank(filename, target) is not None:
        return True
    major, minor = target.version_tuple
    abis = {f"cp{major}{minor}", "abi3", "none"}
    same_host = platform.machine() == target.arch and _host_glibc() <= target.glibc_tuple
    local = {f"linux_{target.arch}"} if same_host else set()
    return any(abi in abis and plat in local for _, abi, plat in wheel_tags(filename))


def _interpreter_for(version: str) -> list[str]:
    """``--python X.Y`` when uv finds that interpreter here; else nothing (uv uses any, fine for pure Python)."""
    try:
        run_uv(["python", "find", "--no-config", version])
    except UvError:
        return []
    return ["--python", version]


def build_wheel(
    sdist: Path, dist: dict[str, Any], target: PythonTarget, store: Store, env: BuildEnv | None = None
) -> Path:
    """The wheel built from ``sdist`` (a file or a source tree) for ``target`` (in ``env`` when given), cached by
    its pin, the target and the environment."""
    where = f"-{env.key}" if env is not None else ""
    out_dir = store.root / "wheels" / "built" / f"{pin(dist)}-py{target.python_version}-{target.arch}{where}"
    built = sorted(out_dir.glob("*.whl"))
    if built:
        return built[0]
    label = f"{dist['name']} {dist['version']}"
    (store.root / "tmp").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.root / "tmp") as tmp:
        if env is not None:
            env.build(sdist, Path(tmp), label)
            wheels = sorted((Path(tmp) / "dist").glob("*.whl"))
        else:
            wheels = _build_on_host(sdist, Path(tmp), target, label)
        if len(wheels) != 1:
            raise BuildError(f"{label}: building its sdist gave {len(wheels)} wheels, expected one")
        if not runs_on_target(wheels[0].name, target):
            raise BuildError(
                f"{label} has no wheel for {target.describe()} and its sdist compiles code that cannot be "
                f"built for it here ({wheels[0].name}); use a version or package that ships such a wheel"
            )
        staged = Path(tmp) / "staged"
        staged.mkdir()
        shutil.move(wheels[0], staged / wheels[0].name)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # another build may have finished first
            os.replace(staged, out_dir)
    return next(out_dir.glob("*.whl"))


def _build_on_host(sdist: Path, tmp: Path, target: PythonTarget, label: str) -> list[Path]:
    args = ["build", "--wheel", "--no-config", "--out-dir", str(tmp), *_interpreter_for(target.python_version)]
    try:
        run_uv([*args, str(sdist)])
    except UvError as exc:
        raise BuildError(f"{label}: building its sdist failed ({exc}); use a version that has a wheel") from None
    return sorted(tmp.glob("*.whl"))
