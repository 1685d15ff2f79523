"""A deterministic tar writer: sorted entries, explicit parents, fixed owners and times, PAX headers.

Rules (see the design notes): entries are sorted by path components (whiteouts first inside their directory),
every parent directory gets an explicit entry, mtimes are integers clamped to SOURCE_DATE_EPOCH, uid/gid are 0
with empty names, hardlinks are written after their targets, and the stream is padded like Python's tarfile.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterable
from typing import Protocol

from ocibuild.oci.entries import WHITEOUT_PREFIX, Entry, EntryKind

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
READ_CHUNK = 1 << 20
FLUSH_AT = 1 << 20


class Sink(Protocol):
    def write(self, data: bytes) -> int: ...


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
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            existing = by_name.get(parent)
            if existing is None:
                by_name[parent] = Entry.directory(parent)
            elif existing.kind is not EntryKind.DIR:
                raise LayerContentError(f"{name}: parent {parent} is not a directory in this layer")
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


def _header(entry: Entry, mtime: int) -> bytes:
    info = tarfile.TarInfo(entry.tar_name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    info.mode = entry.mode & 0o7777
    kind = entry.kind
    if kind is EntryKind.FILE:
        info.type = tarfile.REGTYPE
        info.size = entry.size
    elif kind is EntryKind.DIR:
        info.type = tarfile.DIRTYPE
    elif kind is EntryKind.SYMLINK:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link
    elif kind is EntryKind.HARDLINK:
        info.type = tarfile.LNKTYPE
        info.linkname = entry.link
    else:  # whiteout or opaque marker: an empty regular file
        info.type = tarfile.REGTYPE
        info.mode = 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def write_tar(entries: Iterable[Entry], sink: Sink, source_date_epoch: int) -> int:
    """Write the layer tar of ``entries`` to ``sink``; returns the number of bytes written."""
    buf = bytearray()
    total = 0

    def flush() -> None:
        nonlocal total
        if buf:
            data = bytes(buf)
            sink.write(data)
            total += len(data)
            buf.clear()

    def emit_large(data: bytes) -> None:
        nonlocal total
        flush()
        sink.write(data)
        total += len(data)

    for entry in plan_entries(entries):
        mtime = source_date_epoch if entry.mtime is None else min(int(entry.mtime), source_date_epoch)
        buf += _header(entry, mtime)
        if entry.kind is EntryKind.FILE and entry.size:
            if entry.data is not None:
                buf += entry.data
            else:
                _copy_file(entry, buf, emit_large)
            remainder = entry.size % BLOCK
            if remainder:
                buf += bytes(BLOCK - remainder)
        if len(buf) >= FLUSH_AT:
            flush()
    buf += bytes(2 * BLOCK)
    size = total + len(buf)
    if size % RECORD:
        buf += bytes(RECORD - size % RECORD)
    flush()
    return total


def _copy_file(entry: Entry, buf: bytearray, emit_large: Callable[[bytes], None]) -> None:
    """Append small files to the buffer; stream large ones straight to the sink in READ_CHUNK pieces."""
    assert entry.source is not None
    remaining = entry.size
    with open(entry.source, "rb") as f:
        while remaining:
            chunk = f.read(min(READ_CHUNK, remaining))
            if not chunk:
                raise LayerContentError(f"{entry.source}: file shrank while it was being read")
            remaining -= len(chunk)
            if len(chunk) >= READ_CHUNK // 4:
                emit_large(chunk)
            else:
                buf += chunk
        if f.read(1):
            raise LayerContentError(f"{entry.source}: file grew while it was being read")
