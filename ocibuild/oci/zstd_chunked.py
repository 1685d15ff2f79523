"""zstd:chunked layers: a zstd tar whose files can be fetched one by one (containers/storage ``pkg/chunked``).

The blob is an ordinary zstd stream of the layer tar (``zstd -d`` reads it), cut into frames so that every regular
file's content is a frame of its own; tar headers and padding go in the frames between. After the last data frame
come three zstd *skippable* frames, which plain decoders pass over:

1. the TOC: zstd-compressed JSON ``{"version":1,"entries":[...],"tarSplitDigest":...}``, one entry per tar member
   with its metadata, the sha256 of its content and the ``offset``/``endOffset`` of its frame in the blob;
2. the tar-split data: zstd-compressed NDJSON (vbatts/tar-split's packer) of the raw header bytes and file sizes
   and CRC-64s, from which the exact tar stream (and so the diff_id) is rebuilt from the files;
3. the footer: seven little-endian uint64 (TOC offset, compressed and uncompressed length, type 1, tar-split
   offset, compressed and uncompressed length) and the magic ``GNUlInUx``.

The layer descriptor carries the TOC's digest and position (and the tar-split's position) as annotations: a
runtime with partial pulls fetches the TOC by range, then only the files it does not already hold. The older
``io.containers.*`` keys are written too: containers/storage before 1.45 (podman 4.3 in Debian 12) reads those.

Everything is derived from the entries alone: the same entries give the same bytes. The uncompressed tar is
byte-for-byte the one ``tarwriter.write_tar`` writes, so the diff_id does not depend on the compression.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from ocibuild.oci.entries import Entry, EntryKind
from ocibuild.oci.tarwriter import BLOCK, BLOCK_OUT, RECORD, LayerContentError, plan_entries, tar_header

SKIPPABLE_MAGIC = b"\x50\x2a\x4d\x18"
FOOTER_MAGIC = b"GNUlInUx"
MANIFEST_TYPE_CRFS = 1
TOC_VERSION = 1

MANIFEST_CHECKSUM = "io.github.containers.zstd-chunked.manifest-checksum"
MANIFEST_POSITION = "io.github.containers.zstd-chunked.manifest-position"
TARSPLIT_POSITION = "io.github.containers.zstd-chunked.tarsplit-position"
LEGACY_MANIFEST_CHECKSUM = "io.containers.zstd-chunked.manifest-checksum"
LEGACY_MANIFEST_POSITION = "io.containers.zstd-chunked.manifest-position"

_TOC_TYPES = {
    EntryKind.FILE: "reg",
    EntryKind.DIR: "dir",
    EntryKind.SYMLINK: "symlink",
    EntryKind.HARDLINK: "hardlink",
    EntryKind.WHITEOUT: "reg",
    EntryKind.OPAQUE: "reg",
}


class _Crc64:
    """CRC-64 with Go's ``crc64.ISO`` table, as tar-split records it (anycrc's CRC64-GO-ISO model)."""

    def __init__(self) -> None:
        import anycrc

        self._model = anycrc.Model("CRC64-GO-ISO")
        self.value: int | None = None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.value = self._model.calc(data) if self.value is None else self._model.calc(data, self.value)

    def digest(self) -> bytes:
        return struct.pack(">Q", self.value or 0)


class _Frames:
    """Writes zstd frames to ``out`` and counts the blob offset; ``end()`` closes the open frame, if any."""

    def __init__(self, out: BinaryIO, cctx) -> None:
        self._out = out
        self._cctx = cctx
        self._cobj = None
        self.offset = 0

    def _emit(self, data: bytes) -> None:
        if data:
            self._out.write(data)
            self.offset += len(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._cobj is None:
            self._cobj = self._cctx.compressobj()
        self._emit(self._cobj.compress(data))

    def end(self) -> None:
        if self._cobj is not None:
            import zstandard

            self._emit(self._cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
            self._cobj = None

    def skippable(self, payload: bytes) -> int:
        """Append a skippable frame; returns the offset of its payload."""
        self.end()
        self._emit(SKIPPABLE_MAGIC + struct.pack("<I", len(payload)))
        start = self.offset
        self._emit(payload)
        return start


class _TarSplit:
    """The tar-split NDJSON (one JSON object per line, ``position`` counting from 0), zstd-compressed in memory."""

    def __init__(self, cctx) -> None:
        self._buffer = io.BytesIO()
        self._writer = cctx.stream_writer(self._buffer, closefd=False)
        self._position = 0
        self.uncompressed_size = 0

    def _add(self, record: dict[str, object]) -> None:
        record["position"] = self._position
        self._position += 1
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        self._writer.write(line)
        self.uncompressed_size += len(line)

    def segment(self, raw: bytes) -> None:
        if raw:
            self._add({"type": 2, "payload": base64.b64encode(raw).decode()})

    def file(self, name: str, size: int, crc: bytes | None) -> None:
        raw = name.encode("utf-8", "surrogateescape")
        try:
            record: dict[str, object] = {"type": 1, "name": raw.decode("utf-8")}
        except UnicodeDecodeError:
            record = {"type": 1, "name_raw": base64.b64encode(raw).decode()}
        if size:
            record["size"] = size
        record["payload"] = base64.b64encode(crc).decode() if crc is not None else None
        self._add(record)

    def finish(self) -> bytes:
        self._writer.close()
        return self._buffer.getvalue()


def _header_name(entry: Entry) -> str:
    return entry.tar_name + "/" if entry.kind is EntryKind.DIR else entry.tar_name


def _toc_entry(entry: Entry, mtime: int) -> dict[str, object]:
    """The TOC fields of ``entry`` in containers/storage's order, empty ones left out (Go's ``omitempty``)."""
    kind = entry.kind
    mode = 0o644 if kind in (EntryKind.WHITEOUT, EntryKind.OPAQUE) else entry.mode & 0o7777
    size = entry.size if kind is EntryKind.FILE else 0
    link = entry.link if kind in (EntryKind.SYMLINK, EntryKind.HARDLINK) else ""
    out: dict[str, object] = {"type": _TOC_TYPES[kind], "name": _header_name(entry)}
    for key, value in (("linkName", link), ("mode", mode), ("size", size), ("uid", entry.uid), ("gid", entry.gid)):
        if value:
            out[key] = value
    out["modtime"] = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def _content(entry: Entry) -> Iterator[bytes]:
    """The ``entry.size`` bytes of a regular file, in blocks; refuses files that change while being read."""
    if entry.data is not None:
        for start in range(0, len(entry.data), BLOCK_OUT):
            yield entry.data[start : start + BLOCK_OUT]
        return
    name = entry.path
    with entry.opener() if entry.opener is not None else open(entry.source, "rb", buffering=0) as f:  # type: ignore[arg-type]
        remaining = entry.size
        while remaining:
            chunk = f.read(min(BLOCK_OUT, remaining))
            if not chunk:
                raise LayerContentError(f"{name}: file shrank while it was being read")
            remaining -= len(chunk)
            yield chunk
        if f.read(1):
            raise LayerContentError(f"{name}: file grew while it was being read")


@dataclass(frozen=True)
class ChunkedResult:
    diff_id: str
    tar_size: int
    annotations: dict[str, str]


def write_zstd_chunked(
    entries: Iterable[Entry],
    out: BinaryIO,
    source_date_epoch: int,
    new_compressor: Callable[[], Any],
    on_bytes: Callable[[int], None] | None = None,
) -> ChunkedResult:
    """Write the zstd:chunked blob of ``entries`` to ``out``.

    ``new_compressor()`` gives a fresh ``zstandard.ZstdCompressor`` (a context runs one operation at a time, and
    the data frames and the tar-split are written side by side)."""
    frames = _Frames(out, new_compressor())
    tar_split = _TarSplit(new_compressor())
    tar_hash = hashlib.sha256()
    tar_size = 0
    toc: list[dict[str, object]] = []

    def raw(data: bytes | bytearray | memoryview) -> None:
        nonlocal tar_size
        tar_hash.update(data)
        frames.write(data)
        tar_size += len(data)
        if on_bytes is not None:
            on_bytes(len(data))

    padding = 0
    for entry in plan_entries(entries):
        mtime = source_date_epoch if entry.mtime is None else min(int(entry.mtime), source_date_epoch)
        header = bytes(padding) + tar_header(entry, mtime)
        raw(header)
        tar_split.segment(header)
        meta = _toc_entry(entry, mtime)
        size = entry.size if entry.kind is EntryKind.FILE else 0
        crc = None
        if size:
            frames.end()
            start = frames.offset
            digest = hashlib.sha256()
            crc64 = _Crc64()
            for chunk in _content(entry):
                raw(chunk)
                digest.update(chunk)
                crc64.update(chunk)
            frames.end()
            meta.update(digest="sha256:" + digest.hexdigest(), offset=start, endOffset=frames.offset)
            crc = crc64.digest()
        tar_split.file(_header_name(entry), size, crc)
        toc.append(meta)
        padding = -size % BLOCK
    # The end: the last file's padding, two zero blocks, then zeros up to a whole record (as write_tar pads).
    end = padding + 2 * BLOCK
    tail = (tar_size + end) % RECORD
    record_pad = RECORD - tail if tail else 0
    raw(bytes(end))
    tar_split.segment(bytes(end))
    if record_pad:
        raw(bytes(record_pad))
        tar_split.segment(bytes(record_pad))
    frames.end()

    split_data = tar_split.finish()
    toc_json = json.dumps(
        {"version": TOC_VERSION, "entries": toc, "tarSplitDigest": "sha256:" + hashlib.sha256(split_data).hexdigest()},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8", "surrogateescape")
    toc_compressed = new_compressor().compress(toc_json)
    toc_offset = frames.skippable(toc_compressed)
    split_offset = frames.skippable(split_data)
    footer = struct.pack(
        "<7Q",
        toc_offset,
        len(toc_compressed),
        len(toc_json),
        MANIFEST_TYPE_CRFS,
        split_offset,
        len(split_data),
        tar_split.uncompressed_size,
    )
    frames.skippable(footer + FOOTER_MAGIC)

    checksum = "sha256:" + hashlib.sha256(toc_compressed).hexdigest()
    position = f"{toc_offset}:{len(toc_compressed)}:{len(toc_json)}:{MANIFEST_TYPE_CRFS}"
    annotations = {
        MANIFEST_CHECKSUM: checksum,
        MANIFEST_POSITION: position,
        TARSPLIT_POSITION: f"{split_offset}:{len(split_data)}:{tar_split.uncompressed_size}",
        LEGACY_MANIFEST_CHECKSUM: checksum,
        LEGACY_MANIFEST_POSITION: position,
    }
    return ChunkedResult("sha256:" + tar_hash.hexdigest(), tar_size, annotations)
