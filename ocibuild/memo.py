"""The build memo: an unchanged rebuild answers from the last build's result without loading the build machinery.

The memo key is a digest of everything a build reads: ocibuild's own files (by stat), every path of the project
(by stat, ``.git`` and build outputs left out), the SOURCE_DATE_EPOCH in force and the build options. It is taken
before and after a build and recorded only when the two agree (nothing changed while building). A hit is used
only when every blob of the recorded image is still in the store; anything else falls back to a real build.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ocibuild.oci.store import Store

RECORD_PREFIX = "build-memo/1|"
SKIP_DIRS = frozenset({".git", "__pycache__"})


def memo_key(project_dir: Path, options: dict[str, Any], skipped: Iterable[str] = ()) -> str:
    """The digest of the project tree, ocibuild itself and ``options`` (JSON-ready values)."""
    h = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    for root in _ocibuild_roots():
        _hash_tree(h, root, frozenset())
    _hash_tree(h, Path(project_dir).resolve(), frozenset({".ocibuild", *skipped}))
    return h.hexdigest()


def _ocibuild_roots() -> list[Path]:
    package = Path(__file__).resolve().parent
    return [package, *(p for p in (package.parent / "layers", package.parent / "base-images") if p.is_dir())]


def _hash_tree(h: Any, root: Path, skipped_at_root: frozenset[str]) -> None:
    h.update(b"\0tree\0" + os.fsencode(root))
    for rel, st, link in _walk(root, skipped_at_root):
        fields = (rel, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, link)
        h.update(json.dumps(fields, default=str).encode("utf-8", "surrogateescape") + b"\n")


def _walk(root: Path, skipped_at_root: frozenset[str]) -> Iterator[tuple[str, os.stat_result, str]]:
    """(relative path, lstat, link target) of every entry under ``root``, in a fixed order, without recursion."""
    stack = [""]
    while stack:
        prefix = stack.pop()
        try:
            with os.scandir(root / prefix if prefix else root) as it:
                names = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for entry in names:
            rel = f"{prefix}{entry.name}"
            if entry.name in SKIP_DIRS or (not prefix and rel in skipped_at_root) or rel in skipped_at_root:
                continue
            st = entry.stat(follow_symlinks=False)
            link = os.readlink(entry.path) if entry.is_symlink() else ""
            yield rel, st, link
            if entry.is_dir(follow_symlinks=False):
                stack.append(rel + "/")


def recall(store: Store, key: str) -> dict[str, Any] | None:
    """The recorded result for ``key`` when every blob it names is still in the store."""
    record = store.lookup(RECORD_PREFIX + key)
    if record is None:
        return None
    blobs = record.get("blobs", [])
    if not all(isinstance(b, list) and len(b) == 2 and store.has_blob(b[0], b[1]) for b in blobs):
        return None
    return record


def remember(store: Store, key: str, record: dict[str, Any]) -> None:
    store.record(RECORD_PREFIX + key, record)
