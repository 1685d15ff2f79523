"""Layers: entries -> deterministic tar -> compressed blob in the store, hashed in one pass."""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ocibuild.oci.compression import Compression, open_compressor, zstd_compressor
from ocibuild.oci.descriptor import Descriptor
from ocibuild.oci.digest import HashingWriter
from ocibuild.oci.entries import Entry
from ocibuild.oci.mediatypes import ImageFormat, convert_layer_type
from ocibuild.oci.store import Store
from ocibuild.oci.tarwriter import write_tar
from ocibuild.oci.zstd_chunked import write_zstd_chunked


@dataclass(frozen=True)
class LayerBlob:
    """A materialised layer: its blob in the store plus the identities a manifest and config need."""

    diff_id: str
    digest: str
    size: int
    media_type: str
    path: Path
    uncompressed_size: int = 0
    annotations: tuple[tuple[str, str], ...] = ()
    """Descriptor annotations the blob needs (zstd:chunked: where its table of contents lies), sorted."""

    def descriptor(self, fmt: ImageFormat = ImageFormat.OCI) -> Descriptor:
        annotations = dict(self.annotations) if fmt is ImageFormat.OCI else {}
        return Descriptor(convert_layer_type(self.media_type, fmt), self.digest, self.size, annotations)

    def to_record(self) -> dict[str, object]:
        record: dict[str, object] = {
            "diff_id": self.diff_id,
            "digest": self.digest,
            "size": self.size,
            "media_type": self.media_type,
            "uncompressed_size": self.uncompressed_size,
        }
        if self.annotations:
            record["annotations"] = dict(self.annotations)
        return record

    @classmethod
    def from_record(cls, record: dict, store: Store) -> LayerBlob:
        return cls(
            diff_id=record["diff_id"],
            digest=record["digest"],
            size=int(record["size"]),
            media_type=record["media_type"],
            path=store.blob_path(record["digest"]),
            uncompressed_size=int(record.get("uncompressed_size", 0)),
            annotations=tuple(sorted((record.get("annotations") or {}).items())),
        )


