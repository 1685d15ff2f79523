"""Stat fingerprints -> known content digests, so unchanged files are never read twice.

A fingerprint is what ``lstat`` says about a file: size, mtime_ns, inode, device and mode. Each directory
gets one small index in the store (``fingerprints/<hh>/<sha256 of the directory>.json``) mapping a file name
to its fingerprint and sha256. A lookup with an equal fingerprint returns the digest without opening the
file; anything else re-hashes.

Racy entries (git's "racy clean" problem): a file modified within the filesystem's timestamp granularity
of being hashed could change again without changing its mtime. Fingerprints whose mtime is less than
``RACY_WINDOW_NS`` before the moment they were hashed are therefore not remembered; such files are
re-hashed on the next build until they are older.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import BuildError
from ocibuild.oci.atomic import write_atomic
from ocibuild.oci.store import Store

RACY_WINDOW_NS = 2_000_000_000
READ_CHUNK = 4 << 20


@dataclass
class ReadStats:
    """What a build read from source files; tests use it to prove unchanged files were not opened."""

    files_hashed: int = 0
    bytes_read: int = 0
    fingerprint_hits: int = 0
    layers_reused: int = 0
    layers_written: int = 0


def fingerprint_of(st: os.stat_result) -> list[int]:
    """The parts of a stat result that change whenever a file's content may have changed."""
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, stat.S_IMODE(st.st_mode)]


def is_racy(st: os.stat_result, hashed_at_ns: int) -> bool:
    return hashed_at_ns - st.st_mtime_ns < RACY_WINDOW_NS


class FingerprintCache:
    """Per-directory indexes of fingerprint -> sha256, loaded lazily and written back by ``save``."""

    def __init__(self, store: Store, stats: ReadStats | None = None) -> None:
        self._root = store.root / "fingerprints"
        self._store = store
        self.stats = stats if stats is not None else ReadStats()
        self._indexes: dict[str, dict[str, list]] = {}
        self._dirty: set[str] = set()

    def _index(self, directory: str) -> dict[str, list]:
        index = self._indexes.get(directory)
        if index is None:
            try:
                index = json.loads(self._index_path(directory).read_text())
            except (FileNotFoundError, ValueError):
                index = {}
            self._indexes[directory] = index
        return index

    def _index_path(self, directory: str) -> Path:
        name = hashlib.sha256(directory.encode("utf-8", "surrogateescape")).hexdigest()
        return self._root / name[:2] / f"{name}.json"

    def known(self, path: Path, st: os.stat_result) -> str | None:
        """The digest remembered for ``path`` if its fingerprint is unchanged (no file access)."""
        entry = self._index(str(path.parent)).get(path.name)
        if entry is not None and entry[:-1] == fingerprint_of(st):
            self.stats.fingerprint_hits += 1
            return entry[-1]
        return None

    def remember(self, path: Path, st: os.stat_result, digest: str, hashed_at_ns: int) -> None:
        """Record ``digest`` for ``path`` as it was when ``st`` was taken (unless the entry is racy)."""
        if is_racy(st, hashed_at_ns):
            return
        directory = str(path.parent)
        self._index(directory)[path.name] = [*fingerprint_of(st), digest]
        self._dirty.add(directory)

    def digest(self, path: Path, st: os.stat_result) -> str:
        """The sha256 of ``path``: remembered when unchanged, else read once and remembered."""
        known = self.known(path, st)
        if known is not None:
            return known
        digest = hash_file(path, st, self.stats)
        self.remember(path, st, digest, time.time_ns())
        return digest

    def save(self) -> None:
        """Write the changed indexes back (each atomically; the last concurrent writer wins)."""
        for directory in sorted(self._dirty):
            path = self._index_path(directory)
            write_atomic(path, json.dumps(self._indexes[directory], sort_keys=True).encode())
        self._dirty.clear()


def hash_file(path: Path, st: os.stat_result, stats: ReadStats) -> str:
    """Stream ``path`` through sha256, checking it still matches ``st`` afterwards."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(READ_CHUNK):
            h.update(chunk)
            stats.bytes_read += len(chunk)
        after = os.fstat(f.fileno())
    stats.files_hashed += 1
    if fingerprint_of(after) != fingerprint_of(st):
        raise BuildError(f"{path}: file changed while it was being read; try again")
    return "sha256:" + h.hexdigest()


class VerifiedReader:
    """Reads a file whose digest made a layer's key, and fails if the bytes read do not have that digest.

    An edit of the same size between keying and writing would otherwise put new bytes under the old key.
    """

    def __init__(self, path: Path, size: int, expected: str) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close(), as tar writers close streams
        self._path, self._left, self._expected = path, size, expected
        self._hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._file.read(n if n >= 0 else self._left)
        self._hash.update(data)
        self._left -= len(data)
        if self._left == 0 and "sha256:" + self._hash.hexdigest() != self._expected:
            raise BuildError(f"{self._path}: file changed while the build read it; try again")
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> VerifiedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
