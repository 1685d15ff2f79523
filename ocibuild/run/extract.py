"""Unpack image layers into a rootfs directory, safely, and cache it by the layers' chain ID.

Rules (image-spec layer.md): ``.wh.NAME`` deletes NAME from the layers below, ``.wh..wh..opq`` hides every
lower child of its directory, a whiteout never applies to its own layer. No entry may land outside the root
(``..`` and symlinks climbing out are refused), device nodes and fifos are refused, setuid/setgid bits and
``SCHILY.xattr`` attributes are kept, and owners are applied only when running as root (rootless runs map
the caller to root instead). Each layer's uncompressed stream is checked against its diff_id.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from ocibuild.errors import BuildError
from ocibuild.oci.compression import Compression, open_decompressor
from ocibuild.oci.entries import OPAQUE_MARKER, WHITEOUT_PREFIX
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.store import WORK_PREFIX, Store, lock_in_use
from ocibuild.oci.tree import remove_tree
from ocibuild.run.paths import EscapeError, make_parents, resolve, split_image_path

XATTR_PREFIX = "SCHILY.xattr."
IN_USE_TRIES = 3
SPACE_CHECK_BYTES = 1 << 20
"""Files this large (and every GNU-sparse file) are checked against the free space before they are written."""


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The OCI ChainIDs of a layer stack: one per prefix, the last identifies the whole rootfs."""
    chain: list[str] = []
    for diff_id in diff_ids:
        chain.append(
            diff_id if not chain else "sha256:" + hashlib.sha256(f"{chain[-1]} {diff_id}".encode()).hexdigest()
        )
    return chain


@contextlib.contextmanager
def rootfs_in_use(layers: Sequence[LayerBlob], store: Store) -> Iterator[Path]:
    """``rootfs_for(layers, store)``, locked against ``prune`` while the block runs (a container on it)."""
    for _ in range(IN_USE_TRIES):
        path = rootfs_for(layers, store)
        fd = lock_in_use(path)
        if fd is not None:
            try:
                yield path
            finally:
                os.close(fd)
            return
    raise BuildError(f"the rootfs {path.name[:12]} keeps being pruned while it is prepared; try again")


