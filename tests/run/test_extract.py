"""The layer extractor: whiteouts, opaque directories, links, modes, owners, refusals and the rootfs cache."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from ocibuild.errors import BuildError
from ocibuild.oci import Compression, Entry, Store, write_layer
from ocibuild.run.extract import chain_ids, rootfs_for
from tests.run.conftest import member, raw_layer


def test_layers_stack_with_whiteouts_opaque_dirs_and_links(store: Store) -> None:
    lower = write_layer(
        [
            Entry.file("etc/keep", b"keep"),
            Entry.file("etc/junk", b"junk"),
            Entry.file("opt/a", b"a"),
            Entry.file("opt/sub/b", b"b"),
            Entry.file("usr/bin/tool", b"#!/bin/sh\n", 0o4755),
            Entry.hardlink("usr/bin/tool-link", "usr/bin/tool", 0o4755),
            Entry.symlink("lib", "usr/lib"),
            Entry.directory("usr/lib"),
        ],
        store,
        Compression.ZSTD,
    )
    upper = write_layer(
        [
            Entry.whiteout("etc/junk"),
            Entry.opaque("opt"),
            Entry.file("opt/c", b"c"),
            Entry.file("etc/keep", b"changed", 0o600),
        ],
        store,
    )
    root = rootfs_for([lower, upper], store)
    assert (root / "etc/keep").read_bytes() == b"changed"
    assert stat.S_IMODE((root / "etc/keep").stat().st_mode) == 0o600
    assert not (root / "etc/junk").exists() and not (root / "etc/.wh.junk").exists()
    assert sorted(os.listdir(root / "opt")) == ["c"]
    tool = root / "usr/bin/tool"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o4755, "setuid bit kept"
    assert tool.stat().st_ino == (root / "usr/bin/tool-link").stat().st_ino
    assert os.readlink(root / "lib") == "usr/lib"
    assert root.name == chain_ids([lower.diff_id, upper.diff_id])[-1].split(":")[1]
    assert rootfs_for([lower, upper], store) == root, "cached"


def test_whiteout_never_applies_to_its_own_layer(store: Store) -> None:
    layer = raw_layer(store, [(member("a/file"), b"x"), (member("a/.wh.file"), b""), (member("a/.wh..wh..opq"), b"")])
    root = rootfs_for([layer], store)
    assert (root / "a/file").read_bytes() == b"x"


def test_entries_through_symlinks_stay_inside_the_root(store: Store, tmp_path: Path) -> None:
    layer = raw_layer(
        store,
        [
            (member("etc", tarfile.SYMTYPE, link=str(tmp_path)), None),
            (member("etc/planted"), b"inside"),
            (member("usr/lib", tarfile.DIRTYPE, mode=0o755), None),
            (member("lib", tarfile.SYMTYPE, link="usr/lib"), None),
            (member("lib/libx.so"), b"lib"),
        ],
    )
    root = rootfs_for([layer], store)
    assert not (tmp_path / "planted").exists()
    assert (root / tmp_path.relative_to("/") / "planted").read_bytes() == b"inside"
    assert (root / "usr/lib/libx.so").read_bytes() == b"lib"


@pytest.mark.parametrize(
    ("members", "words"),
    [
        ([(member("../evil"), b"x")], "escapes the root"),
        ([(member("a/../../evil"), b"x")], "escapes the root"),
        ([(member("up", tarfile.SYMTYPE, link="../../.."), None), (member("up/evil"), b"x")], "escapes the root"),
        ([(member("link", tarfile.LNKTYPE, link="../etc/passwd"), None)], "escapes the root"),
        ([(member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3), None)], "device nodes"),
        ([(member("fifo", tarfile.FIFOTYPE), None)], "device nodes"),
        ([(member(".wh..."), b"")], "malformed whiteout"),
        ([(member("etc/.wh.."), b"")], "malformed whiteout"),
    ],
)
def test_malicious_or_unsupported_members_are_refused(store: Store, members: list, words: str) -> None:
    layer = raw_layer(store, members)
    with pytest.raises(BuildError, match=words):
        rootfs_for([layer], store)
    assert [p.name for p in (store.root / "rootfs").iterdir()] == [], "no partial rootfs left"


def test_owners_are_applied_as_root(store: Store) -> None:
    layer = raw_layer(store, [(member("home/app/file", uid=1000, gid=1001, mode=0o2750), b"x")])
    st = (rootfs_for([layer], store) / "home/app/file").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o2750)


def test_a_blob_not_matching_its_diff_id_is_refused(store: Store) -> None:
    good = raw_layer(store, [(member("f"), b"x")])
    forged = type(good)("sha256:" + "0" * 64, good.digest, good.size, good.media_type, good.path)
    with pytest.raises(BuildError, match="does not match its diff_id"):
        rootfs_for([forged], store)


def test_a_longer_stack_starts_from_the_cached_prefix(store: Store) -> None:
    first = write_layer([Entry.file("a", b"1")], store)
    second = write_layer([Entry.file("b", b"2")], store)
    base = rootfs_for([first], store)
    (base / "marker").write_text("seeded")  # proves the copy, not a fresh unpack
    root = rootfs_for([first, second], store)
    assert sorted(os.listdir(root)) == ["a", "b", "marker"]


@pytest.mark.skipif(os.geteuid() != 0, reason="xattrs are applied only when running as root")
def test_xattrs_are_applied_to_files_and_directories(store: Store) -> None:
    xattr = {"SCHILY.xattr.user.origin": "layer"}
    layer = raw_layer(
        store,
        [
            (member("dir", tarfile.DIRTYPE, mode=0o755, pax_headers=xattr), None),  # type: ignore[arg-type]
            (member("dir/file", pax_headers=xattr), b"x"),  # type: ignore[arg-type]
        ],
    )
    root = rootfs_for([layer], store)
    assert os.getxattr(root / "dir", "user.origin") == b"layer"
    assert os.getxattr(root / "dir/file", "user.origin") == b"layer"
