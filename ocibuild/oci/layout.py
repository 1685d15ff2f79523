"""The OCI image layout directory: write one in place and read one back, verifying every digest.

A layout is written only into a directory that is absent, empty or already an OCI layout (``oci-layout`` and
``index.json``); anything else is refused, so no user folder is ever replaced. Writers of one directory take
turns (an exclusive ``flock`` on the directory). Blobs are copies (reflinks where the file system has them),
never hardlinks of the store: a layout is the user's to edit, and an edit must not reach the store. Readers see a
complete layout at every moment: the old ``index.json`` with its blobs until the new one is renamed over it, the
new one after. Blobs only the old index named are removed then, so a reader still copying the old image at that
moment finds a blob missing (an error, never wrong bytes).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from ocibuild.oci.artifact import Artifact
from ocibuild.oci.canonical import canonical_json
from ocibuild.oci.descriptor import Descriptor
from ocibuild.oci.digest import HashingWriter, digest_hex, is_digest, sha256_digest
from ocibuild.oci.image import REF_NAME_ANNOTATION, BlobSource, Image, Index
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.mediatypes import INDEX_TYPES, MANIFEST_TYPES, ImageFormat

LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
TEMP_PREFIX = ".ocibuild-tmp-"
VERIFIED_FILE = ".ocibuild-verified.json"
"""Beside ``index.json``: the fingerprint of each blob when ocibuild last wrote or hashed it."""
FICLONE = 0x40049409


class LayoutError(ValueError):
    """A layout that is missing, malformed or whose blobs do not match their digests."""


def is_layout(directory: Path) -> bool:
    return (directory / "oci-layout").is_file() and (directory / "index.json").is_file()


def check_output_dir(directory: Path) -> None:
    """Raise LayoutError unless ``directory`` is absent, empty or an OCI layout: the only places we write."""
    directory = Path(directory)
    if not directory.exists() and not directory.is_symlink():
        return
    if not directory.is_dir():
        raise LayoutError(f"{directory}: exists and is not a directory")
    if is_layout(directory):
        return
    with os.scandir(directory) as entries:
        if next(entries, None) is not None:
            raise LayoutError(f"{directory}: not empty and not an OCI layout; choose an empty or new directory")


def write_layout(
    directory: Path,
    target: Image | Index,
    ref_names: list[str] | None = None,
    referrers: Sequence[Artifact] = (),
) -> Path:
    """Write ``target`` as the one image (or index) of the OCI layout at ``directory``.

    ``ref_names`` become ``org.opencontainers.image.ref.name`` annotations (one index.json entry each).
    ``referrers`` (artifacts whose subject is the target or one of its images: SBOM, provenance) are listed in
    index.json too, each with its ``artifactType``; readers of the image pass them over.
    """
    directory = Path(directory)
    check_output_dir(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with _exclusive(directory):
        check_output_dir(directory)
        if not is_layout(directory):  # a killed first write still leaves a valid (empty) layout
            _write_file(directory / "oci-layout", LAYOUT_FILE)
            _write_file(directory / "index.json", canonical_json(_index([])))
        blobs_dir = directory / "blobs" / "sha256"
        blobs_dir.mkdir(parents=True, exist_ok=True)
        _remove_temp_files(blobs_dir)
        previous = _named_blobs(directory)
        known = _read_verified(directory)
        verified: dict[str, list[int]] = {}
        sources = iter_blob_sources(target)
        for artifact in referrers:
            sources += [s for s in artifact.blob_sources() if s[0] not in {d for d, _ in sources}]
        placed: list[Path] = []
        try:
            for digest, source in sources:
                dest = blobs_dir / digest_hex(digest)
                if _place_blob(dest, digest, source, known.get(digest)) and digest not in previous:
                    placed.append(dest)
                verified[digest] = _fingerprint(dest.lstat())
            _write_file(directory / VERIFIED_FILE, canonical_json(verified))
            entries = _entries(target, ref_names) + [a.descriptor() for a in referrers]
            _write_file(directory / "index.json", canonical_json(_index(entries)))
        except BaseException:
            for path in placed:
                path.unlink(missing_ok=True)
            raise
        for digest in previous - {digest for digest, _ in sources}:
            (blobs_dir / digest_hex(digest)).unlink(missing_ok=True)
    return directory


def _entries(target: Image | Index, ref_names: list[str] | None) -> list[Descriptor]:
    own_bytes = target.manifest_bytes if isinstance(target, Image) else target.index_bytes
    platform = target.platform if isinstance(target, Image) else None
    plain = Descriptor(target.media_type, target.digest, len(own_bytes), platform=platform)
    named = [
        Descriptor(plain.media_type, plain.digest, plain.size, {REF_NAME_ANNOTATION: ref}, platform)
        for ref in ref_names or []
        if ref
    ]
    return named or [plain]


def _index(entries: list[Descriptor]) -> dict:
    return {"schemaVersion": 2, "mediaType": ImageFormat.OCI.index, "manifests": [e.to_dict() for e in entries]}


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Hold an exclusive flock on the directory itself (no lock file is left in the user's folder)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path`` and rename it into place."""
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(name, 0o644)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


