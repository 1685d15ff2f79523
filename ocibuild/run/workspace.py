"""A writable view of a cached rootfs for one container: an overlay mount, or a copy where overlays fail.

The cached rootfs is the overlay's lower directory and is never written; everything the container (or the
runtime creating mount points) changes lands in a throwaway upper directory. The scratch directory names its
owner, so a run that was killed is cleaned up by the next (``guard.reap``).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from ocibuild.oci.tree import remove_tree
from ocibuild.run.extract import copy_tree
from ocibuild.run.guard import OWNER_FILE, owner_token


class Workspace:
    """``with Workspace(lower, scratch) as ws:`` gives ``ws.rootfs`` (writable) and ``ws.dir`` (scratch)."""

    def __init__(self, lower: Path, scratch_parent: Path) -> None:
        self.lower = Path(lower).absolute()
        self.scratch_parent = Path(scratch_parent).absolute()  # runc reads the rootfs path from its bundle dir
        self.dir = Path()
        self.rootfs = Path()
        self.mounted = False

    def __enter__(self) -> Workspace:
        self.scratch_parent.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="run-", dir=self.scratch_parent))
        try:
            (self.dir / OWNER_FILE).write_text(owner_token() + "\n")  # reaped once this process is gone
            self.rootfs = self.dir / "rootfs"
            self.rootfs.mkdir(mode=0o755)
            if not self._mount_overlay():
                copy_tree(self.lower, self.rootfs)
                os.chmod(self.rootfs, os.stat(self.lower).st_mode & 0o7777)
        except BaseException:
            self.close()
            raise
        return self

    def _mount_overlay(self) -> bool:
        if os.geteuid() != 0 or any(c in str(self.lower) + str(self.dir) for c in ",:"):
            return False
        upper, work = self.dir / "upper", self.dir / "work"
        upper.mkdir()
        work.mkdir()
        options = f"lowerdir={self.lower},upperdir={upper},workdir={work}"
        result = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(self.rootfs)],
            capture_output=True,
            check=False,
        )
        self.mounted = result.returncode == 0
        return self.mounted

    def close(self) -> None:
        """Unmount and remove the scratch directory (idempotent)."""
        if self.mounted:
            result = subprocess.run(["umount", str(self.rootfs)], capture_output=True, check=False)
            if result.returncode != 0:
                subprocess.run(["umount", "-l", str(self.rootfs)], capture_output=True, check=False)
            self.mounted = False
        if self.dir != Path():
            remove_tree(self.dir, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        self.close()
