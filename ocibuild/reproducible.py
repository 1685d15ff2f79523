"""``--verify-reproducible``: build again in a fresh cache and name the first difference."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ocibuild.errors import BuildError
from ocibuild.oci.compression import Compression, open_decompressor
from ocibuild.oci.image import Image, Index
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.store import Store
from ocibuild.oci.tree import remove_tree

# What an offline second build may take from the first store: downloads, each checked against the lock's sha256.
DOWNLOADS = ("debs", "wheels")


def verify_reproducible(cog_yaml: Path, options, first) -> None:
    """Rebuild with an empty temporary store; raise BuildError naming the first differing layer and file.

    The temporary store lies in the store's ``tmp/`` (same filesystem; removed by the next build if killed).
    With ``--offline`` it starts with the first store's downloads (.debs, wheels), never its layers or keys.
    """
    from ocibuild.cog.build import build_project

    tmp = Path(tempfile.mkdtemp(prefix="ocibuild-verify-", dir=options.store.root / "tmp"))
    try:  # not TemporaryDirectory: its recursive cleanup fails on a deep build.run tree
        if options.offline:
            _link_downloads(options.store.root, tmp)
        # Never from a shared cache: the second build makes every layer, so it checks the cache's claims too.
        second_options = dataclasses.replace(options, store=Store(tmp), update_lock=False, layer_cache=None)
        second = build_project(cog_yaml, second_options)
        if second.digest != first.digest:  # described before the second build's blobs are removed
            raise BuildError(describe_difference(first.target, second.target))
    finally:
        remove_tree(tmp, ignore_errors=True)
    options.reporter.step(f"reproducible: a fresh build gave the same digest {first.digest}")


def _link_downloads(src: Path, dest: Path) -> None:
    for part in DOWNLOADS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part, copy_function=_link_or_copy)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _images(target: Image | Index) -> list[Image]:
    return [target] if isinstance(target, Image) else list(target.images)


def describe_difference(a: Image | Index, b: Image | Index) -> str:
    """One line naming the first differing layer (and file inside it), or the config."""
    for image_a, image_b in zip(_images(a), _images(b), strict=False):
        for index, (la, lb) in enumerate(zip(image_a.layers, image_b.layers, strict=False)):
            if la.diff_id != lb.diff_id:
                return f"not reproducible: layer {index} differs ({first_differing_file(la, lb)})"
            if la.digest != lb.digest:
                return f"not reproducible: layer {index} has the same content but other compressed bytes"
        if len(image_a.layers) != len(image_b.layers):
            return f"not reproducible: {len(image_a.layers)} layers, then {len(image_b.layers)}"
        if image_a.config_bytes != image_b.config_bytes:
            return "not reproducible: the image config differs (labels, env or history)"
    return "not reproducible: the manifests differ (annotations)"


def _members(layer: LayerBlob) -> dict[str, tuple]:
    """Each member's metadata and content digest (contents are streamed, never held whole)."""
    out: dict[str, tuple] = {}
    with (
        open(layer.path, "rb") as f,
        tarfile.open(fileobj=open_decompressor(Compression.from_media_type(layer.media_type), f), mode="r|") as tar,
    ):
        for member in tar:
            content = hashlib.sha256()
            if member.isreg():
                data = tar.extractfile(member)
                while chunk := data.read(1 << 20):
                    content.update(chunk)
            out[member.name] = (
                member.type,
                member.mode,
                member.mtime,
                member.uid,
                member.gid,
                member.uname,
                member.gname,
                member.linkname,
                member.size,
                tuple(sorted(member.pax_headers.items())),
                content.hexdigest(),
            )
    return out


def first_differing_file(a: LayerBlob, b: LayerBlob) -> str:
    members_a, members_b = _members(a), _members(b)
    for name in sorted(set(members_a) | set(members_b)):
        if members_a.get(name) != members_b.get(name):
            return f"first differing file: /{name}"
    return "same files, different tar bytes"
