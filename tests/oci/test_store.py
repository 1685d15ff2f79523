"""The content-addressed store: atomic entries, corrupt records ignored, concurrent writers."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ocibuild.oci import Compression, Entry, Store
from ocibuild.oci.layer import LayerRecipe, cached_layer


def test_cached_layer_is_built_once_then_served_from_the_store(tmp_path: Path):
    store = Store(tmp_path)
    calls = []

    def entries():
        calls.append(1)
        return [Entry.file("a", b"a")]

    first = cached_layer("k1", entries, store)
    second = cached_layer("k1", entries, store)
    assert first == second and len(calls) == 1
    assert store.stats.key_hits == 1 and store.stats.key_misses == 1


def test_a_recipe_looks_its_layer_up_once(tmp_path: Path):
    """``materialise`` asks the store once; ``make``, for a layer ``cached`` just missed, does not ask again."""
    store = Store(tmp_path)
    recipe = LayerRecipe("k1", lambda stack: [Entry.file("a", b"a")], 5)
    layer = recipe.materialise(store, Compression.GZIP)
    assert (store.stats.key_hits, store.stats.key_misses, store.stats.blobs_written) == (0, 1, 1)
    assert recipe.materialise(store, Compression.GZIP) == layer
    assert (store.stats.key_hits, store.stats.key_misses, store.stats.blobs_written) == (1, 1, 1)
    other = LayerRecipe("k2", lambda stack: [Entry.file("b", b"b")])
    assert other.cached(store, Compression.ZSTD) is None
    made = other.make(store, Compression.ZSTD)
    assert (store.stats.key_hits, store.stats.key_misses) == (1, 2)
    assert other.cached(store, Compression.ZSTD) == made


def test_a_record_whose_blob_vanished_or_is_corrupt_is_rebuilt(tmp_path: Path):
    store = Store(tmp_path)
    layer = cached_layer("k", lambda: [Entry.file("a", b"a")], store)
    layer.path.unlink()
    assert cached_layer("k", lambda: [Entry.file("a", b"a")], store).digest == layer.digest
    key_file = next((tmp_path / "keys").rglob("*.json"))
    key_file.write_text("{not json")
    assert cached_layer("k", lambda: [Entry.file("a", b"a")], store).digest == layer.digest
    key_file = next((tmp_path / "keys").rglob("*.json"))
    key_file.write_text('{"digest": "nonsense"}')
    assert cached_layer("k", lambda: [Entry.file("a", b"a")], store).digest == layer.digest


def test_concurrent_builders_of_the_same_layer_agree(tmp_path: Path):
    stores = [Store(tmp_path) for _ in range(8)]
    data = bytes(range(256)) * 20000
    with ThreadPoolExecutor(8) as pool:
        layers = list(pool.map(lambda s: cached_layer("same", lambda: [Entry.file("f", data)], s), stores))
    assert len({layer.digest for layer in layers}) == 1
    assert layers[0].path.read_bytes()  # readable, complete
    assert not list((tmp_path / "tmp").iterdir())


def test_temp_files_never_become_entries_when_a_write_fails(tmp_path: Path):
    store = Store(tmp_path)

    def broken():
        yield Entry.file("a", b"a")
        raise RuntimeError("killed half way")

    with pytest.raises(RuntimeError):
        cached_layer("broken", broken, store)
    assert store.lookup("broken|gzip|sde=0") is None
    assert not list((tmp_path / "tmp").iterdir())
    assert not list((tmp_path / "blobs" / "sha256").iterdir())


def test_prune_frees_rebuildable_caches_and_keeps_the_store_usable(tmp_path: Path):
    store = Store(tmp_path)
    layer = cached_layer("k", lambda: [Entry.file("a", b"a" * 1000)], store)
    (tmp_path / "rootfs" / "abc" / "usr").mkdir(parents=True)
    (tmp_path / "rootfs" / "abc" / "usr" / "f").write_bytes(b"x" * 5000)
    assert store.prune() >= 5000
    assert not list((tmp_path / "rootfs").iterdir()) and layer.path.exists()  # the folder stays: builds use it
    assert store.prune(everything=True) > 0
    assert not layer.path.exists() and store.lookup("k|gzip|sde=0") is None
    assert cached_layer("k", lambda: [Entry.file("a", b"a" * 1000)], store).digest == layer.digest


def test_a_blob_shared_through_a_hardlink_is_checked_then_owned_or_dropped(tmp_path: Path):
    """Layouts of older versions hardlinked store blobs; an edit made there must not be served as the blob."""
    store = Store(tmp_path / "store")
    good = cached_layer("good", lambda: [Entry.file("a", b"a" * 5000)], store)
    bad = cached_layer("bad", lambda: [Entry.file("b", b"b" * 5000)], store)
    os.link(good.path, tmp_path / "old-layout-good")
    os.link(bad.path, tmp_path / "old-layout-bad")
    edited = bytearray((tmp_path / "old-layout-bad").read_bytes())
    edited[-1] ^= 1
    (tmp_path / "old-layout-bad").chmod(0o644)
    (tmp_path / "old-layout-bad").write_bytes(bytes(edited))
    assert store.has_blob(good.digest, good.size)
    assert store.blob_path(good.digest).stat().st_nlink == 1  # the store's own inode now
    assert not store.has_blob(bad.digest, bad.size) and not store.blob_path(bad.digest).exists()
    rebuilt = cached_layer("bad", lambda: [Entry.file("b", b"b" * 5000)], store)
    assert rebuilt.digest == bad.digest
    assert "sha256:" + hashlib.sha256(rebuilt.path.read_bytes()).hexdigest() == bad.digest
