"""Where blobs were pushed before (registry -> digest -> repositories), so a new repository can mount them."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path

MAX_REPOS = 4


class KnownBlobs:
    """An in-memory record, optionally backed by a JSON file (merged on save, replaced atomically)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._data: dict[str, dict[str, list[str]]] = self._read() if self.path else {}
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, list[str]]]:
        try:
            data = json.loads(self.path.read_text())  # type: ignore[union-attr]
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def sources(self, registry: str, digest: str, exclude: str) -> list[str]:
        """Repositories of ``registry`` that held ``digest``, newest first, other than ``exclude``."""
        with self._lock:
            return [r for r in self._data.get(registry, {}).get(digest, []) if r != exclude]

    def add(self, registry: str, repository: str, digests: list[str]) -> None:
        with self._lock:
            _merge(self._data, {registry: {d: [repository] for d in digests}})

    def save(self) -> None:
        """Write the record (merged with what other processes saved meanwhile)."""
        if self.path is None:
            return
        with self._lock:
            merged = self._read()
            _merge(merged, self._data)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".known-blobs.", suffix=".json")
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(merged, f, sort_keys=True)
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise


def _merge(into: dict[str, dict[str, list[str]]], new: dict[str, dict[str, list[str]]]) -> None:
    """Newest repositories first, at most ``MAX_REPOS`` per blob."""
    for registry, blobs in new.items():
        target = into.setdefault(registry, {})
        for digest, repos in blobs.items():
            old = target.get(digest, [])
            target[digest] = [*repos, *(r for r in old if r not in repos)][:MAX_REPOS]