def _fingerprint(st: os.stat_result) -> list[int]:
    """What changes whenever a file's bytes may have: size, mtime, ctime (which no one can set back), inode."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _read_verified(directory: Path) -> dict[str, list[int]]:
    """The fingerprints of the blobs this writer wrote or verified last time (``VERIFIED_FILE``)."""
    try:
        data = json.loads((directory / VERIFIED_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _place_blob(dest: Path, digest: str, source: bytes | Path, verified: list[int] | None = None) -> bool:
    """Make ``dest`` hold the blob; an existing file is kept only if it is ours and verifies (or is unchanged since
    it last did: ``verified`` is its fingerprint then). True if written."""
    if isinstance(source, bytes):
        _write_file(dest, source)
        return True
    if _reusable(dest, digest, source, verified):
        return False
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=dest.parent)
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
            _clone(src.fileno(), out.fileno())
        os.chmod(name, 0o644)
        os.replace(name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    return True


def _reusable(dest: Path, digest: str, source: Path, verified: list[int] | None) -> bool:
    """A blob already in the layout is reused if it is a plain file of its own (not the store's inode: layouts
    written by older versions hardlinked them) and its bytes match ``digest``: hashed again unless its
    fingerprint is the one recorded when it last verified."""
    try:
        st = dest.lstat()
        if not stat.S_ISREG(st.st_mode) or os.path.samefile(dest, source):
            return False
        if verified != _fingerprint(st):
            verify_blob_file(dest, digest, st.st_size)
    except (OSError, LayoutError):
        return False
    return True


def _clone(src: int, dst: int) -> None:
    """Copy a whole file: a reflink where the file system shares extents, else an in-kernel copy."""
    with contextlib.suppress(OSError):
        fcntl.ioctl(dst, FICLONE, src)
        return
    size = os.fstat(src).st_size
    offset = 0
    try:
        while offset < size:
            copied = os.copy_file_range(src, dst, size - offset)
            if copied == 0:
                break
            offset += copied
    except OSError:
        os.lseek(src, 0, os.SEEK_SET)
        os.ftruncate(dst, 0)
        os.lseek(dst, 0, os.SEEK_SET)
        with open(src, "rb", closefd=False) as s, open(dst, "wb", closefd=False) as d:
            shutil.copyfileobj(s, d, 1 << 20)


def _remove_temp_files(blobs_dir: Path) -> None:
    """Temp files of writers that were killed (every live writer holds the lock we hold now)."""
    with os.scandir(blobs_dir) as entries:
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
    for entry in blobs_dir.parent.parent.glob(TEMP_PREFIX + "*"):
        entry.unlink(missing_ok=True)


def _named_blobs(directory: Path) -> set[str]:
    """Every digest the layout's index.json names, directly or through its manifests (best effort)."""
    named: set[str] = set()
    pending = [m for m in _json(directory / "index.json").get("manifests", []) if isinstance(m, dict)]
    while pending:
        descriptor = pending.pop()
        digest = descriptor.get("digest")
        if not isinstance(digest, str) or not is_digest(digest) or digest in named:
            continue
        named.add(digest)
        if descriptor.get("mediaType") in MANIFEST_TYPES | INDEX_TYPES:
            doc = _json(blob_path(directory, digest))
            children = [doc.get("config"), *doc.get("layers", []), *doc.get("manifests", []), *doc.get("blobs", [])]
            pending += [c for c in children if isinstance(c, dict)]
    return named


def _json(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read(4 << 20))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


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
    entries = [e for e in entries if not e.artifact_type]  # referrers (SBOM, provenance) beside the image
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
        annotations = tuple(sorted((layer.get("annotations") or {}).items()))
        layers.append(
            LayerBlob(diff_id, layer["digest"], int(layer["size"]), layer["mediaType"], path, annotations=annotations)
        )
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


def read_referrers(directory: Path) -> list[tuple[Descriptor, dict]]:
    """The artifacts listed in a layout's index.json (descriptor, manifest), each manifest checked by digest."""
    out = []
    for entry in read_index(directory).get("manifests", []):
        descriptor = Descriptor.from_dict(entry)
        if descriptor.artifact_type:
            out.append((descriptor, json.loads(read_blob(directory, descriptor.digest))))
    return out
