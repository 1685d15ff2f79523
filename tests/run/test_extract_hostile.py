"""A hostile layer stack never changes anything outside the rootfs: links swapped in for directories, files and
their parents are never followed when modes, times, owners or contents are applied; sparse bombs are refused."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocibuild.errors import BuildError
from ocibuild.oci import Compression, LayerBlob, Store
from ocibuild.run.extract import rootfs_for
from tests.run.conftest import member, raw_layer

PATHS = ["d", "d/e", "d/e/f", "x", "x/y"]
"""Image paths of the generated members; the host sentinel tree holds the same names, so a followed link lands."""
KINDS = ["dir"] * 3 + ["symlink"] * 3 + ["file"] * 2 + ["hardlink", "whiteout", "opaque"]
"""Weighted towards the dangerous pattern: a directory, then a link in its place (or in its parent's)."""


def make_sentinel(top: Path) -> Path:
    """A host tree that must stay as it is: directories and files under every name the layers use."""
    host = top / "host"
    for rel in ("d/e/f", "x/y"):
        (host / rel).mkdir(parents=True)
    for rel in ("d/file", "d/e/file", "x/y/file", "file"):
        (host / rel).write_text("host data\n")
    for path in [host, *host.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.utime(path, (1_000, 1_000))
    return host


def snapshot(top: Path) -> dict[str, tuple]:
    """Type, mode, owner, mtime and content (or link target) of ``top`` and everything below it."""
    found = {}
    for path in [top, *top.rglob("*")]:
        st_ = os.lstat(path)
        if stat.S_ISREG(st_.st_mode):
            body: object = path.read_bytes()
        elif stat.S_ISLNK(st_.st_mode):
            body = os.readlink(path)
        else:
            body = sorted(os.listdir(path))
        found[str(path)] = (st_.st_mode, st_.st_uid, st_.st_gid, st_.st_mtime_ns, st_.st_nlink, body)
    return found


HOST = "{host}"
"""Stands for the sentinel's absolute path in generated link targets (it differs per example)."""
TARGETS = [
    *(f"{HOST}/{rel}".rstrip("/") for rel in ("", "d", "d/e", "x", "x/y", "file", "d/file")),
    "../" * 12 + HOST,
    "/",
    "d",
    "x/y",
    ".",
]
"""Symlink targets: host paths (absolute, so the kernel follows them out of the root unless the extractor
never follows a link), climbs out of the root (refused) and paths inside the image."""


@st.composite
def members(draw: st.DrawFn) -> tuple[tarfile.TarInfo, bytes | None]:
    kind = draw(st.sampled_from(KINDS))
    path = draw(st.sampled_from(PATHS))
    mode = draw(st.sampled_from([0o7777, 0o4755, 0o000, 0o700, 0o1777, 0o644]))
    mtime = draw(st.integers(0, 2**31 - 1))
    if kind == "dir":
        return member(path, tarfile.DIRTYPE, mode=mode, mtime=mtime), None
    if kind == "file":
        return member(path, mode=mode, mtime=mtime), b"hostile\n"
    if kind == "symlink":
        return member(path, tarfile.SYMTYPE, link=draw(st.sampled_from(TARGETS)), mtime=mtime), None
    if kind == "hardlink":
        link = draw(st.sampled_from([*PATHS, "d/file", "x/y/file"]))
        return member(path, tarfile.LNKTYPE, link=link, mode=mode, mtime=mtime), None
    parent, _, name = path.rpartition("/")
    marker = ".wh..wh..opq" if kind == "opaque" else f".wh.{name}"
    target = f"{path}/{marker}" if kind == "opaque" else (f"{parent}/{marker}" if parent else marker)
    return member(target), b""


def extract_checked(layers_members: list[list[tuple[tarfile.TarInfo, bytes | None]]]) -> None:
    """Extract the stack into a fresh store; assert the host sentinel (and the store's parent) did not change."""
    with tempfile.TemporaryDirectory() as top_name:
        top = Path(top_name)
        host = make_sentinel(top)
        before = snapshot(host)
        store = Store(top / "store")
        for layer in layers_members:
            for info, _ in layer:
                inside = str(host) if info.linkname.startswith(HOST) else str(host).lstrip("/")
                info.linkname = info.linkname.replace(HOST, inside)
        layers = [raw_layer(store, layer) for layer in layers_members]
        with contextlib.suppress(BuildError):  # refusing a hostile layer is fine; changing the host is not
            rootfs_for(layers, store)
        assert snapshot(host) == before
        assert sorted(os.listdir(top)) == ["host", "store"]


def test_a_directory_replaced_by_a_symlink_keeps_the_host_path_unchanged() -> None:
    extract_checked(
        [
            [
                (member("d", tarfile.DIRTYPE, mode=0o7777, mtime=5), None),
                (member("d/e", tarfile.DIRTYPE, mode=0o4777, mtime=5), None),
                (member("d", tarfile.SYMTYPE, link=f"{HOST}/d"), None),
                (member("x", tarfile.DIRTYPE, mode=0o7777, mtime=5), None),
                (member("x", tarfile.SYMTYPE, link=f"{HOST}/file"), None),
            ]
        ]
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(members(), max_size=8), min_size=1, max_size=3))
def test_no_layer_sequence_changes_anything_outside_the_root(layers: list) -> None:
    extract_checked(layers)


def sparse_layer(store: Store, name: str, real_size: int) -> LayerBlob:
    """A layer holding one old-GNU sparse member: 1 stored byte at the end of a ``real_size`` file of holes."""
    info = member(name)
    info.size = 1
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[156:157] = tarfile.GNUTYPE_SPARSE
    header[386:398] = tarfile.itn(real_size - 1, 12, tarfile.GNU_FORMAT)  # the one (offset, numbytes) pair
    header[398:410] = tarfile.itn(1, 12, tarfile.GNU_FORMAT)
    header[482] = 0  # no extended sparse headers
    header[483:495] = tarfile.itn(real_size, 12, tarfile.GNU_FORMAT)
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header[:512])
    blob = bytes(header[:512]) + b"x".ljust(512, b"\0") + b"\0" * 1024
    digest = store.put_bytes(blob)
    diff_id = "sha256:" + hashlib.sha256(blob).hexdigest()
    return LayerBlob(diff_id, digest, len(blob), Compression.NONE.media_type, store.blob_path(digest), len(blob))


def test_a_sparse_member_larger_than_the_free_space_is_refused_before_it_is_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    small = sparse_layer(store, "small", 8192)
    assert (rootfs_for([small], store) / "small").read_bytes() == b"\0" * 8191 + b"x", "sparse files still work"
    bomb = sparse_layer(store, "bomb", 1 << 50)
    with pytest.raises(BuildError, match=r"'bomb': sparse file of 1125899906842624 bytes does not fit in the \d+ "):
        rootfs_for([bomb], store)
    assert not [p for p in (store.root / "rootfs").iterdir() if p.name.startswith(".tmp-")], "no partial rootfs"
