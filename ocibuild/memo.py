"""The build memo: an unchanged rebuild answers from the last build's result without loading the build machinery.

The memo key is a digest of everything a build reads: ocibuild's own files (by stat), every path of the project
(by stat, ``.git`` and build outputs left out), the SOURCE_DATE_EPOCH in force and the build options. It is taken
before and after a build and recorded only when the two agree (nothing changed while building). A hit is used
only when every blob of the recorded image is still in the store; anything else falls back to a real build.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ocibuild.cog.files import OUTPUT_DIRNAME
from ocibuild.oci.descriptor import Descriptor, Platform
from ocibuild.oci.digest import sha256_digest
from ocibuild.oci.image import Image, Index
from ocibuild.oci.layout import LayoutError, read_target
from ocibuild.oci.store import Store

RECORD_PREFIX = "build-memo/1|"
SKIP_DIRS = frozenset({".git", "__pycache__"})


def memo_key(project_dir: Path, options: dict[str, Any], skipped: Iterable[str] = ()) -> str:
    """The digest of the project tree, ocibuild itself and ``options`` (JSON-ready values)."""
    h = hashlib.sha256(json.dumps([options, sys.version, _installed()], sort_keys=True, default=str).encode())
    for root in _ocibuild_roots():
        _hash_tree(h, root, frozenset())
    _hash_tree(h, Path(project_dir).resolve(), frozenset({OUTPUT_DIRNAME, *skipped}))
    return h.hexdigest()


def _ocibuild_roots() -> list[Path]:
    package = Path(__file__).resolve().parent
    return [package, *(p for p in (package.parent / "layers", package.parent / "base-images") if p.is_dir())]


def _installed() -> list[str]:
    """The distributions (name and version) of the running environment: a new uv or compressor is a new key."""
    names: set[str] = set()
    for site in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        with contextlib.suppress(OSError):
            names.update(name for name in os.listdir(site) if name.endswith(".dist-info"))
    return sorted(names)


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
            if entry.name in SKIP_DIRS or rel in skipped_at_root:
                continue
            st = entry.stat(follow_symlinks=False)
            link = os.readlink(entry.path) if entry.is_symlink() else ""
            yield rel, st, link
            if entry.is_dir(follow_symlinks=False):
                stack.append(rel + "/")


def recall(store: Store, key: str) -> tuple[Image | Index, int, str] | None:
    """The image recorded for ``key``, its SOURCE_DATE_EPOCH and image name, when the store still has every blob."""
    record = store.lookup(RECORD_PREFIX + key)
    if record is None:
        return None
    try:
        blobs = [(str(d), int(s)) for d, s in record["blobs"]]
        if not all(store.has_blob(d, s) for d, s in blobs):
            return None
        top = Descriptor(record["media_type"], record["digest"], int(record["size"]))
        target = read_target(store.root, top, verify_layers=False)
        if isinstance(target, Image) and target.platform is None:  # as a build gives it: index.json names it
            config = target.config
            platform = Platform(config["os"], config["architecture"], config.get("variant", ""))
            target = dataclasses.replace(target, platform=platform)
        return target, int(record["source_date_epoch"]), str(record["name"])
    except (KeyError, TypeError, ValueError, OSError, LayoutError):
        return None


def remember(store: Store, key: str, target: Image | Index, source_date_epoch: int, name: str) -> None:
    """Record ``target`` for ``key``: its manifests and configs go into the store beside its layers."""
    if isinstance(target, Index) and target.artifact_blobs:
        return  # managed-weight artifacts are not read back from a store: such builds always run
    images = target.images if isinstance(target, Index) else (target,)
    top = target.index_bytes if isinstance(target, Index) else target.manifest_bytes
    documents = [top, *(b for image in images for b in (image.manifest_bytes, image.config_bytes))]
    for data in documents:
        store.put_bytes(data)
    blobs = [[sha256_digest(d), len(d)] for d in documents]
    blobs += [[layer.digest, layer.size] for image in images for layer in image.layers]
    record = {
        "digest": target.digest,
        "size": len(top),
        "media_type": target.media_type,
        "source_date_epoch": source_date_epoch,
        "name": name,
        "blobs": blobs,
    }
    store.record(RECORD_PREFIX + key, record)
