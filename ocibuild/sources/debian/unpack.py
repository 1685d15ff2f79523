"""Read a .deb (``ar`` archive via python-debian's arfile): its control files and ``data.tar.*`` entries, in memory.

Paths under the pre-merged-/usr top-level directories (``bin``, ``sbin``, ``lib*``) are moved below ``usr/``; the
image gets ``bin -> usr/bin`` style links instead (see rootfs_fixups). Modes (setuid, sticky) are kept; owners are not.
Nothing of the package is executed.
"""

from __future__ import annotations

import gzip
import io
import lzma
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import zstandard
from debian.arfile import ArFile

from ocibuild.errors import BuildError

MERGED_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


@dataclass
class DebMember:
    """One entry of data.tar: ``path`` is merged-/usr mapped; ``original`` is what dpkg would list."""

    path: str
    original: str
    kind: str
    mode: int
    data: bytes = b""
    link: str = ""


@dataclass
class DebContents:
    control: bytes
    md5sums: bytes
    conffiles: bytes
    postinst: bytes = b""
    members: list[DebMember] = field(default_factory=list)


def _decompress(name: str, data: bytes) -> bytes:
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".zst"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".tar"):
        return data
    raise BuildError(f"unsupported .deb member compression: {name}")


def usr_path(name: str) -> str:
    """``lib/x`` -> ``usr/lib/x`` (merged /usr); other paths unchanged. ``name`` has no leading ``./``."""
    head = name.split("/", 1)[0]
    return f"usr/{name}" if head in MERGED_DIRS else name


def _clean(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BuildError(f"refusing a .deb path that leaves the root: {name}")
    return "/".join(parts)


def read_deb(path: Path) -> DebContents:
    """The control files and data entries of the .deb at ``path`` (all in memory)."""
    with open(path, "rb") as f:
        ar = ArFile(fileobj=f)
        names = ar.getnames()
        control_name = next((n for n in names if n.startswith("control.tar")), None)
        data_name = next((n for n in names if n.startswith("data.tar")), None)
        if control_name is None or data_name is None:
            raise BuildError(f"{path.name}: not a Debian binary package (no control.tar/data.tar)")
        control_tar = _decompress(control_name, ar.getmember(control_name).read())
        data_tar = _decompress(data_name, ar.getmember(data_name).read())
    control: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(control_tar), mode="r:") as tar:
        for info in tar:
            name = _clean(info.name)
            if info.isfile() and name in ("control", "md5sums", "conffiles", "postinst"):
                control[name] = tar.extractfile(info).read()  # type: ignore[union-attr]
    contents = DebContents(
        control.get("control", b""),
        control.get("md5sums", b""),
        control.get("conffiles", b""),
        control.get("postinst", b""),
    )
    with tarfile.open(fileobj=io.BytesIO(data_tar), mode="r:") as tar:
        for info in tar:
            original = _clean(info.name)
            if not original:
                continue
            mapped = usr_path(original)
            mode = stat.S_IMODE(info.mode)
            if info.isdir():
                contents.members.append(DebMember(mapped, original, "dir", mode))
            elif info.issym():
                if original in MERGED_DIRS:
                    continue  # base-files >= 13 ships the merged-/usr links itself; the fixups add them
                contents.members.append(DebMember(mapped, original, "symlink", 0o777, link=info.linkname))
            elif info.islnk():
                target = usr_path(_clean(info.linkname))
                contents.members.append(DebMember(mapped, original, "hardlink", mode, link=target))
            elif info.isfile():
                data = tar.extractfile(info).read()  # type: ignore[union-attr]
                contents.members.append(DebMember(mapped, original, "file", mode, data=data))
            else:
                raise BuildError(f"{path.name}: unsupported entry type in data.tar: {original}")
    return contents
