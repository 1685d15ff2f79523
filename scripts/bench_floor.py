"""The single-pass floor the layer benchmarks compare against: sha256(tar) + the pinned gzip + sha256(blob),
over a tar already in memory (no file reads, no tar headers)."""

from __future__ import annotations

import hashlib
import time

from ocibuild.oci.compression import Compression, open_compressor
from ocibuild.oci.digest import HashingWriter


def floor_seconds(tar_bytes: bytes) -> float:
    """Seconds for one pass over ``tar_bytes``, in 1 MiB blocks as the layer writer feeds them."""
    start = time.perf_counter()
    blob = HashingWriter()
    writer = open_compressor(Compression.GZIP, blob)  # type: ignore[arg-type]
    digest = hashlib.sha256()
    view = memoryview(tar_bytes)
    for i in range(0, len(view), 1 << 20):
        chunk = view[i : i + (1 << 20)]
        digest.update(chunk)
        writer.write(bytes(chunk))
    writer.close()
    return time.perf_counter() - start
