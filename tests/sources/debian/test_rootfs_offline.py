"""Unpacking .debs and the rootfs fixups, on small hand-made packages (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocibuild.errors import BuildError
from ocibuild.oci.entries import EntryKind
from ocibuild.oci.layer import write_layer
from ocibuild.oci.store import Store
from ocibuild.sources.debian import fixups as rootfs_fixups
from ocibuild.sources.debian.alternatives import apply_alternatives, parse_postinst
from ocibuild.sources.debian.tree import RootTree
from ocibuild.sources.debian.unpack import read_deb

from .conftest import make_deb

CONTROL = "Package: {name}\nVersion: 1\nArchitecture: amd64\nMaintainer: x <x@example.org>\nDescription: test\n"
CERT = "-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def _tree(tmp_path: Path, *debs: tuple[str, list, str]) -> tuple[RootTree, list]:
    tree, contents = RootTree(), []
    for name, data, postinst in debs:
        c = read_deb(make_deb(tmp_path / f"{name}.deb", CONTROL.format(name=name), data, postinst))
        tree.add_package(c)
        contents.append(c)
    return tree, contents


def test_old_layout_paths_move_under_usr_and_modes_are_kept(tmp_path: Path) -> None:
    tree, _ = _tree(
        tmp_path,
        (
            "libc",
            [
                ("./", "dir", 0o755, ""),
                ("./bin/", "dir", 0o755, ""),
                ("./bin/su", "file", 0o4755, "x"),
                ("./lib64/ld-linux-x86-64.so.2", "symlink", 0o777, "/lib/x86_64-linux-gnu/ld.so"),
                ("./usr/bin/hard", "hardlink", 0o4755, "./bin/su"),
            ],
            "",
        ),
    )
    assert tree.get("usr/bin/su").mode == 0o4755
    assert tree.get("usr/lib64/ld-linux-x86-64.so.2").link == "/lib/x86_64-linux-gnu/ld.so"
    assert tree.get("usr/bin/hard").kind is EntryKind.HARDLINK and tree.get("usr/bin/hard").link == "usr/bin/su"
    assert "bin/su" not in tree.entries


def test_paths_through_package_symlinks_resolve_inside_the_tree(tmp_path: Path) -> None:
    tree, _ = _tree(
        tmp_path,
        ("a", [("./usr/lib/ssl/certs", "symlink", 0o777, "/etc/ssl/certs")], ""),
        ("b", [("./usr/lib/ssl/certs/x.pem", "file", 0o644, "pem")], ""),
    )
    assert tree.get("etc/ssl/certs/x.pem").data == b"pem"


def test_escaping_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="leaves the root"):
        _tree(tmp_path, ("evil", [("./../etc/passwd", "file", 0o644, "x")], ""))


def test_fixups_make_a_usable_skeleton(tmp_path: Path) -> None:
    tree, contents = _tree(
        tmp_path,
        (
            "ca-certificates",
            [
                ("./usr/share/ca-certificates/mozilla/B.crt", "file", 0o644, CERT.format(body="B")),
                ("./usr/share/ca-certificates/mozilla/A.crt", "file", 0o644, CERT.format(body="A")),
            ],
            "",
        ),
    )
    extra = tmp_path / "corp.pem"
    extra.write_text(CERT.format(body="CORP"))
    rootfs_fixups.merged_usr(tree, "amd64")
    rootfs_fixups.skeleton(tree)
    rootfs_fixups.ca_bundle(tree, [extra])
    rootfs_fixups.python_links(tree, "python3.11")
    rootfs_fixups.dpkg_database(tree, contents)
    bundle = tree.get("etc/ssl/certs/ca-certificates.crt").data.decode()
    assert bundle.index("A\n") < bundle.index("B\n") < bundle.index("CORP")
    assert tree.get("tmp").mode == 0o1777 and tree.get("root").mode == 0o700
    assert tree.get("lib64").link == "usr/lib64" and tree.get("bin").link == "usr/bin"
    assert tree.get("usr/bin/python3").link == "python3.11" and tree.get("usr/bin/python").link == "python3"
    assert b"nobody:x:65534" in tree.get("etc/passwd").data and b"root:x:0:" in tree.get("etc/group").data
    status = tree.get("var/lib/dpkg/status").data.decode()
    assert "Package: ca-certificates\nStatus: install ok installed\n" in status
    listing = tree.get("var/lib/dpkg/info/ca-certificates.list").data.decode()
    assert "/usr/share/ca-certificates/mozilla/A.crt" in listing


def test_fixups_never_replace_package_files(tmp_path: Path) -> None:
    tree, _ = _tree(tmp_path, ("base", [("./etc/passwd", "file", 0o644, "mine\n")], ""))
    rootfs_fixups.skeleton(tree)
    assert tree.get("etc/passwd").data == b"mine\n"


def test_a_bad_extra_ca_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a cert")
    with pytest.raises(BuildError, match="not a PEM certificate"):
        rootfs_fixups.ca_bundle(RootTree(), [bad])


POSTINST_MAWK = """#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\
            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz
fi
"""
POSTINST_GAWK = "update-alternatives --install /usr/bin/awk awk /usr/bin/gawk 10\n"
POSTINST_VAR = 'update-alternatives --install /usr/bin/x x "$DIR/x" 10\n'


def test_alternatives_follow_the_highest_priority(tmp_path: Path) -> None:
    assert parse_postinst(POSTINST_VAR.encode()) == []
    tree, _ = _tree(
        tmp_path,
        ("mawk", [("./usr/bin/mawk", "file", 0o755, "m")], POSTINST_MAWK),
        ("gawk", [("./usr/bin/gawk", "file", 0o755, "g")], POSTINST_GAWK),
    )
    added = apply_alternatives(tree, [("mawk", POSTINST_MAWK.encode()), ("gawk", POSTINST_GAWK.encode())])
    assert tree.get("usr/bin/awk").link == "/etc/alternatives/awk"
    assert tree.get("etc/alternatives/awk").link == "/usr/bin/gawk"
    assert added == {"gawk": ["usr/bin/awk", "etc/alternatives/awk"]}


def test_tree_layers_are_deterministic(tmp_path: Path) -> None:
    def build(store_dir: Path) -> str:
        tree, contents = _tree(tmp_path, ("pkg", [("./usr/bin/tool", "file", 0o755, "t")], ""))
        rootfs_fixups.skeleton(tree)
        rootfs_fixups.dpkg_database(tree, contents)
        return write_layer(list(tree), Store(store_dir), source_date_epoch=0).digest

    assert build(tmp_path / "s1") == build(tmp_path / "s2")
