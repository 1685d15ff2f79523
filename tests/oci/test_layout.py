"""OCI layouts and dual tarballs, checked by our strict rules and by independent tools (skopeo, umoci, runc)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
from pathlib import Path

import pytest

from ocibuild.oci import (
    Compression,
    Entry,
    ImageConfig,
    Platform,
    Store,
    build_image,
    build_index,
    read_layout,
    write_archive,
    write_layer,
    write_layout,
)
from ocibuild.oci.image import History
from ocibuild.oci.layout import LayoutError
from tests.helpers import require_tool, run, runc_run, umoci_unpack
from tests.oci.imagecheck import check_layout


def busybox_image(store: Store, compression: Compression = Compression.GZIP):
    """A tiny runnable image: static busybox, /bin/sh, and a file in a second layer."""
    busybox = Path(require_tool("busybox")).resolve()
    base = write_layer(
        [
            Entry.file_from("bin/busybox", busybox, 0o755),
            Entry.symlink("bin/sh", "busybox"),
            Entry.directory("tmp", 0o1777),
            Entry.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        ],
        store,
        compression,
        1_700_000_000,
    )
    app = write_layer(
        [Entry.file("app/hello.txt", b"hello from ocibuild\n"), Entry.hardlink("app/a-link", "app/hello.txt")],
        store,
        compression,
        1_700_000_000,
    )
    config = ImageConfig(env=["PATH=/bin"], cmd=["/bin/sh", "-c", "cat /app/a-link"], working_dir="/app")
    return build_image([base, app], config, history=[History("base"), History("app")], source_date_epoch=1_700_000_000)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def test_layout_passes_strict_checks_and_reads_back(tmp_path: Path, store: Store):
    image = busybox_image(store)
    layout = write_layout(tmp_path / "layout", image, ["latest", "v1"])
    configs = check_layout(layout)
    assert configs[0]["created"] == "2023-11-14T22:13:20Z"
    assert image.manifest["annotations"]["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    again = read_layout(layout, "v1")
    assert again.digest == image.digest and [lay.diff_id for lay in again.layers] == [
        lay.diff_id for lay in image.layers
    ]


def test_skopeo_umoci_and_runc_accept_the_layout(tmp_path: Path, store: Store):
    image = busybox_image(store)
    layout = write_layout(tmp_path / "layout", image, ["latest"])
    inspected = json.loads(run([require_tool("skopeo"), "inspect", f"oci:{layout}:latest"]).stdout)
    assert inspected["Digest"] == image.digest
    assert inspected["Layers"] == [lay.digest for lay in image.layers]
    rootfs = umoci_unpack(layout, "latest", tmp_path / "bundle")
    assert (rootfs / "app" / "a-link").read_text() == "hello from ocibuild\n"
    assert os.stat(rootfs / "tmp").st_mode & 0o7777 == 0o1777
    assert runc_run(tmp_path / "bundle", f"ocibuild-test-{os.getpid()}") == "hello from ocibuild\n"


def test_dual_tarball_is_a_docker_archive_and_an_oci_archive(tmp_path: Path, store: Store):
    image = busybox_image(store)
    tarball = write_archive(tmp_path / "image.tar", image, ["ocibuild/test:latest"])
    skopeo = require_tool("skopeo")
    docker = json.loads(run([skopeo, "inspect", f"docker-archive:{tarball}"]).stdout)
    oci = json.loads(run([skopeo, "inspect", f"oci-archive:{tarball}:ocibuild/test:latest"]).stdout)
    assert oci["Digest"] == image.digest
    assert oci["Layers"] == [lay.digest for lay in image.layers]
    assert docker["Layers"] == [lay.diff_id for lay in image.layers]  # docker-archive reports uncompressed ids
    # it is also a plain OCI layout once unpacked
    unpacked = tmp_path / "unpacked"
    shutil.unpack_archive(tarball, unpacked, "tar")
    check_layout(unpacked)


def test_zstd_and_uncompressed_layers_are_valid(tmp_path: Path, store: Store):
    for compression in (Compression.ZSTD, Compression.NONE):
        layout = write_layout(tmp_path / compression.value, busybox_image(store, compression), ["latest"])
        check_layout(layout)
        run([require_tool("skopeo"), "inspect", f"oci:{layout}:latest"])


def test_index_for_two_platforms(tmp_path: Path, store: Store):
    layer = write_layer([Entry.file("a", b"a")], store)
    images = [build_image([layer], ImageConfig(platform=Platform.parse(p))) for p in ("linux/amd64", "linux/arm64/v8")]
    index = build_index(images)
    layout = write_layout(tmp_path / "multi", index, ["latest"])
    assert len(check_layout(layout)) == 2
    raw = json.loads(run([require_tool("skopeo"), "inspect", "--raw", f"oci:{layout}:latest"]).stdout)
    assert [m["platform"] for m in raw["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]


def test_read_layout_refuses_corrupt_blobs(tmp_path: Path, store: Store):
    image = busybox_image(store)
    layout = write_layout(tmp_path / "layout", image, ["latest"])
    blob = layout / "blobs" / "sha256" / image.layers[1].digest.split(":")[1]
    blob.write_bytes(b"corrupt")  # a copy of its own: the store is untouched
    with pytest.raises(LayoutError, match="does not match"):
        read_layout(layout)
    with pytest.raises(LayoutError, match="not an OCI layout"):
        read_layout(tmp_path)


def test_rewriting_a_layout_replaces_it_whole(tmp_path: Path, store: Store):
    layout = tmp_path / "layout"
    first = write_layout(layout, busybox_image(store), ["latest"])
    layer = write_layer([Entry.file("x", b"other")], store)
    second = build_image([layer], ImageConfig())
    write_layout(first, second, ["latest"])
    assert read_layout(layout).digest == second.digest
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".layout")]


def test_a_folder_that_is_not_a_layout_is_refused_and_left_intact(tmp_path: Path, store: Store):
    folder = tmp_path / "project"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "notes.txt").write_text("my notes\n")
    before = sorted((p.relative_to(folder), p.read_bytes() if p.is_file() else None) for p in folder.rglob("*"))
    with pytest.raises(LayoutError, match=f"{folder}: not empty and not an OCI layout"):
        write_layout(folder, busybox_image(store), ["latest"])
    assert sorted((p.relative_to(folder), p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")) == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(LayoutError, match="exists and is not a directory"):
        write_layout(tmp_path / "file", busybox_image(store))
    assert (tmp_path / "file").read_text() == "x"


def test_an_empty_directory_is_written_into_and_keeps_its_mode(tmp_path: Path, store: Store):
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o751)
    empty.chmod(0o751)
    write_layout(empty, busybox_image(store), ["latest"])
    check_layout(empty)
    assert empty.stat().st_mode & 0o777 == 0o751


def test_rewriting_removes_only_the_old_images_blobs(tmp_path: Path, store: Store):
    layout = write_layout(tmp_path / "layout", busybox_image(store), ["latest"])
    stray = layout / "blobs" / "sha256" / ("0" * 64)
    stray.write_bytes(b"not ours")
    (layout / "README").write_text("kept\n")
    second = build_image([write_layer([Entry.file("x", b"other")], store)], ImageConfig())
    write_layout(layout, second, ["latest"])
    check_layout(layout)
    names = {p.name for p in (layout / "blobs" / "sha256").iterdir()}
    assert names == {d.split(":")[1] for d in (second.digest, second.config_digest, second.layers[0].digest)} | {
        "0" * 64
    }
    assert (layout / "README").read_text() == "kept\n"


def _write_many(layout: str, root: str, seed: int, rounds: int) -> None:
    store = Store(Path(root))
    images = [
        build_image([write_layer([Entry.file("f", f"{seed}-{i}".encode())], store)], ImageConfig()) for i in range(3)
    ]
    for i in range(rounds):
        write_layout(Path(layout), images[i % 3], ["latest"])


def test_concurrent_writers_into_one_layout_all_succeed(tmp_path: Path, store: Store):
    layout = tmp_path / "out"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_many, args=(str(layout), str(store.root), seed, 15)) for seed in range(3)]
    for worker in workers:
        worker.start()
    seen = set()
    while any(w.is_alive() for w in workers):
        if (layout / "index.json").exists():  # a reader always finds a complete index: empty, or one image
            seen.add(tuple(m["digest"] for m in json.loads((layout / "index.json").read_text())["manifests"]))
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    check_layout(layout)
    assert len(seen) > 1
    assert [p.name for p in layout.iterdir() if p.name.startswith(".")] == [".ocibuild-verified.json"]  # no temp files
    assert [p.name for p in (layout / "blobs" / "sha256").iterdir() if p.name.startswith(".")] == []
    assert len(list((layout / "blobs" / "sha256").iterdir())) == 3  # manifest, config, layer of the last write
    assert not [p for p in tmp_path.iterdir() if ".old." in p.name or p.name.startswith(".out")]


def test_an_edited_blob_of_an_earlier_layout_never_reaches_a_later_one(tmp_path: Path, store: Store):
    image = busybox_image(store)
    first = write_layout(tmp_path / "first", image, ["latest"])
    for blob in (first / "blobs" / "sha256").iterdir():
        assert blob.stat().st_nlink == 1  # a copy, not the store's inode
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.chmod(0o644)
        blob.write_bytes(bytes(data))
    for again in (tmp_path / "second", first):  # a new layout, and the edited one written again
        write_layout(again, image, ["latest"])
        for blob in (again / "blobs" / "sha256").iterdir():
            assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == f"sha256:{blob.name}", blob
        assert read_layout(again).digest == image.digest
    for layer in image.layers:
        assert "sha256:" + hashlib.sha256(store.blob_path(layer.digest).read_bytes()).hexdigest() == layer.digest


def test_a_rewrite_hashes_only_blobs_that_changed_since_they_last_verified(tmp_path: Path, store: Store):
    image = busybox_image(store)
    layout = write_layout(tmp_path / "out", image, ["latest"])
    layer = layout / "blobs" / "sha256" / image.layers[-1].digest.split(":", 1)[1]
    before = layer.stat()
    write_layout(layout, image, ["latest"])
    assert layer.stat().st_ino == before.st_ino, "an unchanged blob is kept, not copied again"

    data = bytearray(layer.read_bytes())  # same size, same mtime: only the ctime tells
    data[-100] ^= 0xFF
    layer.write_bytes(bytes(data))
    os.utime(layer, ns=(before.st_atime_ns, before.st_mtime_ns))
    write_layout(layout, image, ["latest"])
    assert "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest() == image.layers[-1].digest
