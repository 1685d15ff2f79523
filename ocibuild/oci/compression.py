"""Pinned, deterministic compressors for layer blobs.

The compressed bytes depend on the implementation, its version, level, block size and sometimes the thread
count, so each choice here is fixed (versions pinned in pyproject.toml) and tested for stability:
- gzip: ISA-L igzip (``isal`` 1.9.1) level 1 through ``igzip_threaded`` fed fixed 1 MiB blocks; its output does
  not depend on the thread count, and the header carries mtime 0 and no file name;
- zstd: ``zstandard`` 0.25.0 level 3 with at least one worker thread (threads=0 gives other bytes);
- zstd:chunked: the same compressor, one frame per file plus a TOC (``zstd_chunked.py``); as a plain stream
  (``open_compressor``) it is zstd;
- none: the tar itself.
"""

from __future__ import annotations

import enum
import os
from typing import BinaryIO, Protocol

from ocibuild.oci import mediatypes

BLOCK_SIZE = 1 << 20
GZIP_LEVEL = 1
ZSTD_LEVEL = 3


class Compression(str, enum.Enum):
    GZIP = "gzip"
    ZSTD = "zstd"
    ZSTD_CHUNKED = "zstd:chunked"
    NONE = "none"

    @property
    def media_type(self) -> str:
        return {
            Compression.GZIP: mediatypes.OCI_LAYER_GZIP,
            Compression.ZSTD: mediatypes.OCI_LAYER_ZSTD,
            Compression.ZSTD_CHUNKED: mediatypes.OCI_LAYER_ZSTD,
            Compression.NONE: mediatypes.OCI_LAYER,
        }[self]

    @classmethod
    def from_media_type(cls, media_type: str) -> Compression:
        if media_type.endswith("+gzip") or media_type.endswith(".tar.gzip"):
            return cls.GZIP
        if media_type.endswith("+zstd"):
            return cls.ZSTD
        return cls.NONE


class BlockWriter(Protocol):
    def write(self, data: bytes | bytearray | memoryview) -> int: ...
    def close(self) -> None: ...


def compression_threads() -> int:
    """Worker threads for compressors: the cores available to this process, at least one."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2))


def zstd_compressor(threads: int | None = None):
    """The pinned zstd compressor (level, checksum, at least one worker thread: the bytes do not move with it)."""
    import zstandard

    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=threads or compression_threads(), write_checksum=True)


class _FixedBlocks:
    """Re-chunks writes into fixed BLOCK_SIZE blocks, so the compressor sees the same blocks for the same input."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._buf = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = len(data)
        if not self._buf and n == BLOCK_SIZE:
            self._inner.write(data)
            return n
        self._buf += data
        while len(self._buf) >= BLOCK_SIZE:
            self._inner.write(bytes(self._buf[:BLOCK_SIZE]))
            del self._buf[:BLOCK_SIZE]
        return n

    def close(self) -> None:
        if self._buf:
            self._inner.write(bytes(self._buf))
            self._buf.clear()
        self._inner.close()


class _Passthrough:
    def __init__(self, target: BinaryIO) -> None:
        self._target = target

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self._target.write(data)

    def close(self) -> None:
        self._target.flush()


def open_compressor(compression: Compression, target: BinaryIO, threads: int | None = None) -> BlockWriter:
    """A writer that compresses into ``target`` (which stays open after ``close``)."""
    threads = threads or compression_threads()
    if compression is Compression.GZIP:
        from isal import igzip_threaded

        stream = igzip_threaded.open(
            _Unclosable(target), "wb", compresslevel=GZIP_LEVEL, threads=threads, block_size=BLOCK_SIZE
        )
        return _FixedBlocks(stream)
    if compression in (Compression.ZSTD, Compression.ZSTD_CHUNKED):
        return zstd_compressor(threads).stream_writer(target, closefd=False)
    return _Passthrough(target)


class _Unclosable:
    """Shields ``target`` from being closed by a compressor that closes its file object."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self._target.write(data)

    def flush(self) -> None:
        self._target.flush()

    def close(self) -> None:
        self._target.flush()

    @property
    def closed(self) -> bool:
        return False


def open_decompressor(compression: Compression, source: BinaryIO) -> BinaryIO:
    """A reader of the uncompressed bytes of a blob."""
    if compression is Compression.GZIP:
        from isal import igzip

        return igzip.IGzipFile(fileobj=source, mode="rb")  # type: ignore[return-value]
    if compression in (Compression.ZSTD, Compression.ZSTD_CHUNKED):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)  # type: ignore[return-value]
    return source