def rootfs_for(layers: Sequence[LayerBlob], store: Store) -> Path:
    """The unpacked rootfs of ``layers`` under ``store.root/rootfs/<chainid>``, built once then reused.

    It starts from the longest already-unpacked prefix (copied) and is renamed into place when complete.
    Callers must treat it as read-only (run containers on an overlay or a copy), and hold it with
    ``rootfs_in_use`` so that ``prune`` leaves it alone while they do.
    """
    if not layers:
        raise BuildError("an image without layers cannot be run")
    chain = chain_ids([layer.diff_id for layer in layers])
    base = store.root / "rootfs"
    base.mkdir(parents=True, exist_ok=True)
    target = base / chain[-1].split(":", 1)[1]
    if target.is_dir():
        return target
    seed_index = next(
        (i for i in range(len(chain) - 2, -1, -1) if (base / chain[i].split(":", 1)[1]).is_dir()),
        -1,
    )
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=base))
    held = [lock_in_use(work, exclusive=True)]  # prune skips a rootfs being unpacked
    try:
        os.chmod(work, 0o755)
        seed = base / chain[seed_index].split(":", 1)[1] if seed_index >= 0 else None
        held.append(lock_in_use(seed) if seed is not None else None)
        if seed is not None and held[-1] is None:
            seed_index = -1  # pruned meanwhile: unpack every layer instead
        elif seed is not None:
            copy_tree(seed, work)
        for layer in layers[seed_index + 1 :]:
            apply_layer(layer, work)
        try:
            os.rename(work, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        remove_tree(work, ignore_errors=True)
        for fd in held:
            if fd is not None:
                os.close(fd)
    return target


def copy_tree(source: Path, dest: Path) -> None:
    """Copy a rootfs keeping hardlinks, owners, modes, times and xattrs (reflinks where the fs has them)."""
    result = subprocess.run(
        ["cp", "-a", "--reflink=auto", f"{source}/.", str(dest)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"cannot copy {source}: {result.stderr.strip()}")


class _HashingReader:
    """Hashes the bytes read through it, so the tar stream is checked against its diff_id."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._hash.update(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self._hash.hexdigest()


def apply_layer(layer: LayerBlob, root: Path) -> None:
    """Apply one layer blob onto the rootfs at ``root``."""
    try:
        source = open(layer.path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise BuildError(f"layer {layer.digest} is missing from the store ({layer.path})") from None
    with source:
        reader = _HashingReader(open_decompressor(Compression.from_media_type(layer.media_type), source))
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                _Applier(root, tar, layer.digest).run()
            diff_id = reader.drain()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BuildError(f"layer {layer.digest}: cannot unpack: {exc}") from None
    if diff_id != layer.diff_id:
        raise BuildError(f"layer {layer.digest}: content {diff_id} does not match its diff_id {layer.diff_id}")


class _Applier:
    """Extracts one layer's members in order, tracking what this layer wrote (whiteouts skip those)."""

    def __init__(self, root: Path, tar: tarfile.TarFile, digest: str) -> None:
        self.root = root
        self.tar = tar
        self.digest = digest
        self.written: set[Path] = set()
        self.directories: list[tuple[Path, tarfile.TarInfo, int]] = []
        """Directories whose mode and mtime are applied at the end, with the ``changes`` count when made."""
        self.changes = 0
        """Links made and paths removed so far: while it stays the same, resolved paths hold no symlink."""
        self.as_root = os.geteuid() == 0
        self.resolved: dict[tuple[str, ...], Path] = {}
        """Image paths of this layer's directories -> their host paths, so a deep tree is not resolved again
        component by component for each member; forgotten whenever a link is made or anything removed."""

    def fail(self, name: str, why: str) -> BuildError:
        return BuildError(f"layer {self.digest}: {name!r}: {why}")

    def run(self) -> None:
        for member in self.tar:
            try:
                self.member(member)
            except EscapeError as exc:
                raise self.fail(member.name, f"refused, {exc}") from None
        # Deepest first, so a parent losing u+wx cannot stop its children. A path that a later link or removal
        # may have changed is opened again from the root, one component at a time, never following a link.
        for path, member, changes in sorted(self.directories, key=lambda item: -len(item[0].parts)):
            fd = _open_directory(path) if changes == self.changes else _open_directory_in(self.root, path)
            if fd is None:
                continue
            try:
                os.fchmod(fd, member.mode & 0o7777)
                os.utime(fd, (member.mtime, member.mtime))
            finally:
                os.close(fd)

    def member(self, member: tarfile.TarInfo) -> None:
        parts = split_image_path(member.name)
        if not parts:
            return
        name = parts[-1]
        parent = self.resolved.get(tuple(parts[:-1])) or resolve(self.root, parts[:-1], follow_last=True)
        if name == OPAQUE_MARKER:
            self.opaque(parent)
            return
        if name.startswith(WHITEOUT_PREFIX):
            hidden = name[len(WHITEOUT_PREFIX) :]
            if hidden in ("", ".", "..") or "/" in hidden:
                raise self.fail(member.name, "malformed whiteout")
            if not name.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                self.whiteout(parent / hidden)
            return
        if member.ischr() or member.isblk() or member.isfifo():
            raise self.fail(member.name, "device nodes and fifos are not allowed in layers")
        path = parent / name
        make_parents(self.root, path)
        if member.isdir():
            self.directory(path, member)
            self.resolved[tuple(parts)] = path
        else:
            self.remove(path)
            if member.isreg():
                self.file(path, member)
            elif member.issym():
                self.changed()
                os.symlink(member.linkname, path)
                self.finish(path, member)
            elif member.islnk():
                self.hardlink(path, member)
            else:
                raise self.fail(member.name, f"unsupported tar entry type {member.type!r}")
        self.written.add(path)

    def directory(self, path: Path, member: tarfile.TarInfo) -> None:
        if os.path.lexists(path) and not (path.is_dir() and not path.is_symlink()):
            self.remove(path)
        if not os.path.lexists(path):
            os.mkdir(path, 0o700)
        self.finish(path, member)
        fd = _open_directory(path)  # just resolved and checked: no link on the way
        if fd is None:
            raise self.fail(member.name, "is not a directory of the rootfs")
        try:
            os.fchmod(fd, (member.mode & 0o7777) | 0o700)
        finally:
            os.close(fd)
        self.directories.append((path, member, self.changes))

    def file(self, path: Path, member: tarfile.TarInfo) -> None:
        """Write the file, then its owner, xattrs, mode and mtime through the one descriptor that created it."""
        if member.sparse is not None or member.size >= SPACE_CHECK_BYTES:
            self.check_space(path.parent, member)
        source = self.tar.extractfile(member)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            if source is not None:
                shutil.copyfileobj(source, out, 1 << 20)
            out.flush()
            if self.as_root:
                os.fchown(fd, member.uid, member.gid)
                self.xattrs(fd, member)
            os.fchmod(fd, member.mode & 0o7777)
            os.utime(fd, (member.mtime, member.mtime))

    def check_space(self, directory: Path, member: tarfile.TarInfo) -> None:
        """Refuse a file (above all a GNU-sparse one, whose holes expand to zeros) larger than the free space."""
        st = os.statvfs(directory)
        free = st.f_bavail * st.f_frsize
        if member.size > free:
            kind = "sparse file" if member.sparse is not None else "file"
            raise self.fail(member.name, f"{kind} of {member.size} bytes does not fit in the {free} bytes free")

    def hardlink(self, path: Path, member: tarfile.TarInfo) -> None:
        target = resolve(self.root, split_image_path(member.linkname))
        if not os.path.lexists(target) or target.is_dir():
            raise self.fail(member.name, f"hardlink target {member.linkname!r} is not a file of the rootfs")
        os.link(target, path, follow_symlinks=False)

    def finish(self, path: Path, member: tarfile.TarInfo) -> None:
        """Owner and xattrs of a directory or symlink, and a symlink's mtime, never following the link.

        Files get theirs in ``file``; a directory's mode and mtime wait for the end of the layer (``run``);
        a hardlink shares its target's.
        """
        if self.as_root:
            os.lchown(path, member.uid, member.gid)
            self.xattrs(path, member)
        if member.issym():
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def xattrs(self, target: Path | int, member: tarfile.TarInfo) -> None:
        """``SCHILY.xattr.*`` records on ``target`` (a descriptor, or a path whose last link is not followed)."""
        for key, value in member.pax_headers.items():
            if key.startswith(XATTR_PREFIX):
                value_bytes = value.encode("utf-8", "surrogateescape")
                with contextlib.suppress(OSError):
                    if isinstance(target, int):
                        os.setxattr(target, key[len(XATTR_PREFIX) :], value_bytes)
                    else:
                        os.setxattr(target, key[len(XATTR_PREFIX) :], value_bytes, follow_symlinks=False)

    def remove(self, path: Path) -> None:
        """Remove whatever is at ``path`` (never following a symlink, at any depth)."""
        if os.path.lexists(path):
            self.changed()
            remove_tree(path)

    def changed(self) -> None:
        """A link was made or a path removed: resolved paths may now lead through a link."""
        self.changes += 1
        self.resolved.clear()

    def whiteout(self, path: Path) -> None:
        if path not in self.written:
            self.remove(path)

    def opaque(self, directory: Path) -> None:
        """Remove what the lower layers hold below ``directory``, keeping what this layer wrote (any depth)."""
        todo = [directory]
        while todo:
            current = todo.pop()
            if not current.is_dir() or current.is_symlink():
                continue
            for child in current.iterdir():
                if child not in self.written:
                    self.remove(child)
                elif child.is_dir() and not child.is_symlink():
                    todo.append(child)


DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_directory(path: Path) -> int | None:
    """A descriptor of the directory ``path`` (its last component never a followed link); None if it is not one."""
    try:
        return os.open(path, DIRECTORY_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise


def _open_directory_in(root: Path, path: Path) -> int | None:
    """A descriptor of the directory ``path`` under ``root``, opened one component at a time without following
    any symlink; None when a component is no longer a directory (a later member replaced it)."""
    fd = os.open(root, DIRECTORY_FLAGS)
    try:
        for part in path.relative_to(root).parts:
            child = os.open(part, DIRECTORY_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    return fd
