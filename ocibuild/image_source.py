"""Find the image a command means: an OCI layout, a dual tarball, a cog.yaml (built first) or a registry ref."""

from __future__ import annotations

import functools
import platform
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

from ocibuild.errors import UserInputError
from ocibuild.oci.image import Image, Index
from ocibuild.oci.layout import LayoutError, read_layout
from ocibuild.oci.store import Store
from ocibuild.oci.tree import remove_tree
from ocibuild.run.weights import BlobReader


def host_architecture() -> str:
    """This machine's architecture in OCI terms (``amd64``, ``arm64``)."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def pick_platform_image(target: Image | Index, architecture: str | None = None) -> Image:
    """The image itself, or the one of an index for ``architecture`` (default: this machine's)."""
    architecture = architecture or host_architecture()
    if isinstance(target, Image):
        return target
    for image in target.images:
        if image.platform is not None and image.platform.architecture == architecture:
            return image
    if target.images:
        return target.images[0]
    raise UserInputError("the index holds no runnable image")


def load_layout_or_archive(spec: str, store: Store) -> Image | Index:
    """The image or index of an OCI layout directory or a dual tarball."""
    path = Path(spec)
    try:
        if path.is_dir():
            return read_layout(path)
        if path.is_file() and tarfile.is_tarfile(path):
            return read_layout(_unpack_archive(path, store))
    except LayoutError as exc:
        raise UserInputError(f"{spec}: {exc}") from None
    except tarfile.TarError as exc:
        raise UserInputError(f"{spec}: not a readable image tarball ({exc})") from None
    raise UserInputError(f"{spec}: not an OCI layout directory or an image tarball")


def resolve_image(
    spec: str,
    store: Store,
    build: Callable[[Path], Image | Index],
    pull: Callable[[str], Image | Index],
) -> Image:
    """Load the image named by ``spec`` (see the module docstring); ``build``/``pull`` do the heavy cases
    (``pull`` fetches a registry reference through the store)."""
    return pick_platform_image(resolve_target(spec, store, build, pull)[0])


def resolve_target(
    spec: str,
    store: Store,
    build: Callable[[Path], Image | Index],
    pull: Callable[[str], Image | Index],
) -> tuple[Image | Index, BlobReader]:
    """The image or index named by ``spec`` and a reader of the blobs beside its images (managed weights)."""
    path = Path(spec)
    try:
        if (path.is_dir() and (path / "cog.yaml").exists()) or (path.is_file() and path.suffix in (".yaml", ".yml")):
            target = build(path)
            blobs = dict(target.artifact_blobs) if isinstance(target, Index) else {}
            return target, blobs.get
    except LayoutError as exc:
        raise UserInputError(f"{spec}: {exc}") from None
    if (path.is_dir() and (path / "oci-layout").exists()) or (path.is_file() and tarfile.is_tarfile(path)):
        layout = path if path.is_dir() else _unpack_archive(path, store)
        return load_layout_or_archive(spec, store), functools.partial(_layout_blob, layout)
    if path.exists():
        raise UserInputError(f"{spec}: not an OCI layout, an image tarball or a cog.yaml")
    if "/" not in spec and ":" not in spec:
        raise UserInputError(f"{spec}: no such file, and not a registry reference (REGISTRY/REPO[:TAG])")
    return pull(spec), lambda digest: None


def _layout_blob(layout: Path, digest: str) -> Path | None:
    algorithm, _, hex_digest = digest.partition(":")
    if not hex_digest.isalnum():
        return None
    path = layout / "blobs" / algorithm / hex_digest
    return path if path.is_file() else None


def archive_layout(path: Path, store: Store) -> Path:
    """The OCI layout inside a dual tarball, unpacked into the store (once per tarball)."""
    return _unpack_archive(path, store)


def _unpack_archive(path: Path, store: Store) -> Path:
    """Unpack a dual tarball (an OCI layout inside) into the store, keyed by its identity and change time.

    Blobs are verified against their digests when the layout is read, so a stale key cannot pass off other
    content as this tarball's.
    """
    st = path.stat()
    target = (
        store.root / "archives" / f"{path.name}-{st.st_dev}-{st.st_ino}-{st.st_size}-{st.st_mtime_ns}-{st.st_ctime_ns}"
    )
    if (target / "index.json").exists():
        return target
    with store.temp_path() as marker:
        staging = marker.with_suffix(".d")
        try:
            with tarfile.open(path) as tar:
                if "oci-layout" not in tar.getnames():
                    raise UserInputError(f"{path}: the tarball holds no OCI layout (oci-layout is missing)")
                _copy_layout_files(tar, staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                staging.rename(target)
            except OSError:
                if not (target / "index.json").exists():  # another process unpacked it first: fine
                    raise
        finally:
            remove_tree(staging, ignore_errors=True)
    return target


_LAYOUT_MEMBER = re.compile(r"^(oci-layout|index\.json|blobs/[a-z0-9]+/[0-9a-f]+)$")


def _copy_layout_files(tar: tarfile.TarFile, staging: Path) -> None:
    """The regular files of the OCI layout in ``tar`` (``oci-layout``, ``index.json``, ``blobs/ALG/HEX``) copied
    into ``staging``; every other member (docker-archive files, links, devices, odd names) is passed over, so
    nothing lands outside ``staging`` and no tarfile extraction filter is needed (Debian 12's Python has none)."""
    for member in tar:
        name = member.name.removeprefix("./")
        if not member.isreg() or not _LAYOUT_MEMBER.match(name):
            continue
        dest = staging / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None  # a regular file
        with source, open(dest, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
