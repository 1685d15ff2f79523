"""Run the ``uv`` binary shipped by the ``uv`` package, and turn its failures into one-line messages."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from ocibuild.errors import BuildError


@cache
def uv_binary() -> str:
    """The path of the uv executable (from the ``uv`` package; ``$OCIBUILD_UV`` overrides)."""
    override = os.environ.get("OCIBUILD_UV")
    if override:
        return override
    try:
        from uv import find_uv_bin
    except ImportError:
        raise BuildError("the 'uv' package is not installed; install ocibuild with its dependencies") from None
    return find_uv_bin()


@cache
def uv_version() -> str:
    return run_uv(["--version"]).strip()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.setdefault("NO_COLOR", "1")
    for name in ("VIRTUAL_ENV", "UV_SYSTEM_PYTHON", "UV_TORCH_BACKEND", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL"):
        env.pop(name, None)
    return env


def run_uv(args: Sequence[str], cwd: Path | None = None) -> str:
    """Run ``uv ARGS``; its stdout, or a BuildError whose message is uv's key line."""
    proc = subprocess.run([uv_binary(), *args], cwd=cwd, env=_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise UvError(key_line(proc.stderr) or f"uv exited with status {proc.returncode}")
    return proc.stdout


class UvError(BuildError):
    """uv failed; the message is the line of its report that explains why."""


def key_line(stderr: str) -> str:
    """The explanation in uv's report on one line: the first and the root cause, plus the first hint."""
    items: list[str] = []
    hint = ""
    for raw in stderr.splitlines():
        line = raw.strip()
        if not line or line.startswith("warning:"):
            continue
        if line.startswith(("hint:", "help:")):
            hint = hint or line
        elif re.match(r"^(error|cause|Caused by):", line) or not items:
            items.append(re.sub(r"^(error|cause|Caused by):\s*", "", line))
        else:
            items[-1] += " " + line
    items = [i for i in items if not i.startswith(_GENERIC)] or items
    if len(items) > 2:
        items = [items[0], items[-1]]
    text = ": ".join(items) + (f" ({hint})" if hint else "")
    return re.sub(r"\s+", " ", text).strip()


_GENERIC = ("No solution found when resolving dependencies", "Failed to resolve dependencies")
