"""zstd:chunked layers: reproducible, read by plain zstd readers, self-describing, and partially pulled by podman."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from ocibuild.oci import zstd_chunked as zc
from ocibuild.oci.compression import Compression
from ocibuild.oci.entries import Entry
from ocibuild.oci.layer import write_layer
from ocibuild.oci.mediatypes import OCI_LAYER_ZSTD
from ocibuild.oci.store import Store
from tests.oci import chunked_support as cs
from tests.oci.podman_support import partial_pull_storage, podman


def sample_entries(seed: int = 1) -> list[Entry]:
    rng = random.Random(seed)
    return [
        Entry.file("app/text.txt", b"hello chunked\n" * 300),
        Entry.file("app/empty", b""),
        Entry.file("app/random.bin", rng.randbytes(70_000), mode=0o755),
        Entry.hardlink("app/random-link.bin", "app/random.bin", mode=0o755),
        Entry.symlink("app/current", "text.txt"),
        Entry.file("app/" + "long-name-" * 12 + ".py", b"print('long')\n"),
        Entry.file("app/ünïcode.txt", "ünï\n".encode()),
        Entry.file("app/zeros", bytes(5000)),
        Entry.whiteout("etc/gone"),
        Entry.directory("var/empty", mode=0o700),
    ]


def chunked(entries: list[Entry], store: Store, sde: int = 1_700_000_000):
    layer = write_layer(entries, store, Compression.ZSTD_CHUNKED, sde)
    return layer, layer.path.read_bytes(), dict(layer.annotations)


def test_same_entries_give_the_same_bytes(tmp_path):
    first, blob1, ann1 = chunked(sample_entries(), Store(tmp_path / "a"))
    second, blob2, ann2 = chunked(
        sample_entries(),
        Store(tmp_path / "b"),
    )
    assert blob1 == blob2 and first.digest == second.digest and ann1 == ann2
    third = write_layer(sample_entries(), Store(tmp_path / "c"), Compression.ZSTD_CHUNKED, 1_700_000_000, threads=1)
    assert third.digest == first.digest  # worker threads do not move the bytes


def test_descriptor_media_type_and_annotations(tmp_path):
    layer, blob, ann = chunked(sample_entries(), Store(tmp_path))
    descriptor = layer.descriptor().to_dict()
    assert descriptor["mediaType"] == OCI_LAYER_ZSTD
    assert set(descriptor["annotations"]) == {
        zc.MANIFEST_CHECKSUM,
        zc.MANIFEST_POSITION,
        zc.TARSPLIT_POSITION,
        zc.LEGACY_MANIFEST_CHECKSUM,
        zc.LEGACY_MANIFEST_POSITION,
    }
    assert ann[zc.LEGACY_MANIFEST_POSITION] == ann[zc.MANIFEST_POSITION]
    toc_offset, toc_len, toc_raw, _ = cs.position(ann, zc.MANIFEST_POSITION)
    split_offset, split_len, split_raw = cs.position(ann, zc.TARSPLIT_POSITION)
    assert cs.read_footer(blob) == (toc_offset, toc_len, toc_raw, 1, split_offset, split_len, split_raw)
    assert split_offset + split_len + 72 == len(blob)


def test_cached_layer_keeps_its_annotations(tmp_path):
    from ocibuild.oci.layer import LayerBlob

    store = Store(tmp_path)
    layer, _, _ = chunked(sample_entries(), store)
    assert LayerBlob.from_record(layer.to_record(), store) == layer


def test_diff_id_is_the_plain_tar(tmp_path):
    store = Store(tmp_path)
    layer, blob, _ = chunked(sample_entries(), store)
    plain = write_layer(sample_entries(), store, Compression.NONE, 1_700_000_000)
    tar = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob), read_across_frames=True).read()
    assert tar == plain.path.read_bytes()
    assert layer.diff_id == plain.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert layer.uncompressed_size == len(tar)


@pytest.mark.skipif(not shutil.which("zstd") or not shutil.which("tar"), reason="needs zstd and tar")
def test_zstd_cli_and_tar_list_the_same_entries(tmp_path):
    store = Store(tmp_path)
    layer, _, _ = chunked(sample_entries(), store)
    gz = write_layer(sample_entries(), store, Compression.GZIP, 1_700_000_000)
    listed = subprocess.run(
        f"zstd -dc {layer.path} | tar -t", shell=True, capture_output=True, check=True
    ).stdout.splitlines()
    with tarfile.open(gz.path) as reference:
        expected = [(m.name + "/" if m.isdir() else m.name).encode() for m in reference.getmembers()]
    assert listed == expected
    check = subprocess.run(["zstd", "-t", str(layer.path)], capture_output=True)
    assert check.returncode == 0, check.stderr


def test_toc_points_at_each_file_frame(tmp_path):
    entries = sample_entries()
    _, blob, ann = chunked(entries, Store(tmp_path))
    toc = cs.read_toc(blob, ann)
    assert toc["version"] == 1
    by_name = {e["name"]: e for e in toc["entries"]}
    for entry in entries:
        if entry.kind.value == "file" and entry.data:
            meta = by_name[entry.path]
            assert meta["type"] == "reg" and meta["size"] == len(entry.data) and meta["mode"] == entry.mode
            assert meta["digest"] == "sha256:" + hashlib.sha256(entry.data).hexdigest()
            assert cs.file_content(blob, meta) == entry.data
            assert meta["modtime"] == "2023-11-14T22:13:20Z"
    assert by_name["app/empty"].get("digest") is None and "offset" not in by_name["app/empty"]
    assert by_name["app/random-link.bin"]["type"] == "hardlink"
    assert by_name["app/random-link.bin"]["linkName"] == "app/random.bin"
    assert by_name["app/current"] == {
        "type": "symlink", "name": "app/current", "linkName": "text.txt", "mode": 0o777,
        "modtime": "2023-11-14T22:13:20Z",
    }  # fmt: skip
    assert by_name["var/empty/"]["type"] == "dir" and by_name["var/empty/"]["mode"] == 0o700
    assert by_name["etc/.wh.gone"]["type"] == "reg"
    # Frames never overlap and come in tar order.
    spans = [(e["offset"], e["endOffset"]) for e in toc["entries"] if e.get("digest")]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_tar_split_rebuilds_the_exact_tar(tmp_path):
    store = Store(tmp_path)
    layer, blob, ann = chunked(sample_entries(), store)
    rebuilt = cs.rebuild_tar(blob, ann)
    assert "sha256:" + hashlib.sha256(rebuilt).hexdigest() == layer.diff_id


def test_crc64_matches_go_iso():
    crc = zc._Crc64()
    crc.update(b"12345")
    crc.update(b"6789")
    assert crc.digest() == bytes.fromhex("b90956c775a41001") == cs.crc64_go_iso(b"123456789")


# --- podman partial pulls ----------------------------------------------------------------------------------------


def _files(seed: int, count: int, size: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {f"model/lib/part{i:02d}.bin": rng.randbytes(size) for i in range(count)}


@pytest.mark.integration
@pytest.mark.skipif(not shutil.which("podman") or not shutil.which("docker-registry"), reason="needs podman, registry")
@pytest.mark.skipif(os.geteuid() != 0, reason="podman overlay storage as root")
def test_podman_partial_pull_fetches_only_new_files(tmp_path):
    from ocibuild.oci import ImageConfig, build_image
    from ocibuild.registry.push_image import push
    from scripts.count_proxy import CountingProxy
    from scripts.registry import start_registry

    store = Store(tmp_path / "store")
    shared = _files(1, 24, 64 << 10)  # incompressible: bytes fetched track the files fetched
    first_files = {**shared, "model/app/predict.py": b"print('v1')\n" * 50}
    second_files = {**shared, "model/app/predict.py": b"print('v2')\n" * 50, "model/app/extra.bin": b"x" * 4096}

    def image(files: dict[str, bytes], label: str):
        layer = write_layer([Entry.file(p, d) for p, d in files.items()], store, Compression.ZSTD_CHUNKED, 1)
        return build_image([layer], ImageConfig(cmd=["/bin/true"], labels={"v": label})), layer

    first, first_layer = image(first_files, "1")
    second, second_layer = image(second_files, "2")
    assert first_layer.digest != second_layer.digest

    with start_registry(tmp_path / "registry") as reg, CountingProxy(reg.host) as proxy:
        push(first, [f"{reg.host}/chunked/model:v1"], insecure_registries=[reg.host])
        push(second, [f"{reg.host}/chunked/model:v2"], insecure_registries=[reg.host])
        storage = partial_pull_storage()
        try:
            pulled = podman(storage, "pull", "--tls-verify=false", f"{proxy.host}/chunked/model:v1")
            assert pulled.returncode == 0, pulled.stderr
            first_bytes = proxy.downloaded
            proxy.reset()
            pulled = podman(storage, "pull", "--tls-verify=false", f"{proxy.host}/chunked/model:v2")
            assert pulled.returncode == 0, pulled.stderr
            second_bytes = proxy.downloaded

            # Every file of the second image has the right content in podman's store.
            mount = podman(storage, "image", "mount", f"{proxy.host}/chunked/model:v2")
            assert mount.returncode == 0, mount.stderr
            root = Path(mount.stdout.strip())
            for path, data in second_files.items():
                assert (root / path).read_bytes() == data, path
            podman(storage, "image", "unmount", "--all")
        finally:
            podman(storage, "rmi", "--all", "--force")
            shutil.rmtree(storage, ignore_errors=True)

    report = {"first": first_bytes, "second": second_bytes, "second_layer": second_layer.size}
    assert first_bytes >= first_layer.size * 0.9, report  # the first pull needs (nearly) everything
    assert second_bytes < second_layer.size * 0.2, report  # the second only the new and changed files
    print(json.dumps(report))


def test_cli_and_cache_key_know_zstd_chunked():
    from ocibuild.cli import make_parser
    from ocibuild.oci.layer import LayerRecipe

    args = make_parser().parse_args(["build", "some/cog.yaml", "--compression", "zstd:chunked"])
    assert Compression(args.compression) is Compression.ZSTD_CHUNKED
    recipe = LayerRecipe("key", lambda stack: [])
    assert recipe.cache_key(Compression.ZSTD_CHUNKED) != recipe.cache_key(Compression.ZSTD)
    assert Compression.from_media_type(Compression.ZSTD_CHUNKED.media_type) is Compression.ZSTD  # read as zstd
