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
        message = key_line(proc.stderr) or f"uv exited with status {proc.returncode}"
        host = unreachable_host(proc.stderr)
        raise UvNetworkError(message, host) if host else UvError(message)
    return proc.stdout


class UvError(BuildError):
    """uv failed; the message is the line of its report that explains why."""


class UvNetworkError(UvError):
    """uv could not reach an index or file host: a failed build (exit 1), not bad input."""

    def __init__(self, message: str, host: str) -> None:
        super().__init__(message)
        self.host = host


_NETWORK = re.compile(
    r"error sending request|dns error|failed to lookup address|Connection refused|tcp connect error|"
    r"operation timed out|Network is unreachable|connection closed before message completed|"
    r"Could not connect|request or response body error",
    re.I,
)
_URL_HOST = re.compile(r"(?:https?|file)://([^/\s`'\")]+)")


def unreachable_host(stderr: str) -> str | None:
    """The host uv failed to reach, when its report is about the network (else None)."""
    if not _NETWORK.search(stderr):
        return None
    match = _URL_HOST.search(stderr)
    return match.group(1) if match else "the package index"


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
