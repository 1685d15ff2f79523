"""Fetch a locked distribution file into the store's wheel cache, verifying its sha256."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ocibuild import progress
from ocibuild.errors import BuildError
from ocibuild.oci.store import Store

CHUNK = 1 << 20


def pin(dist: dict[str, Any]) -> str:
    """What identifies a locked distribution's source: its file's sha256, or ``git-<commit>``."""
    return f"git-{dist['commit']}" if dist["kind"] == "git" else dist["sha256"]


def cached_path(dist: dict[str, Any], store: Store) -> Path:
    """Where the cache keeps ``dist``'s file: ``wheels/<sha256>/<file name>``."""
    return store.root / "wheels" / dist["sha256"] / dist["filename"]


def fetch(dist: dict[str, Any], store: Store, project_dir: Path | None = None) -> Path:
    """The verified local copy of a locked distribution file (or a checkout of its commit), fetched when missing."""
    if dist["kind"] == "git":
        return _checkout(dist, store)
    final = cached_path(dist, store)
    if final.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    if "path" not in dist and not dist["url"].startswith("file://"):
        store.require_online(f"{dist['filename']} (sha256 {dist['sha256'][:12]}…)")
    with store.temp_path(".part") as temp, progress.active().task(dist["filename"], dist.get("size")) as task:
        digest = hashlib.sha256()
        with open(temp, "wb") as out:
            for chunk in _chunks(dist, project_dir):
                digest.update(chunk)
                out.write(chunk)
                task.advance(len(chunk))
        if digest.hexdigest() != dist["sha256"]:
            raise BuildError(
                f"{dist['filename']}: sha256 {digest.hexdigest()} does not match the lock ({dist['sha256']})"
            )
        os.replace(temp, final)
    return final


def _checkout(dist: dict[str, Any], store: Store) -> Path:
    """The source tree of a git requirement at its locked commit: ``vcs/<commit>`` in the store."""
    final = store.root / "vcs" / dist["commit"]
    if final.is_dir():
        return final / dist.get("subdirectory", "")
    store.require_online(f"{dist['name']} at {dist['commit'][:12]} from {dist['url']}")
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.root / "tmp", prefix="git-") as work:
        temp = Path(work) / "src"
        for args in (
            ["clone", "--quiet", "--no-checkout", dist["url"], str(temp)],
            ["-C", str(temp), "-c", "advice.detachedHead=false", "checkout", "--quiet", dist["commit"]],
        ):
            done = subprocess.run(["git", *args], capture_output=True, text=True, check=False, timeout=600)
            if done.returncode != 0:
                why = (done.stderr.strip().splitlines() or [f"git exited with {done.returncode}"])[-1]
                raise BuildError(f"{dist['name']}: cannot fetch {dist['url']} at {dist['commit'][:12]}: {why}")
        head = subprocess.run(["git", "-C", str(temp), "rev-parse", "HEAD"], capture_output=True, text=True)
        if head.stdout.strip() != dist["commit"]:
            raise BuildError(f"{dist['name']}: {dist['url']} gave {head.stdout.strip()}, not {dist['commit']}")
        shutil.rmtree(temp / ".git")
        with contextlib.suppress(OSError):  # another build may have finished first
            os.replace(temp, final)
    return final / dist.get("subdirectory", "")


def _chunks(dist: dict[str, Any], project_dir: Path | None):
    if "path" in dist:
        if project_dir is None:
            raise BuildError(f"{dist['filename']}: a project file, but no project directory was given")
        yield from _read_file(project_dir / dist["path"])
        return
    url = dist["url"]
    if url.startswith("file://"):
        yield from _read_file(Path(unquote(urlparse(url).path)))
        return
    import requests

    try:
        with requests.get(url, stream=True, timeout=60) as response:
            response.raise_for_status()
            yield from response.iter_content(CHUNK)
    except requests.RequestException as exc:
        raise BuildError(f"cannot download {dist['filename']}: {exc}") from None


def _read_file(path: Path):
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    except OSError as exc:
        raise BuildError(f"cannot read {path}: {exc.strerror}") from None
