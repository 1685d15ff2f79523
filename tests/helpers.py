"""Helpers for tests that drive real tools (skopeo, umoci, runc) and check their results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def require_tool(name: str) -> str:
    """The path of a system tool; fails (not skips) when missing: scripts/install_test_tools.sh installs it."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()), None
    )
    if path is None:
        pytest.fail(f"{name} is not installed; run scripts/install_test_tools.sh")
    return path


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output when it exits non-zero."""
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def umoci_unpack(layout: Path, ref: str, bundle: Path) -> Path:
    """Unpack an OCI layout with umoci (an independent tool) and return the bundle's rootfs."""
    run([require_tool("umoci"), "unpack", "--image", f"{layout}:{ref}", str(bundle)])
    return bundle / "rootfs"


def runc_run(bundle: Path, container_id: str, args: list[str] | None = None, timeout: int = 60) -> str:
    """Run an unpacked bundle under runc without a terminal and return its stdout."""
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["terminal"] = False
    if args is not None:
        config["process"]["args"] = args
    config_path.write_text(json.dumps(config))
    result = run([require_tool("runc"), "run", container_id], cwd=bundle, timeout=timeout)
    return result.stdout


def seed_store(src: Path, dest: Path, parts: tuple[str, ...] = ("debs", "wheels", "debian")) -> Path:
    """A new store at ``dest`` holding only the downloaded inputs of ``src`` (hard links): no layers, keys or memos."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in parts:
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part, copy_function=_link_or_copy)
    return dest


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
