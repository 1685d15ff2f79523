"""Locked .debs -> an in-memory rootfs with every fixup applied, ready to become layer entries."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ocibuild.oci.store import Store
from ocibuild.sources.debian import fixups as rootfs_fixups
from ocibuild.sources.debian.alternatives import apply_alternatives
from ocibuild.sources.debian.fetch import fetch_deb
from ocibuild.sources.debian.lock import LockedPackage
from ocibuild.sources.debian.tree import RootTree
from ocibuild.sources.debian.unpack import DebContents, read_deb


def _workers() -> int:
    return max(4, 2 * (os.cpu_count() or 1))


def unpack_packages(packages: Sequence[LockedPackage], store: Store, tree: RootTree) -> list[DebContents]:
    """Download (in parallel), verify and decompress ``packages``, adding them to ``tree`` in lock order."""
    result = []
    with ThreadPoolExecutor(_workers()) as pool:
        for contents in pool.map(lambda pkg: read_deb(fetch_deb(store, pkg)), packages):
            tree.add_package(contents)
            result.append(contents)
    return result


def build_rootfs(
    packages: Sequence[LockedPackage],
    store: Store,
    arch: str,
    *,
    python_link: str = "",
    extra_ca_certs: Sequence[Path] = (),
    ld_cache: bool = True,
) -> tuple[RootTree, list[DebContents], dict[str, list[str]]]:
    """The rootfs of ``packages`` with every fixup, each package's contents (in ``packages`` order), and the
    alternatives links made for each package (by name)."""
    tree = RootTree()
    contents = unpack_packages(packages, store, tree)
    alternatives = apply_alternatives(
        tree, [(p.name, c.postinst) for p, c in zip(packages, contents, strict=True) if c.postinst]
    )
    rootfs_fixups.merged_usr(tree, arch)
    rootfs_fixups.skeleton(tree)
    rootfs_fixups.ca_bundle(tree, extra_ca_certs)
    if python_link:
        rootfs_fixups.python_links(tree, python_link)
    rootfs_fixups.dpkg_database(tree, contents)
    if ld_cache:
        rootfs_fixups.ld_cache(tree, store.root / "tmp")
    return tree, contents, alternatives
