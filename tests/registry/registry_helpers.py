"""Helpers for registry tests: tool checks and views of what a registry serves (via skopeo and the API)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from scripts.fault_proxy import FaultProxy
from scripts.registry import start_registry

__all__ = ["FaultProxy", "start_registry"]

USER = "ocibuild"
PASSWORD = "s3cret-Pa55word-do-not-leak"


def need(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)} (apt-get install docker-registry skopeo umoci)")


def skopeo(*args: str) -> subprocess.CompletedProcess:
    need("skopeo")
    return subprocess.run(["skopeo", *args], capture_output=True, check=True)


def remote_digest(host_ref: str) -> str:
    """The sha256 of the manifest bytes the registry serves for ``host_ref``."""
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{host_ref}").stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def remote_tags(host: str, repository: str) -> list[str]:
    r = requests.get(f"http://{host}/v2/{repository}/tags/list", timeout=10)
    return (r.json().get("tags") or []) if r.status_code == 200 else []


def copy_to_layout(host_ref: str, directory: Path, tag: str = "pulled", preserve: bool = True) -> Path:
    """``skopeo copy`` to an OCI layout; ``preserve=False`` lets it convert Docker media types to OCI."""
    keep = ["--preserve-digests"] if preserve else []
    skopeo("copy", "--src-tls-verify=false", *keep, f"docker://{host_ref}", f"oci:{directory}:{tag}")
    return directory


def layout_manifest_digest(directory: Path) -> str:
    return json.loads((directory / "index.json").read_text())["manifests"][0]["digest"]


def blob_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (directory / "blobs" / "sha256").iterdir()}
