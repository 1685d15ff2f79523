"""A private podman store for the tests that pull from a local registry (partial pulls on), and a merged rootfs
read back from it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path


def podman(storage: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CONTAINERS_STORAGE_CONF=str(storage / "storage.conf"))
    cmd = ["podman", "--root", str(storage / "root"), "--runroot", str(storage / "run"), "--storage-driver", "overlay"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=300)


def partial_pull_storage() -> Path:
    """A private podman store with partial pulls enabled (containers-storage.conf ``pull_options``).

    Under /tmp with a short name: podman refuses a runroot longer than 50 characters."""
    path = Path(tempfile.mkdtemp(prefix="chunked-", dir="/tmp"))
    (path / "storage.conf").write_text(
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{path / "root"}"\n'
        f'runroot = "{path / "run"}"\n'
        "[storage.options]\n"
        'pull_options = {enable_partial_images = "true", use_hard_links = "false"}\n'
    )
    return path


def rootfs_listing(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under ``root``: its mode and its content's sha256 (a symlink: its target; a directory: '')."""
    listing = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            what = "-> " + os.readlink(path)
        elif path.is_file():
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            what = ""
        listing[path.relative_to(root).as_posix()] = (st.st_mode, what)
    return listing
