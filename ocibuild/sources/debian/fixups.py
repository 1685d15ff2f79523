"""What maintainer scripts and Essential packages would have left in a rootfs, done declaratively.

Each fixup adds only what is missing (package files win), so the result depends only on the packages and the
options given here.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from debian import deb822

from ocibuild.errors import BuildError
from ocibuild.oci.entries import Entry, EntryKind
from ocibuild.sources.debian.tree import RootTree
from ocibuild.sources.debian.unpack import DebContents

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"
NSSWITCH = (
    b"passwd:         files\ngroup:          files\nshadow:         files\nhosts:          files dns\n"
    b"networks:       files\nprotocols:      db files\nservices:       db files\nethers:         db files\n"
    b"rpc:            db files\n"
)
DIRS = {"dev": 0o755, "proc": 0o555, "sys": 0o555, "run": 0o755, "tmp": 0o1777, "var/tmp": 0o1777, "root": 0o700}
DIRS |= {"home": 0o755}
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
_HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def merged_usr(tree: RootTree, arch: str) -> None:
    """``bin sbin lib -> usr/...`` (and ``lib64`` on amd64, where the ELF interpreter lives)."""
    names = ["bin", "sbin", "lib"] + (["lib64"] if arch == "amd64" else [])
    names += [n for n in ("lib32", "libx32", "lib64") if n not in names and f"usr/{n}" in tree.entries]
    for name in names:
        tree.add(Entry.directory(f"usr/{name}"))
        tree.add_missing(Entry.symlink(name, f"usr/{name}"))


def skeleton(tree: RootTree) -> None:
    """Directories a runtime and programs expect, accounts (root, nobody) and name service config."""
    for path, mode in DIRS.items():
        tree.set_directory(path, mode)
    tree.add_missing(Entry.file("etc/passwd", PASSWD))
    tree.add_missing(Entry.file("etc/group", GROUP))
    tree.add_missing(Entry.file("etc/nsswitch.conf", NSSWITCH))


def ca_bundle(tree: RootTree, extra_ca_certs: Sequence[Path] = ()) -> None:
    """``/etc/ssl/certs/ca-certificates.crt``: every ``/usr/share/ca-certificates/*/*.crt`` (sorted) + extras."""
    certs = sorted(
        e
        for e in tree.entries
        if e.startswith("usr/share/ca-certificates/") and e.endswith(".crt") and e.count("/") == 4
    )
    if not certs and not extra_ca_certs:
        return
    parts = [tree.entries[path].data or b"" for path in certs]
    for path in extra_ca_certs:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise BuildError(f"cannot read CA certificate {path}: {exc.strerror}") from None
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise BuildError(f"{path}: not a PEM certificate")
        parts.append(data)
    bundle = b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)
    tree.entries.pop(tree.resolve(CA_BUNDLE), None)
    tree.add(Entry.file(CA_BUNDLE, bundle))


def python_links(tree: RootTree, interpreter: str) -> None:
    """``/usr/bin/python3`` and ``/usr/bin/python`` -> ``interpreter`` (relative to /usr/bin) unless shipped."""
    tree.add_missing(Entry.symlink("usr/bin/python3", interpreter))
    tree.add_missing(Entry.symlink("usr/bin/python", "python3"))


def control_fields(contents: DebContents) -> deb822.Deb822:
    return deb822.Deb822(contents.control)


def info_name(fields: deb822.Deb822) -> str:
    """dpkg's info file stem: ``name``, or ``name:arch`` for Multi-Arch: same packages."""
    if fields.get("Multi-Arch") == "same":
        return f"{fields['Package']}:{fields['Architecture']}"
    return fields["Package"]


def dpkg_database(tree: RootTree, packages: Sequence[DebContents]) -> None:
    """``/var/lib/dpkg/status`` and ``info/*.list|md5sums|conffiles``, so scanners (trivy, syft) see packages."""
    stanzas: dict[str, str] = {}
    for contents in packages:
        fields = control_fields(contents)
        para = deb822.Deb822()
        para["Package"] = fields["Package"]
        para["Status"] = "install ok installed"
        for key, value in fields.items():
            if key != "Package":
                para[key] = value
        name = info_name(fields)
        stanzas[name] = para.dump().rstrip("\n") + "\n"
        listing = "\n".join(["/."] + ["/" + m.original for m in contents.members]) + "\n"
        files = {"list": listing.encode(), "md5sums": contents.md5sums, "conffiles": contents.conffiles}
        for suffix, data in files.items():
            if data:
                path = f"var/lib/dpkg/info/{name}.{suffix}"
                tree.entries.pop(path, None)
                tree.add(Entry.file(path, data))
    tree.entries.pop("var/lib/dpkg/status", None)
    tree.add(Entry.file("var/lib/dpkg/status", "\n".join(stanzas[k] for k in sorted(stanzas)).encode()))


@lru_cache(maxsize=1)
def _can_chroot() -> str:
    """How ldconfig -r may chroot here: directly as root, through a user namespace, or not at all."""
    if os.geteuid() == 0:
        return "root"
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--user", "--map-root-user", "true"], capture_output=True).returncode == 0:
        return "userns"
    return ""


def ld_cache_supported(arch: str) -> bool:
    """True when the image's own ldconfig can run here: the same architecture, and chroot is allowed."""
    return _HOST_ARCH.get(platform.machine()) == arch and bool(_can_chroot())


def _ld_input(path: str, entry: Entry) -> bool:
    """What ldconfig reads: its config, the merged-/usr links, and shared objects and dirs under lib dirs."""
    if path.startswith(("etc/ld.so.conf", "etc/alternatives/")) or (
        "/" not in path and entry.kind is EntryKind.SYMLINK
    ):
        return True
    name = path.rsplit("/", 1)[-1]
    return path.startswith(("usr/lib", "usr/local/lib")) and (".so" in name or entry.kind is EntryKind.DIR)


def _materialise(root: Path, entries: Sequence[Entry]) -> None:
    for entry in sorted(entries, key=lambda e: e.path):
        dest = root / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if entry.kind is EntryKind.DIR:
            dest.mkdir(exist_ok=True)
        elif entry.kind is EntryKind.SYMLINK:
            os.symlink(entry.link, dest)
        elif entry.kind is EntryKind.FILE:
            dest.write_bytes(entry.data or b"")
            os.chmod(dest, entry.mode & 0o777)
        elif entry.kind is EntryKind.HARDLINK:
            os.link(root / entry.link, dest)


def ld_cache(tree: RootTree, scratch: Path) -> None:
    """``/etc/ld.so.cache`` made by the image's own (static) ldconfig, chrooted into a scratch copy of the libs."""
    binary = next((tree.entries[p] for p in ("usr/sbin/ldconfig.real", "usr/sbin/ldconfig") if p in tree.entries), None)
    if binary is None or not (binary.data or b"").startswith(b"\x7fELF"):
        return  # no libc-bin: nothing in the image reads the cache either
    with tempfile.TemporaryDirectory(dir=scratch, prefix="ldconfig-") as tmp:
        root = Path(tmp)
        _materialise(root, [*(e for p, e in tree.entries.items() if _ld_input(p, e)), binary])
        cmd = [str(root / binary.path), "-r", str(root), "-X", "-i"]
        if _can_chroot() == "userns":
            cmd = ["unshare", "--user", "--map-root-user", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"ldconfig failed in the image tree: {proc.stderr.strip().splitlines()[-1:]}")
        tree.entries.pop("etc/ld.so.cache", None)
        tree.add(Entry.file("etc/ld.so.cache", (root / "etc/ld.so.cache").read_bytes()))
