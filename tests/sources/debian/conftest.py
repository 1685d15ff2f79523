"""Shared fixtures: a store reused across the session (downloaded .debs are kept in ~/.cache/ocibuild-test),
helpers to unpack layers into a rootfs and run commands in it, and a tiny .deb writer for offline tests."""

from __future__ import annotations

import io
import lzma
import os
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.store import Store

CACHE = Path(os.environ.get("OCIBUILD_TEST_CACHE", Path.home() / ".cache" / "ocibuild-test"))


@pytest.fixture(scope="session")
def deb_store() -> Store:
    """A store shared by the integration tests (and across sessions): .debs and parsed indexes are reused."""
    return Store(CACHE / "debian-store")


def extract_layers(layers: Sequence[LayerBlob], dest: Path) -> Path:
    """Unpack layers in order into ``dest``, keeping modes (as a container runtime would)."""
    dest.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        with tarfile.open(layer.path) as tar:
            tar.extractall(dest, filter=lambda m, p: tarfile.tar_filter(m, p).replace(mode=m.mode, deep=False))
    return dest


def can_run_rootfs() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def run_in(rootfs: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside ``rootfs`` (own mount and pid namespaces, /dev bound, /proc mounted)."""
    script = 'R=$1; shift; mount --rbind /dev "$R/dev" && mount -t proc proc "$R/proc" && exec chroot "$R" "$@"'
    cmd = ["unshare", "--mount", "--pid", "--fork", "sh", "-c", script, "sh", str(rootfs), *argv]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def _tar(members: Sequence[tuple[str, str, int, bytes | str]]) -> bytes:
    """A tar of (name, kind, mode, data-or-link) with kind in file/dir/symlink/hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, mode, payload in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
                tar.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
                tar.addfile(info)
            else:
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_deb(path: Path, control: str, data: Sequence[tuple[str, str, int, bytes | str]], postinst: str = "") -> Path:
    """Write a .deb (ar: debian-binary, control.tar.xz, data.tar.xz)."""
    ctl = [("./control", "file", 0o644, control)] + ([("./postinst", "file", 0o755, postinst)] if postinst else [])
    parts = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", lzma.compress(_tar(ctl))),
        ("data.tar.xz", lzma.compress(_tar(data))),
    ]
    out = bytearray(b"!<arch>\n")
    for name, blob in parts:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(blob):<10}`\n".encode()
        out += blob + (b"\n" if len(blob) % 2 else b"")
    path.write_bytes(bytes(out))
    return path
