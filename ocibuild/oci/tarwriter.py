"""A deterministic tar writer: sorted entries, explicit parents, fixed owners and times, PAX headers.

Rules (see the design notes): entries are sorted by path components (whiteouts first inside their directory),
every parent directory gets an explicit entry, mtimes are integers clamped to SOURCE_DATE_EPOCH, uid/gid are 0
with empty names, hardlinks are written after their targets, and the stream is padded like Python's tarfile.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

from ocibuild.oci.entries import WHITEOUT_PREFIX, Entry, EntryKind

RECIPE = "tar/1"
"""The layout of the tar stream; a change gives new bytes (and digests) from the same entries."""
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
BLOCK_OUT = 1 << 20


class Sink(Protocol):
    def write(self, data: bytes | bytearray) -> int: ...


class LayerContentError(ValueError):
    """The entries cannot form a valid layer (duplicates, dangling hardlinks, files that changed)."""


def _sort_key(name: str) -> tuple[tuple[int, bytes], ...]:
    return tuple(
        (0 if part.startswith(WHITEOUT_PREFIX) else 1, part.encode("utf-8", "surrogateescape"))
        for part in name.split("/")
    )


def plan_entries(entries: Iterable[Entry]) -> list[Entry]:
    """The entries in write order, with implicit parent directories added and duplicates refused."""
    by_name: dict[str, Entry] = {}
    for entry in entries:
        name = entry.tar_name
        previous = by_name.get(name)
        if previous is not None:
            if previous.kind is EntryKind.DIR and entry.kind is EntryKind.DIR and previous.mode == entry.mode:
                continue
            raise LayerContentError(f"duplicate path in layer: {entry.path}")
        by_name[name] = entry
    for name in list(by_name):
        # Up from the nearest parent, stopping at a directory already present (its own parents are checked
        # in its turn): linear in the depth, where joining every prefix is quadratic on deep trees.
        parent = name.rpartition("/")[0]
        while parent:
            existing = by_name.get(parent)
            if existing is not None:
                if existing.kind is not EntryKind.DIR:
                    raise LayerContentError(f"{name}: parent {parent} is not a directory in this layer")
                break
            by_name[parent] = Entry.directory(parent)
            parent = parent.rpartition("/")[0]
    ordered = sorted(by_name.values(), key=lambda e: _sort_key(e.tar_name))
    return _links_after_targets(ordered)


def _links_after_targets(ordered: list[Entry]) -> list[Entry]:
    files = {e.path for e in ordered if e.kind is EntryKind.FILE}
    written: set[str] = set()
    waiting: dict[str, list[Entry]] = {}
    result: list[Entry] = []
    for entry in ordered:
        if entry.kind is EntryKind.HARDLINK:
            if entry.link not in files:
                raise LayerContentError(f"hardlink {entry.path} -> {entry.link}: target is not a file of this layer")
            if entry.link not in written:
                waiting.setdefault(entry.link, []).append(entry)
                continue
        result.append(entry)
        if entry.kind is EntryKind.FILE:
            written.add(entry.path)
            result.extend(waiting.pop(entry.path, []))
    return result


_TYPEFLAGS = {
    EntryKind.FILE: tarfile.REGTYPE,
    EntryKind.DIR: tarfile.DIRTYPE,
    EntryKind.SYMLINK: tarfile.SYMTYPE,
    EntryKind.HARDLINK: tarfile.LNKTYPE,
    EntryKind.WHITEOUT: tarfile.REGTYPE,
    EntryKind.OPAQUE: tarfile.REGTYPE,
}
_USTAR_TAIL = tarfile.POSIX_MAGIC + bytes(64 + 16 + 155)  # magic, empty names, no device numbers, no prefix
_MAX_OCTAL_11 = 8**11
_MAX_OCTAL_7 = 8**7


def tar_header(entry: Entry, mtime: int) -> bytes:
    """The header block(s) of ``entry``: a plain ustar block when every field fits, else tarfile's PAX headers.

    The fast path gives exactly the bytes ``TarInfo.tobuf(PAX_FORMAT)`` gives for such an entry (tested).
    """
    kind = entry.kind
    name = entry.tar_name + "/" if kind is EntryKind.DIR else entry.tar_name
    mode = 0o644 if kind in (EntryKind.WHITEOUT, EntryKind.OPAQUE) else entry.mode & 0o7777
    size = entry.size if kind is EntryKind.FILE else 0
    link = entry.link if kind in (EntryKind.SYMLINK, EntryKind.HARDLINK) else ""
    owners_fit = 0 <= entry.uid < _MAX_OCTAL_7 and 0 <= entry.gid < _MAX_OCTAL_7
    fits = owners_fit and len(name) <= 100 and len(link) <= 100 and 0 <= mtime < _MAX_OCTAL_11 and size < _MAX_OCTAL_11
    if fits and name.isascii() and link.isascii():
        block = b"".join(
            (
                name.encode().ljust(100, b"\0"),
                b"%07o\0" % mode,
                b"%07o\0%07o\0" % (entry.uid, entry.gid),
                b"%011o\0" % size,
                b"%011o\0" % mtime,
                b"        ",
                _TYPEFLAGS[kind],
                link.encode().ljust(100, b"\0"),
                _USTAR_TAIL,
            )
        )
        block += bytes(BLOCK - len(block))
        return block[:148] + b"%06o\0" % sum(block) + block[155:]
    return _pax_header(entry, name, mode, size, link, mtime)


def _pax_header(entry: Entry, name: str, mode: int, size: int, link: str, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = mtime
    info.mode = mode
    info.type = _TYPEFLAGS[entry.kind]
    info.size = size
    info.linkname = link
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class _BlockBuffer:
    """Packs the tar stream into fresh, fixed-size blocks handed to the sink whole (never reused, never copied).

    Files are read with ``readinto`` straight into the block, so each byte is copied once on its way to the
    hasher and the compressor, and the compressor always sees the same block boundaries.
    """

    def __init__(self, sink: Sink, block_size: int = BLOCK_OUT) -> None:
        self._sink = sink
        self._size = block_size
        self._block = bytearray(block_size)
        self._pos = 0
        self.total = 0

    def _emit(self) -> None:
        self._sink.write(self._block)
        self.total += self._size
        self._block = bytearray(self._size)
        self._pos = 0

    def put(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = min(len(view), self._size - self._pos)
            self._block[self._pos : self._pos + n] = view[:n]
            self._pos += n
            view = view[n:]
            if self._pos == self._size:
                self._emit()

    def zeros(self, count: int) -> None:
        self.put(bytes(count))

    def fill_from(self, f: BinaryIO, count: int, name: Path) -> None:
        remaining = count
        while remaining:
            n = min(remaining, self._size - self._pos)
            view = memoryview(self._block)[self._pos : self._pos + n]
            got = f.readinto(view)
            view.release()
            if not got:
                raise LayerContentError(f"{name}: file shrank while it was being read")
            self._pos += got
            remaining -= got
            if self._pos == self._size:
                self._emit()
        if f.read(1):
            raise LayerContentError(f"{name}: file grew while it was being read")

    @property
    def position(self) -> int:
        """Bytes written so far, including the unfinished block."""
        return self.total + self._pos

    def finish(self) -> None:
        if self._pos:
            tail = bytes(self._block[: self._pos])
            self._sink.write(tail)
            self.total += len(tail)
            self._pos = 0


def _copy_stream(f: BinaryIO, entry: Entry, out: _BlockBuffer) -> None:
    """Copy exactly ``entry.size`` bytes of a streamed source (a decompressing reader: read, not readinto)."""
    remaining = entry.size
    while remaining:
        chunk = f.read(min(BLOCK_OUT, remaining))
        if not chunk:
            raise LayerContentError(f"{entry.path}: source shrank while it was being read")
        out.put(chunk)
        remaining -= len(chunk)
    if f.read(1):
        raise LayerContentError(f"{entry.path}: source grew while it was being read")


def write_tar(entries: Iterable[Entry], sink: Sink, source_date_epoch: int) -> int:
    """Write the layer tar of ``entries`` to ``sink``; returns the number of bytes written.

    The sink receives blocks of exactly ``BLOCK_OUT`` bytes (the last one may be shorter) that it may keep.
    """
    out = _BlockBuffer(sink)
    _write_entries(plan_entries(entries), out, source_date_epoch)
    written = out.position
    end = 2 * BLOCK
    if (written + end) % RECORD:
        end += RECORD - (written + end) % RECORD
    out.zeros(end)
    out.finish()
    return out.total


def _write_entries(planned: list[Entry], out: _BlockBuffer, source_date_epoch: int) -> None:
    for entry in planned:
        mtime = source_date_epoch if entry.mtime is None else min(int(entry.mtime), source_date_epoch)
        out.put(tar_header(entry, mtime))
        if entry.kind is EntryKind.FILE and entry.size:
            if entry.data is not None:
                out.put(entry.data)
            elif entry.opener is not None:
                with entry.opener() as f:
                    _copy_stream(f, entry, out)
            else:
                assert entry.source is not None
                with open(entry.source, "rb", buffering=0) as f:
                    out.fill_from(f, entry.size, entry.source)
            remainder = entry.size % BLOCK
            if remainder:
                out.zeros(BLOCK - remainder)
