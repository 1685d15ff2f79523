"""Compressed bytes are pinned: independent of thread count and write chunking, and they decompress to the tar."""

from __future__ import annotations

import hashlib
import io
import os
import random

import pytest

from ocibuild.oci.compression import Compression, open_compressor, open_decompressor
from ocibuild.oci.entries import Entry
from ocibuild.oci.layer import write_layer
from ocibuild.oci.store import Store

DATA = random.Random(7).randbytes(3 << 20) + bytes(2 << 20) + os.urandom(0) + b"tail" * 1000


def compress(compression: Compression, threads: int, chunk: int) -> bytes:
    out = io.BytesIO()
    writer = open_compressor(compression, out, threads)
    for i in range(0, len(DATA), chunk):
        writer.write(DATA[i : i + chunk])
    writer.close()
    return out.getvalue()


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD])
def test_bytes_do_not_depend_on_threads_or_chunking(compression: Compression):
    reference = compress(compression, 1, 1 << 20)
    for threads, chunk in [(2, 1 << 20), (2, 12345), (4, 3 << 20), (1, 777)]:
        assert compress(compression, threads, chunk) == reference, (threads, chunk)
    assert open_decompressor(compression, io.BytesIO(reference)).read() == DATA


def test_gzip_header_has_no_time_and_no_name():
    blob = compress(Compression.GZIP, 2, 1 << 20)
    assert blob[:4] == b"\x1f\x8b\x08\x00"  # no FNAME flag
    assert blob[4:8] == b"\x00\x00\x00\x00"  # mtime 0


@pytest.mark.parametrize("compression", list(Compression))
def test_layer_identities_match_the_bytes(tmp_path, compression: Compression):
    store = Store(tmp_path)
    layer = write_layer([Entry.file("w/data.bin", DATA)], store, compression, 0)
    blob = layer.path.read_bytes()
    assert layer.digest == "sha256:" + hashlib.sha256(blob).hexdigest() and layer.size == len(blob)
    tar = open_decompressor(compression, io.BytesIO(blob)).read()
    assert layer.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert layer.media_type == compression.media_type
    if compression is Compression.NONE:
        assert layer.digest == layer.diff_id
