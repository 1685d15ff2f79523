"""A content-addressed local cache: blobs by digest, and layers by the key of their inputs.

Layout under the root (default ``~/.cache/ocibuild``, or ``$OCIBUILD_CACHE``):
- ``blobs/sha256/<hex>``: immutable blobs;
- ``keys/<hh>/<key>.json``: a layer's input key -> its diff_id, digest, size and media type;
- ``tmp/``: work files, renamed into place once complete.
Every write goes to a unique temp file and is renamed into place, so a killed build never leaves a partial
entry and two builds may share the store: a key entry is only written after its blob exists.
Each ``Store`` holds a shared ``flock`` on ``tmp.lock``; one that can take it exclusively (no other live
user of the store) first removes what killed builds left in ``tmp/``. Directories in use (an unpacked rootfs
under a container, one being unpacked) hold an ``flock`` on themselves (``lock_in_use``): ``prune`` skips them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocibuild.oci.digest import digest_hex, sha256_digest
from ocibuild.oci.tree import remove_tree, tree_size


class OfflineError(Exception):
    """Something needed is missing from the store and ``--offline`` forbids fetching it."""


class StoreInUseError(Exception):
    """``prune --all`` needs the store alone, and another ocibuild process is using it."""


def default_cache_dir() -> Path:
    env = os.environ.get("OCIBUILD_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ocibuild"


@dataclass
class StoreStats:
    """Counters of what a build asked the store for; tests use them to prove work was skipped."""

    key_hits: int = 0
    key_misses: int = 0
    blobs_written: int = 0


class Store:
    """The blob and layer-key cache. Safe for concurrent builds sharing one root."""

    def __init__(self, root: Path | None = None) -> None:
        # Absolute: paths under it go into runtime configs, read relative to other directories (runc's bundle).
        self.root = (Path(root) if root is not None else default_cache_dir()).absolute()
        self.stats = StoreStats()
        self.offline = False
        """Set by ``--offline``: sources must not fetch anything; content missing here is an error."""
        for sub in ("blobs/sha256", "keys", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._tmp_lock = _claim_tmp(self.root / "tmp", self.root / TMP_LOCK)

    def __del__(self) -> None:
        fd = getattr(self, "_tmp_lock", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def prune(self, everything: bool = False) -> int:
        """Remove caches that are rebuilt on demand (unpacked root filesystems and tarballs, ``rootfs/`` and
        ``archives/``), or with ``everything`` every entry; returns the bytes freed. Blobs and keys stay
        consistent: a key is dropped with its blob, or not at all. A rootfs in use (by a running container or
        a build) is kept; ``everything`` needs the store alone (``StoreInUseError`` otherwise)."""
        if everything and not self._alone():
            raise StoreInUseError(f"{self.root} is in use by another ocibuild process; prune --all needs it alone")
        try:
            names = [p.name for p in self.root.iterdir() if p.name != TMP_LOCK] if everything else ["archives"]
            freed = _prune_unused(self.root / "rootfs")
            for name in names:
                path = self.root / name
                if not path.exists() or name == "rootfs":
                    continue
                freed += tree_size(path) if path.is_dir() else 0
                remove_tree(path, ignore_errors=True)
        finally:
            if everything and self._tmp_lock is not None:
                fcntl.flock(self._tmp_lock, fcntl.LOCK_SH)
        for sub in ("blobs/sha256", "keys", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        return freed

    def _alone(self) -> bool:
        """Whether no other Store (in any process) is open on this root; if so, keep them out until released."""
        if self._tmp_lock is None:
            return True
        try:
            fcntl.flock(self._tmp_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fcntl.flock(self._tmp_lock, fcntl.LOCK_SH)  # a failed conversion may have dropped the shared lock
            return False
        return True

    def require_online(self, what: str) -> None:
        """Raise when offline: ``what`` (a file to fetch) is not in the store and may not be downloaded."""
        if self.offline:
            raise OfflineError(f"--offline: {what} is not in the store {self.root}; build once with a network")

    # blobs
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest_hex(digest)

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        """True if the blob is stored (with ``size``). A blob that shares its inode with another file (a layout
        of an older version hardlinked it) may have been edited there: it is checked and made the store's own,
        or dropped so that it is built or fetched again."""
        path = self.blob_path(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        if size is not None and st.st_size != size:
            return False
        return st.st_nlink == 1 or self._reclaim(path, digest)

    def _reclaim(self, path: Path, digest: str) -> bool:
        with self.temp_path() as temp:
            with open(path, "rb") as src, open(temp, "wb") as out:
                hasher = hashlib.sha256()
                while chunk := src.read(1 << 20):
                    hasher.update(chunk)
                    out.write(chunk)
            if "sha256:" + hasher.hexdigest() != digest:
                path.unlink(missing_ok=True)
                return False
            os.chmod(temp, 0o444)
            os.replace(temp, path)
        return True

    @contextlib.contextmanager
    def temp_path(self, suffix: str = "") -> Iterator[Path]:
        """A fresh file path under ``tmp/`` that is removed afterwards unless it was committed."""
        fd, name = tempfile.mkstemp(dir=self.root / "tmp", suffix=suffix)
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def commit_blob(self, temp: Path, digest: str) -> Path:
        """Move a finished temp file to its content address (an existing copy wins; blobs are immutable)."""
        final = self.blob_path(digest)
        if final.exists():
            temp.unlink()
        else:
            os.chmod(temp, 0o444)
            os.replace(temp, final)
            self.stats.blobs_written += 1
        return final

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_digest(data)
        if not self.has_blob(digest, len(data)):
            with self.temp_path() as temp:
                temp.write_bytes(data)
                self.commit_blob(temp, digest)
        return digest

    def read_bytes(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    # layer keys
    def _key_path(self, key: str) -> Path:
        name = hashlib.sha256(key.encode()).hexdigest()
        return self.root / "keys" / name[:2] / f"{name}.json"

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The record stored for an input key, if its blob is still present; counts hits and misses."""
        try:
            record = json.loads(self._key_path(key).read_text())
        except (FileNotFoundError, ValueError):
            self.stats.key_misses += 1
            return None
        try:
            present = self.has_blob(record["digest"], record["size"])
        except (KeyError, TypeError, ValueError):
            present = False
        if not present:
            self.stats.key_misses += 1
            return None
        self.stats.key_hits += 1
        return record

    def record(self, key: str, record: dict[str, Any]) -> None:
        """Remember ``record`` for ``key`` (atomically; the blob must already be committed)."""
        path = self._key_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.temp_path(".json") as temp:
            temp.write_text(json.dumps(record, sort_keys=True))
            os.replace(temp, path)


