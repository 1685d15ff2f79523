"""OCI layouts and dual tarballs, checked by our strict rules and by independent tools (skopeo, umoci, runc)."""

from __future__ import annotations

import json
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
    blob.unlink()  # it is a hardlink into the store: replace, never modify in place
    blob.write_bytes(b"corrupt")
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