class _TarSink:
    """Hashes the tar stream (the diff_id) and feeds it to the compressor."""

    def __init__(self, compressor, on_bytes: Callable[[int], None] | None = None) -> None:
        self._hash = hashlib.sha256()
        self._compressor = compressor
        self._on_bytes = on_bytes
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self._compressor.write(data)
        self.size += len(data)
        if self._on_bytes is not None:
            self._on_bytes(len(data))
        return len(data)

    @property
    def diff_id(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def write_layer(
    entries: Iterable[Entry],
    store: Store,
    compression: Compression = Compression.GZIP,
    source_date_epoch: int = 0,
    threads: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> LayerBlob:
    """Write ``entries`` as one layer blob into ``store`` in a single pass and return its identities.

    ``on_bytes`` hears of every chunk of the uncompressed stream (progress)."""
    if compression is Compression.ZSTD_CHUNKED:
        return _write_chunked_layer(entries, store, source_date_epoch, threads, on_bytes)
    with store.temp_path(".layer") as temp:
        with open(temp, "wb") as out:
            blob = HashingWriter(out)
            compressor = open_compressor(compression, blob, threads)  # type: ignore[arg-type]
            tar = _TarSink(compressor, on_bytes)
            try:
                write_tar(entries, tar, source_date_epoch)
            finally:
                compressor.close()
        path = store.commit_blob(temp, blob.digest)
    return LayerBlob(
        diff_id=tar.diff_id,
        digest=blob.digest,
        size=blob.size,
        media_type=compression.media_type,
        path=path,
        uncompressed_size=tar.size,
    )


class RemoteLayers(Protocol):
    """A cache shared between machines (``ocibuild.registry.layer_cache``), asked after the store misses.

    ``lookup`` returns a layer whose blob it has put into the store, checked against its digest, or None;
    ``built`` hears of a layer made here, to publish later. Neither may raise: a cache never fails a build."""

    def lookup(self, cache_key: str) -> LayerBlob | None: ...

    def built(self, cache_key: str, layer: LayerBlob) -> None: ...


def _write_chunked_layer(
    entries: Iterable[Entry],
    store: Store,
    source_date_epoch: int,
    threads: int | None,
    on_bytes: Callable[[int], None] | None,
) -> LayerBlob:
    with store.temp_path(".layer") as temp:
        with open(temp, "wb") as out:
            blob = HashingWriter(out)
            new = functools.partial(zstd_compressor, threads)
            result = write_zstd_chunked(entries, blob, source_date_epoch, new, on_bytes)  # type: ignore[arg-type]
        path = store.commit_blob(temp, blob.digest)
    return LayerBlob(
        diff_id=result.diff_id,
        digest=blob.digest,
        size=blob.size,
        media_type=Compression.ZSTD_CHUNKED.media_type,
        path=path,
        uncompressed_size=result.tar_size,
        annotations=tuple(sorted(result.annotations.items())),
    )


@dataclass(frozen=True)
class LayerRecipe:
    """How to make one layer: an input ``key`` that fixes its bytes, its ``entries`` and the epoch that stamps them.

    The key names every input (content digests, recipe version); the cache key adds compression and epoch.
    ``entries(stack)`` may enter resources (open files, temp dirs) into ``stack``; they stay open until the
    layer is written.
    """

    key: str
    entries: Callable[[contextlib.ExitStack], Iterable[Entry]]
    source_date_epoch: int = 0

    def cache_key(self, compression: Compression) -> str:
        return layer_key(self.key, compression, self.source_date_epoch)

    def cached(self, store: Store, compression: Compression) -> LayerBlob | None:
        """The layer when the store already holds it (no work done)."""
        record = store.lookup(self.cache_key(compression))
        return None if record is None else LayerBlob.from_record(record, store)

    def materialise(
        self,
        store: Store,
        compression: Compression,
        on_bytes: Callable[[int], None] | None = None,
        remote: RemoteLayers | None = None,
    ) -> LayerBlob:
        """The layer: from the store, else from ``remote``, else written."""
        return self.cached(store, compression) or self.make(store, compression, on_bytes, remote)

    def make(
        self,
        store: Store,
        compression: Compression,
        on_bytes: Callable[[int], None] | None = None,
        remote: RemoteLayers | None = None,
    ) -> LayerBlob:
        """The layer the store was just found to lack (``cached``): from ``remote``, else written; then recorded."""
        with contextlib.ExitStack() as stack:
            entries = functools.partial(self.entries, stack)
            return _fetch_or_write(
                self.cache_key(compression), entries, store, compression, self.source_date_epoch, on_bytes, remote
            )


def layer_key(key: str, compression: Compression, source_date_epoch: int) -> str:
    """The store key of a layer: its input ``key`` with the two things besides the inputs that shape its bytes."""
    return f"{key}|{compression.value}|sde={source_date_epoch}"


def cached_layer(
    key: str,
    entries_factory: Callable[[], Iterable[Entry]],
    store: Store,
    compression: Compression = Compression.GZIP,
    source_date_epoch: int = 0,
    on_bytes: Callable[[int], None] | None = None,
    remote: RemoteLayers | None = None,
) -> LayerBlob:
    """The layer for an input ``key``: from the store when known, else from ``remote`` (a shared cache), else
    built from ``entries_factory()`` (and then offered to ``remote``).

    The key must fix the layer's bytes: include every input, the compression and SOURCE_DATE_EPOCH.
    """
    full_key = layer_key(key, compression, source_date_epoch)
    record = store.lookup(full_key)
    if record is not None:
        return LayerBlob.from_record(record, store)
    return _fetch_or_write(full_key, entries_factory, store, compression, source_date_epoch, on_bytes, remote)


def _fetch_or_write(
    full_key: str,
    entries_factory: Callable[[], Iterable[Entry]],
    store: Store,
    compression: Compression,
    source_date_epoch: int,
    on_bytes: Callable[[int], None] | None,
    remote: RemoteLayers | None,
) -> LayerBlob:
    """The layer for ``full_key``, which the store lacks: from ``remote``, else written; recorded either way."""
    if remote is not None and (fetched := remote.lookup(full_key)) is not None:
        store.record(full_key, fetched.to_record())
        return fetched
    layer = write_layer(entries_factory(), store, compression, source_date_epoch, on_bytes=on_bytes)
    store.record(full_key, layer.to_record())
    if remote is not None:
        remote.built(full_key, layer)
    return layer
