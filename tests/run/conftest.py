"""Fixtures for the run tests: a private store and small busybox images built with the OCI API."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from ocibuild.oci import Compression, Entry, ImageConfig, LayerBlob, Store, build_image, write_layer
from ocibuild.oci.image import Image

BUSYBOX = Path("/bin/busybox")
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1001:\nstaff:x:50:\n"


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in ("runc", "unshare", "nsenter", "slirp4netns"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; run scripts/install_test_tools.sh")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def busybox_entries() -> list[Entry]:
    return [
        Entry.file_from("bin/busybox", BUSYBOX, 0o755),
        Entry.symlink("bin/sh", "busybox"),
        Entry.file("etc/passwd", PASSWD.encode()),
        Entry.file("etc/group", GROUP.encode()),
        Entry.directory("tmp", 0o1777),
        Entry.directory("root", 0o700),
    ]


@pytest.fixture
def base_layer(store: Store) -> LayerBlob:
    return write_layer(busybox_entries(), store, Compression.GZIP)


def image_of(layers: Sequence[LayerBlob], **config: object) -> Image:
    env = config.pop("env", ["PATH=/bin"])
    return build_image(list(layers), ImageConfig(env=env, **config))  # type: ignore[arg-type]


def raw_layer(store: Store, members: Sequence[tuple[tarfile.TarInfo, bytes | None]]) -> LayerBlob:
    """A layer from hand-made tar members (for malicious or unusual tars the entry API refuses to write)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    blob = buffer.getvalue()
    digest = store.put_bytes(blob)
    diff_id = "sha256:" + hashlib.sha256(blob).hexdigest()
    return LayerBlob(diff_id, digest, len(blob), Compression.NONE.media_type, store.blob_path(digest), len(blob))


def member(
    name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, link: str = "", **attrs: int
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = link
    info.mtime = 1_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info
