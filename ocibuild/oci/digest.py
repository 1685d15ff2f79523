"""sha256 digests in OCI form (``sha256:<64 hex>``) and a writer that hashes what passes through it."""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def sha256_digest(data: bytes) -> str:
    """The OCI digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(value: str) -> bool:
    """True when ``value`` is a well-formed sha256 digest."""
    return bool(DIGEST_RE.match(value))


def digest_hex(digest: str) -> str:
    """The hex part of a digest; raises ValueError on a malformed one."""
    if not is_digest(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest.split(":", 1)[1]


class HashingWriter:
    """A write-only file object that counts and sha256-hashes bytes before passing them on."""

    def __init__(self, target: BinaryIO | None = None) -> None:
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        if self._target is not None:
            self._target.write(data)
        n = len(data)
        self.size += n
        return n

    def flush(self) -> None:
        if self._target is not None:
            self._target.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
