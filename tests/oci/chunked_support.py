"""Readers for zstd:chunked blobs written independently of the writer: the TOC, the tar-split and the footer."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct

import zstandard

from ocibuild.oci import zstd_chunked as zc


def _frames(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()


def position(annotations: dict[str, str], key: str) -> list[int]:
    return [int(part) for part in annotations[key].split(":")]


def read_toc(blob: bytes, annotations: dict[str, str]) -> dict:
    offset, length, uncompressed, kind = position(annotations, zc.MANIFEST_POSITION)
    assert kind == 1
    compressed = blob[offset : offset + length]
    assert "sha256:" + hashlib.sha256(compressed).hexdigest() == annotations[zc.MANIFEST_CHECKSUM]
    assert blob[offset - 8 : offset] == b"\x50\x2a\x4d\x18" + struct.pack("<I", length)  # a skippable frame
    toc = json.loads(zstandard.ZstdDecompressor().decompress(compressed, max_output_size=uncompressed))
    assert len(json.dumps(toc, separators=(",", ":"), ensure_ascii=False).encode()) == uncompressed
    return toc


def read_tar_split(blob: bytes, annotations: dict[str, str], toc: dict) -> list[dict]:
    offset, length, uncompressed = position(annotations, zc.TARSPLIT_POSITION)
    compressed = blob[offset : offset + length]
    assert toc["tarSplitDigest"] == "sha256:" + hashlib.sha256(compressed).hexdigest()
    text = _frames(compressed)
    assert len(text) == uncompressed
    return [json.loads(line) for line in text.splitlines()]


def read_footer(blob: bytes) -> tuple[int, ...]:
    assert blob[-72:-64] == b"\x50\x2a\x4d\x18" + struct.pack("<I", 64)
    assert blob[-8:] == b"GNUlInUx"
    return struct.unpack("<7Q", blob[-64:-8])


def file_content(blob: bytes, entry: dict) -> bytes:
    """A file's bytes from its own frame(s) alone, as a partial pull fetches them by range."""
    return _frames(blob[entry["offset"] : entry["endOffset"]])


def crc64_go_iso(data: bytes) -> bytes:
    """Go's ``crc64.Checksum(data, crc64.MakeTable(crc64.ISO))``, bit by bit (independent of anycrc)."""
    crc = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xD800000000000000 if crc & 1 else crc >> 1
    return struct.pack(">Q", crc ^ 0xFFFFFFFFFFFFFFFF)


def rebuild_tar(blob: bytes, annotations: dict[str, str]) -> bytes:
    """The layer tar from the tar-split segments plus each file's frames (what containers/storage rebuilds)."""
    toc = read_toc(blob, annotations)
    files = {e["name"]: e for e in toc["entries"] if e.get("digest")}
    out = bytearray()
    for position_, record in enumerate(read_tar_split(blob, annotations, toc)):
        assert record["position"] == position_
        if record["type"] == 2:
            out += base64.b64decode(record["payload"])
            continue
        assert record["type"] == 1
        if record.get("size"):
            content = file_content(blob, files[record["name"]])
            assert len(content) == record["size"]
            assert base64.b64decode(record["payload"]) == crc64_go_iso(content)
            out += content
        else:
            assert record["payload"] is None
    return bytes(out)
