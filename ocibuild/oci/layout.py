"""The OCI image layout directory: write one (atomically) and read one back, verifying every digest."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ocibuild.oci.canonical import canonical_json
from ocibuild.oci.descriptor import Descriptor
from ocibuild.oci.digest import HashingWriter, digest_hex, sha256_digest
from ocibuild.oci.image import REF_NAME_ANNOTATION, BlobSource, Image, Index
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.mediatypes import INDEX_TYPES, MANIFEST_TYPES, ImageFormat

LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


class LayoutError(ValueError):
    """A layout that is missing, malformed or whose blobs do not match their digests."""


def write_layout(directory: Path, target: Image | Index, ref_names: list[str] | None = None) -> Path:
    """Write ``target`` as an OCI layout at ``directory``, replacing what was there only once complete.

    ``ref_names`` become ``org.opencontainers.image.ref.name`` annotations (one index.json entry each).
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise LayoutError(f"{directory}: output exists and is not a directory")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        blobs_dir = staging / "blobs" / "sha256"
        blobs_dir.mkdir(parents=True)
        own_bytes = target.manifest_bytes if isinstance(target, Image) else target.index_bytes
        for digest, source in iter_blob_sources(target):
            _place_blob(blobs_dir / digest_hex(digest), source)
        descriptor = Descriptor(target.media_type, target.digest, len(own_bytes))
        platform = target.platform if isinstance(target, Image) else None
        entries = [
            Descriptor(
                descriptor.media_type,
                descriptor.digest,
                descriptor.size,
                {REF_NAME_ANNOTATION: ref},
                platform,
            )
            for ref in (ref_names or [None])
            if ref
        ] or [Descriptor(descriptor.media_type, descriptor.digest, descriptor.size, platform=platform)]
        index = {
            "schemaVersion": 2,
            "mediaType": ImageFormat.OCI.index,
            "manifests": [entry.to_dict() for entry in entries],
        }
        (staging / "index.json").write_bytes(canonical_json(index))
        (staging / "oci-layout").write_bytes(LAYOUT_FILE)
        _swap_in(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _place_blob(dest: Path, source: bytes | Path) -> None:
    if dest.exists():
        return
    if isinstance(source, bytes):
        dest.write_bytes(source)
        return
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def _swap_in(staging: Path, directory: Path) -> None:
    """Replace ``directory`` by ``staging`` with renames, so readers see the old or the new layout."""
    if not directory.exists():
        os.replace(staging, directory)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
    os.rmdir(old)
    os.replace(directory, old)
    os.replace(staging, directory)
    shutil.rmtree(old, ignore_errors=True)


def blob_path(directory: Path, digest: str) -> Path:
    return Path(directory) / "blobs" / "sha256" / digest_hex(digest)


def read_blob(directory: Path, digest: str) -> bytes:
    """A small blob (JSON) of the layout, checked against its digest."""
    try:
        data = blob_path(directory, digest).read_bytes()
    except FileNotFoundError:
        raise LayoutError(f"{directory}: blob {digest} is missing") from None
    if sha256_digest(data) != digest:
        raise LayoutError(f"{directory}: blob {digest} does not match its digest")
    return data


def verify_blob_file(path: Path, digest: str, size: int) -> None:
    """Stream a (large) blob file and check its size and digest."""
    writer = HashingWriter()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                writer.write(chunk)
    except FileNotFoundError:
        raise LayoutError(f"blob {digest} is missing ({path})") from None
    if writer.size != size or writer.digest != digest:
        raise LayoutError(f"blob {digest} does not match its digest or size ({path})")


def read_index(directory: Path) -> dict:
    directory = Path(directory)
    try:
        layout = json.loads((directory / "oci-layout").read_text())
        index = json.loads((directory / "index.json").read_text())
    except FileNotFoundError as e:
        raise LayoutError(f"{directory}: not an OCI layout (missing {Path(e.filename).name})") from None
    except ValueError as e:
        raise LayoutError(f"{directory}: malformed layout JSON: {e}") from None
    if layout.get("imageLayoutVersion") != "1.0.0":
        raise LayoutError(f"{directory}: unsupported imageLayoutVersion {layout.get('imageLayoutVersion')!r}")
    return index


def read_layout(directory: Path, ref_name: str | None = None, verify_layers: bool = True) -> Image | Index:
    """Read the image (or index) of a layout; ``ref_name`` picks an entry by its ref.name annotation."""
    try:
        return _read_layout(Path(directory), ref_name, verify_layers)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, LayoutError):
            raise
        raise LayoutError(f"{directory}: malformed image JSON ({type(exc).__name__}: {exc})") from None


def _read_layout(directory: Path, ref_name: str | None, verify_layers: bool) -> Image | Index:
    entries = [Descriptor.from_dict(m) for m in read_index(directory).get("manifests", [])]
    if ref_name is not None:
        entries = [e for e in entries if e.annotations.get(REF_NAME_ANNOTATION) == ref_name]
    digests = {e.digest for e in entries}
    if len(digests) != 1:
        what = f"ref {ref_name!r}" if ref_name else "one image"
        raise LayoutError(f"{directory}: expected {what} in index.json, found {len(digests)}")
    return _read_manifest(directory, entries[0], verify_layers)


def _read_manifest(directory: Path, descriptor: Descriptor, verify_layers: bool) -> Image | Index:
    data = read_blob(directory, descriptor.digest)
    doc = json.loads(data)
    media_type = doc.get("mediaType", descriptor.media_type)
    if media_type in INDEX_TYPES:
        fmt = ImageFormat.OCI if media_type == ImageFormat.OCI.index else ImageFormat.DOCKER
        images = tuple(
            _read_manifest(directory, Descriptor.from_dict(m), verify_layers)
            for m in doc.get("manifests", [])
            if m.get("mediaType") in MANIFEST_TYPES and (m.get("platform") or {}).get("os") != "unknown"
        )
        return Index(data, images, fmt)  # type: ignore[arg-type]
    if media_type not in MANIFEST_TYPES:
        raise LayoutError(f"{directory}: {descriptor.digest} has unsupported media type {media_type!r}")
    fmt = ImageFormat.OCI if media_type == ImageFormat.OCI.manifest else ImageFormat.DOCKER
    config_bytes = read_blob(directory, doc["config"]["digest"])
    diff_ids = json.loads(config_bytes)["rootfs"]["diff_ids"]
    if len(diff_ids) != len(doc["layers"]):
        raise LayoutError(f"{directory}: {len(doc['layers'])} layers but {len(diff_ids)} diff_ids")
    layers = []
    for layer, diff_id in zip(doc["layers"], diff_ids, strict=True):
        path = blob_path(directory, layer["digest"])
        if verify_layers:
            verify_blob_file(path, layer["digest"], int(layer["size"]))
        layers.append(LayerBlob(diff_id, layer["digest"], int(layer["size"]), layer["mediaType"], path))
    return Image(config_bytes, data, tuple(layers), fmt, descriptor.platform)


def iter_blob_sources(target: Image | Index) -> list[BlobSource]:
    """All blobs of ``target`` including its own manifest/index bytes, without duplicates."""
    own = target.manifest_bytes if isinstance(target, Image) else target.index_bytes
    seen: dict[str, bytes | Path] = {}
    for digest, source in [(target.digest, own), *target.blobs()]:
        seen.setdefault(digest, source)
    return list(seen.items())


def read_target(directory: Path, descriptor: Descriptor, verify_layers: bool = True) -> Image | Index:
    """The image or index ``descriptor`` names, read from ``directory/blobs`` (a layout, or a store's root)."""
    return _read_manifest(directory, descriptor, verify_layers)
