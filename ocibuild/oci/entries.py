"""What goes into a layer: an in-memory list of entries, or one read from a file tree.

An entry is a path inside the image (relative, POSIX, no leading ``/`` or ``./``) plus what lives there.
Owners default to uid/gid 0 (a ``build.run`` layer keeps the owners its command set); names are always empty.
"""

from __future__ import annotations

import enum
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


class EntryKind(str, enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    WHITEOUT = "whiteout"
    OPAQUE = "opaque"


@dataclass(frozen=True)
class Entry:
    """One path of a layer. Use the constructors (``Entry.file`` ...) rather than the fields directly."""

    path: str
    kind: EntryKind
    mode: int = 0o644
    data: bytes | None = None
    source: Path | None = None
    size: int = 0
    link: str = ""
    mtime: int | None = None
    opener: Callable[[], BinaryIO] | None = None
    uid: int = 0
    gid: int = 0

    @staticmethod
    def file(path: str, data: bytes, mode: int = 0o644, mtime: int | None = None) -> Entry:
        return Entry(normalize_path(path), EntryKind.FILE, mode, data=data, size=len(data), mtime=mtime)

    @staticmethod
    def file_from(
        path: str, source: Path, mode: int = 0o644, size: int | None = None, mtime: int | None = None
    ) -> Entry:
        if size is None:
            size = source.stat().st_size
        return Entry(normalize_path(path), EntryKind.FILE, mode, source=source, size=size, mtime=mtime)

    @staticmethod
    def file_stream(path: str, size: int, opener: Callable[[], BinaryIO], mode: int = 0o644) -> Entry:
        """A file whose ``size`` bytes are read from ``opener()`` while the layer is written (e.g. a zip member)."""
        return Entry(normalize_path(path), EntryKind.FILE, mode, size=size, opener=opener)

    @staticmethod
    def directory(path: str, mode: int = 0o755, mtime: int | None = None) -> Entry:
        return Entry(normalize_path(path), EntryKind.DIR, mode, mtime=mtime)

    @staticmethod
    def symlink(path: str, target: str, mtime: int | None = None) -> Entry:
        return Entry(normalize_path(path), EntryKind.SYMLINK, 0o777, link=target, mtime=mtime)

    @staticmethod
    def hardlink(path: str, target: str, mode: int = 0o644) -> Entry:
        return Entry(normalize_path(path), EntryKind.HARDLINK, mode, link=normalize_path(target))

    @staticmethod
    def whiteout(path: str) -> Entry:
        """Delete ``path`` from the layers below."""
        return Entry(normalize_path(path), EntryKind.WHITEOUT)

    @staticmethod
    def opaque(directory: str) -> Entry:
        """Hide every child of ``directory`` that the layers below hold."""
        return Entry(normalize_path(directory), EntryKind.OPAQUE)

    @property
    def tar_name(self) -> str:
        """The member name written to the tar stream (whiteouts become ``.wh.`` files)."""
        if self.kind is EntryKind.WHITEOUT:
            parent, _, name = self.path.rpartition("/")
            return f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else WHITEOUT_PREFIX + name
        if self.kind is EntryKind.OPAQUE:
            return f"{self.path}/{OPAQUE_MARKER}"
        return self.path


def normalize_path(path: str) -> str:
    """A layer path: relative, POSIX, without ``.``/empty parts; ``..`` is refused."""
    parts = [p for p in PurePosixPath("/" + path.replace("\\", "/")).parts[1:] if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"path escapes the layer root: {path!r}")
    if not parts:
        raise ValueError(f"empty layer path: {path!r}")
    return "/".join(parts)


def normalized_mode(st_mode: int) -> int:
    """0755 for directories and executables, 0644 otherwise: independent of the umask and checkout."""
    if stat.S_ISDIR(st_mode) or st_mode & 0o111:
        return 0o755
    return 0o644


def entries_from_tree(
    root: Path,
    prefix: str = "",
    *,
    preserve_modes: bool = False,
    include: Iterable[Path] | None = None,
) -> Iterator[Entry]:
    """Entries for every file, directory, symlink and hardlink under ``root``, placed at ``prefix``.

    Modes are normalised (see ``normalized_mode``) unless ``preserve_modes`` is set (trusted trees such as
    unpacked Debian packages, whose setuid and sticky bits matter). File mtimes are dropped: the layer writer
    stamps SOURCE_DATE_EPOCH. ``include``, when given, limits the walk to those paths (files or directories).
    Files sharing an inode become hardlinks to the first path (in sorted order) that has it.
    """
    root = Path(root)
    seen_inodes: dict[tuple[int, int], str] = {}
    base = normalize_path(prefix) + "/" if prefix.strip("/") else ""

    # Plain strings and os calls: this walk runs for every file of large trees (torch: 16k files). A stack, not
    # recursion, so any depth fits; popping in reverse-sorted order gives the sorted pre-order of a recursion.
    starts = sorted(include) if include is not None else [root / name for name in sorted(os.listdir(root))]
    stack = [(str(start), Path(start).relative_to(root).as_posix()) for start in reversed(starts)]
    while stack:
        path, rel = stack.pop()
        st = os.lstat(path)
        mode = stat.S_IMODE(st.st_mode) if preserve_modes else normalized_mode(st.st_mode)
        target = base + rel
        if stat.S_ISLNK(st.st_mode):
            yield Entry(target, EntryKind.SYMLINK, 0o777, link=os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            yield Entry(target, EntryKind.DIR, mode)
            stack += [(f"{path}/{child}", f"{rel}/{child}") for child in sorted(os.listdir(path), reverse=True)]
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in seen_inodes:
                yield Entry(target, EntryKind.HARDLINK, mode, link=seen_inodes[key])
            else:
                if st.st_nlink > 1:
                    seen_inodes[key] = target
                yield Entry(target, EntryKind.FILE, mode, source=Path(path), size=st.st_size)
        else:
            raise ValueError(f"unsupported file type (device, socket or fifo): {path}")
