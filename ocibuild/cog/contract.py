"""The Cog image contract as plain data: what an image config must carry to run wherever Cog images run.

PID 1: Cog images start `tini` as ENTRYPOINT. Ours have no ENTRYPOINT: the bundled runner
(`python -m cog.server.http`, layers/runner/) is PID 1 itself — it reaps orphaned children and turns
SIGTERM/SIGINT into a graceful shutdown — so `run.cog.has_init` is "true" all the same.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ocibuild.cog.compat import COG_VERSION
from ocibuild.cog.config import LoadedConfig, completed_config_json, effective_concurrency
from ocibuild.cog.schema import SchemaResult, openapi_json
from ocibuild.cogimage import SYSTEM_PATH
from ocibuild.errors import UserInputError

WORKDIR = "/src"
COG_SDK_DEPENDENCIES = ("typing_extensions>=4.0", "pyyaml>=6.0", "structlog>=21.0.0", "requests>=2.25.0")
"""What installing the ``cog`` SDK (0.23) brings into every Cog image; predictors import them undeclared.
Resolved with the model's requirements (its own pins win); the bundled runner itself needs none of them."""
PORT = 5000
CMD = ("python", "-m", "cog.server.http")
_USERINFO = re.compile(r"^(https?://)[^/@]*@")


@dataclass(frozen=True)
class Contract:
    """The image-config pieces (OCI `config` fields, labels) and manifest annotations for a Cog image."""

    env: list[str]
    cmd: list[str]
    entrypoint: list[str] | None
    working_dir: str
    exposed_ports: dict[str, dict[str, object]]
    labels: dict[str, str]
    annotations: dict[str, str]


def image_contract(
    loaded: LoadedConfig, schema: SchemaResult, pip_freeze: str, python_path: str, arch: str = "amd64"
) -> Contract:
    """The contract for a loaded cog.yaml and its schema.

    `pip_freeze` is the `pip freeze` text of the image's environment (from the lock); `python_path` is the
    directory holding the `python` that has the runner (it goes first on PATH: coglet spawns plain `python`).
    """
    concurrency = effective_concurrency(loaded, schema.concurrency_max)
    if concurrency is not None and concurrency > 1 and not schema.is_async:
        raise UserInputError(f"{loaded.path.name}: concurrency.max: {concurrency} needs an async def run()")
    labels = {
        "run.cog.version": COG_VERSION,
        "run.cog.config": completed_config_json(loaded, schema.concurrency_max),
        "run.cog.openapi_schema": openapi_json(schema.openapi),
        "run.cog.pip_freeze": pip_freeze,
        "run.cog.has_init": "true",
    }
    return Contract(
        env=image_env(loaded, concurrency, python_path, arch),
        cmd=list(CMD),
        entrypoint=None,
        working_dir=WORKDIR,
        exposed_ports={f"{PORT}/tcp": {}},
        labels=labels,
        annotations=git_annotations(loaded.project_dir),
    )


def image_env(loaded: LoadedConfig, concurrency: int | None, python_path: str, arch: str = "amd64") -> list[str]:
    """`Env`: PATH, Cog's fixed variables (the NVIDIA toolkit's library path on every image, as Cog's Dockerfile
    sets it), `NVIDIA_VISIBLE_DEVICES` on GPU images, the user's `environment` (sorted), stubs."""
    bin_dir = PurePosixPath(python_path)
    if bin_dir.name.startswith("python"):
        bin_dir = bin_dir.parent
    config = loaded.config
    multiarch = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}.get(arch, "x86_64-linux-gnu")
    env = [
        f"PATH={bin_dir}:{SYSTEM_PATH}",
        "PYTHONUNBUFFERED=1",
        f"LD_LIBRARY_PATH=/usr/lib/{multiarch}:/usr/local/nvidia/lib64:/usr/local/nvidia/bin",
        "NVIDIA_DRIVER_CAPABILITIES=all",
    ]
    if config.build.gpu:
        env.append("NVIDIA_VISIBLE_DEVICES=all")
    env += [f"{name}={value}" for name, value in sorted(expand_environment(config.environment_pairs(), env).items())]
    if loaded.predictor_ref:
        env.append(f"COG_PREDICT_TYPE_STUB={loaded.predictor_ref}")
    if loaded.train_ref:
        env.append(f"COG_TRAIN_TYPE_STUB={loaded.train_ref}")
    if concurrency is not None:
        env.append(f"COG_MAX_CONCURRENCY={concurrency}")
    return env


_REFERENCE = re.compile(r"\\\$|\$\{(\w+)\}|\$(\w+)")
DEFAULTS = {"XDG_CACHE_HOME": "/src/.cache"}
"""Set in every Cog image unless cog.yaml's environment sets it (caches persist under /src across predictions)."""


def expand_environment(pairs: dict[str, str], fixed: list[str]) -> dict[str, str]:
    """cog.yaml ``environment`` with ``$NAME``/``${NAME}`` expanded from the variables before it (in order, as Cog
    documents), then the image's fixed ones; an unknown name expands to nothing, ``\\$`` is a literal ``$``."""
    known = dict(item.split("=", 1) for item in fixed)
    expanded = dict(DEFAULTS)
    for name, value in pairs.items():
        expanded[name] = _expand(value, {**known, **expanded})
    return expanded


def _expand(value: str, scope: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        return "$" if match.group(0) == "\\$" else scope.get(match.group(1) or match.group(2), "")

    return _REFERENCE.sub(one, value)


def git_annotations(project_dir: Path) -> dict[str, str]:
    """`org.opencontainers.image.source`/`revision` from git, when the project is in a repository."""
    revision = _git(project_dir, "rev-parse", "HEAD")
    if not revision:
        return {}
    annotations = {"org.opencontainers.image.revision": revision}
    remote = _git(project_dir, "config", "--get", "remote.origin.url")
    if remote:
        annotations["org.opencontainers.image.source"] = _USERINFO.sub(r"\1", remote)
    return annotations


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