TMP_LOCK = "tmp.lock"
WORK_PREFIX = ".tmp-"
"""Directories being filled before they are renamed into place (an unpacking rootfs); their builder locks them."""
WORK_GRACE_S = 60.0


def lock_in_use(path: Path, *, exclusive: bool = False) -> int | None:
    """Mark the directory ``path`` as in use for as long as the returned descriptor stays open (a shared
    ``flock``, or an exclusive one for its builder). None when ``path`` is gone, or was replaced, by the time
    the lock is held (``prune`` removed it): the caller builds it again."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    try:
        current = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        current = None
    if current is None or not os.path.samestat(current, os.fstat(fd)):
        os.close(fd)
        return None
    return fd


def _prune_unused(directory: Path) -> int:
    """Remove the entries of ``directory`` that nobody holds a lock on; returns the bytes freed. Each is renamed
    aside first, so a user that was waiting for its lock finds it gone and builds it again."""
    freed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
            continue
        with contextlib.suppress(OSError):
            if entry.name.startswith(WORK_PREFIX) and time.time() - entry.stat().st_mtime < WORK_GRACE_S:
                continue  # just made: its builder is about to lock it
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # in use: a running container's rootfs, or one being unpacked
            continue
        try:
            freed += tree_size(entry.path)
            doomed = directory / f".prune-{uuid.uuid4().hex}"
            os.rename(entry.path, doomed)
            remove_tree(doomed, ignore_errors=True)
        except OSError:
            pass
        finally:
            os.close(fd)
    return freed


def _claim_tmp(tmp: Path, lock: Path) -> int | None:
    """Hold a shared lock on ``lock`` for the life of a Store; when no other Store (in any process) holds it,
    first remove the work files that killed builds left in ``tmp``. None where locks are unsupported."""
    try:
        import fcntl

        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except (ImportError, OSError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass  # another build uses the store: its work files are live
    else:
        with contextlib.suppress(OSError), os.scandir(tmp) as entries:
            for entry in entries:
                remove_tree(entry.path, ignore_errors=True)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        return None
    return fd
