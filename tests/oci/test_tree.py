"""Trees of any depth are walked, packed and removed without recursion; a leftover deep tree never breaks the store."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.oci import Store
from ocibuild.oci.entries import EntryKind, entries_from_tree
from ocibuild.oci.tree import iter_tree, remove_tree, tree_size

DEPTH = 1200
"""Deeper than Python's default recursion limit (1000), as a build command's ``mkdir -p`` may go."""


@pytest.fixture(autouse=True)
def remove_deep_trees(tmp_path: Path) -> Iterator[None]:
    """Leave no deep tree behind, even on failure: pytest's own cleanup of old temp dirs recurses."""
    yield
    for child in tmp_path.iterdir():
        remove_tree(child)


def make_deep_tree(top: Path, depth: int = DEPTH) -> Path:
    """``top/d/d/.../d`` ``depth`` levels down with a file ``f`` at the bottom; returns the deepest directory."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", 0o755, dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            f.write(b"bottom\n")
    finally:
        os.close(fd)
    return top.joinpath(*["d"] * depth)


def test_the_depth_exceeds_the_recursion_limit() -> None:
    assert sys.getrecursionlimit() < DEPTH


def test_a_deep_tree_is_walked_sized_and_removed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("not ocibuild's\n")
    top = tmp_path / "deep"
    bottom = make_deep_tree(top)
    (bottom / "out").symlink_to(outside)  # removed as a link, never followed
    os.chmod(bottom, 0o500)  # read-only directories are made writable to be emptied
    paths = [path for path, _ in iter_tree(top)]
    assert len(paths) == DEPTH + 2
    assert tree_size(top) == DEPTH * os.lstat(top / "d").st_size + len("bottom\n")
    remove_tree(top)
    assert not top.exists()
    assert (outside / "keep").read_text() == "not ocibuild's\n"
    remove_tree(top)  # absent: nothing to do


def test_a_deep_tree_becomes_layer_entries_in_order(tmp_path: Path) -> None:
    make_deep_tree(tmp_path / "src")
    entries = list(entries_from_tree(tmp_path / "src", "app"))
    assert [e.kind for e in entries] == [EntryKind.DIR] * DEPTH + [EntryKind.FILE]
    assert entries[-1].path == "app/" + "d/" * DEPTH + "f"
    assert [e.path for e in entries] == sorted(e.path for e in entries)


def test_a_deep_tree_left_in_tmp_never_breaks_a_later_command(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root)
    make_deep_tree(root / "tmp" / "run-killed")  # a build.run killed mid-way
    store = Store(root)  # the next command: no other user, so it cleans tmp/
    assert os.listdir(root / "tmp") == []
    make_deep_tree(root / "rootfs" / "abc")
    assert store.prune() > 0
    assert not (root / "rootfs" / "abc").exists()


def test_tree_size_counts_what_removal_really_frees(tmp_path: Path) -> None:
    top = tmp_path / "top"
    top.mkdir()
    (top / "own").write_bytes(b"x" * 1000)
    (top / "twice-a").write_bytes(b"y" * 300)
    os.link(top / "twice-a", top / "twice-b")  # two names below top: freed once
    (top / "kept").write_bytes(b"z" * 5000)
    os.link(top / "kept", tmp_path / "outside")  # a name outside keeps it: nothing freed
    assert tree_size(top) == 1000 + 300  # (top itself is not below top)
