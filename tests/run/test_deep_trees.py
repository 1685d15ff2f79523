"""A build.run command may make a tree deeper than Python's recursion limit: it becomes a layer like any other,
unpacks, and leaves nothing in the store that breaks a later command."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.oci import Compression, EntryKind, LayerBlob, Store
from ocibuild.oci.tree import remove_tree
from ocibuild.run import run_build_commands
from ocibuild.run.diff import diff_rootfs
from ocibuild.run.extract import rootfs_for
from tests.oci.test_tree import DEPTH, make_deep_tree
from tests.run.test_buildrun import members


@pytest.fixture(autouse=True)
def remove_deep_trees(tmp_path: Path) -> Iterator[None]:
    """Leave no deep tree behind, even on failure: pytest's own cleanup of old temp dirs recurses."""
    yield
    for child in tmp_path.iterdir():
        remove_tree(child)


def test_a_deep_tree_is_diffed_without_recursion(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    make_deep_tree(before / "gone")
    make_deep_tree(after / "new")
    (after / "run").mkdir()  # a mount point the runtime made, with something real deep below it
    make_deep_tree(after / "run" / "x", 50)
    entries = diff_rootfs(before, after, ignore={"run"})
    paths = [e.path for e in entries]
    assert paths[0] == "gone" and entries[0].kind is EntryKind.WHITEOUT
    chain = ["new", *("new/" + "/".join(["d"] * n) for n in range(1, DEPTH + 1)), "new/" + "d/" * DEPTH + "f"]
    assert paths[1 : DEPTH + 3] == chain
    assert paths[DEPTH + 3] == "run", "the mount point is kept: something was written below it"
    assert paths[-1] == "run/x/" + "d/" * 50 + "f"
    assert diff_rootfs(before, before) == []


def test_a_build_run_command_making_a_1200_deep_tree(store: Store, base_layer: LayerBlob) -> None:
    script = f"mkdir /deep && cd /deep && i=0 && while [ $i -lt {DEPTH} ]; do mkdir d && cd d; i=$((i+1)); done"
    [layer] = run_build_commands([base_layer], [script + " && echo bottom > f"], {}, store, 0, Compression.GZIP,
                                 env=["PATH=/bin"])  # fmt: skip
    names = members(layer)
    assert "deep/" + "d/" * DEPTH + "f" in names
    assert len([n for n in names if n.startswith("deep")]) == DEPTH + 2
    root = rootfs_for([base_layer, layer], store)
    assert (root / "deep").joinpath(*["d"] * DEPTH, "f").read_text() == "bottom\n"
    assert os.listdir(store.root / "tmp") == [], "no tmp/run-* left"
    later = Store(store.root)  # every later command on this cache still works, prune included
    assert later.prune() > 0
    assert not (store.root / "rootfs").exists() or os.listdir(store.root / "rootfs") == []
