"""Request bodies streamed from a file (or bytes) range, reporting progress; never the whole blob in memory."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path


class SliceBody:
    """A read-only file-like view of ``source[start:end]``; requests sends it with a Content-Length."""

    def __init__(self, source: bytes | Path, start: int, end: int, on_read: Callable[[int], None] | None = None):
        self._file = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
        self._file.seek(start)
        self._length = end - start
        self._left = end - start
        self._position = start
        self._on_read = on_read

    def __len__(self) -> int:
        return self._length

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        data = self._file.read(self._left if n is None or n < 0 else min(n, self._left))
        if not data:
            raise OSError("blob file is shorter than its descriptor says")
        self._left -= len(data)
        self._position += len(data)
        if self._on_read is not None:
            self._on_read(self._position)
        return data

    def close(self) -> None:
        self._file.close()


def source_size(source: bytes | Path) -> int:
    return len(source) if isinstance(source, bytes) else Path(source).stat().st_size


def read_small(source: bytes | Path) -> bytes:
    """The bytes of a small blob (a manifest)."""
    return source if isinstance(source, bytes) else Path(source).read_bytes()
