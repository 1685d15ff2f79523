"""The change between a rootfs before and after a command, as the entries of one layer.

New and changed paths become entries (modes kept, owners dropped, times left to SOURCE_DATE_EPOCH);
deleted paths become whiteouts; a directory replaced by something else gets a whiteout plus the new entry.
Files count as changed when type, mode, size or symlink target differ, or when only the mtime differs and the
contents do too. Files sharing an inode are written as hardlinks. Paths the runtime only created as mount
points (``ignore``) are left out unless something real was written below them.
"""

from __future__ import annotations

import dataclasses
import filecmp
import os
import stat
from collections.abc import Callable, Collection
from functools import partial
from pathlib import Path

from ocibuild import progress
from ocibuild.oci.entries import Entry, EntryKind

KEEP_OWNERS = os.geteuid() == 0
"""Owners set by a command are real only when it ran as root; rootless runs map everything to the caller."""


def _owned(entry: Entry, st: os.stat_result) -> Entry:
    """``entry`` with the owner of ``st`` when owners are kept (see KEEP_OWNERS)."""
    if not KEEP_OWNERS or (st.st_uid, st.st_gid) == (0, 0):
        return entry
    return dataclasses.replace(entry, uid=st.st_uid, gid=st.st_gid)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _same(before: str, b: os.stat_result, after: str, a: os.stat_result) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode) or stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode):
        return False
    if KEEP_OWNERS and (a.st_uid, a.st_gid) != (b.st_uid, b.st_gid):
        return False
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(before) == os.readlink(after)
    if stat.S_ISDIR(a.st_mode):
        return True
    if a.st_size != b.st_size:
        return False
    return a.st_mtime_ns == b.st_mtime_ns or filecmp.cmp(before, after, shallow=False)


class _Differ:
    """A depth-first comparison with an explicit stack (a build command may leave a tree of any depth)."""

    def __init__(self, before: Path, after: Path, ignore: set[str], changed: set[str]) -> None:
        self.before = str(before)  # strings, not Paths: parsing a deep path per call would be quadratic
        self.after = str(after)
        self.ignore = ignore
        self.changed = changed
        self.entries: list[Entry | None] = []
        """In order; ``None`` holds the place of an ignored directory until we know whether anything below it
        was emitted."""
        self.emitted = 0
        self.inodes: dict[tuple[int, int], str] = {}
        self.stack: list[Callable[[], None]] = []
        """What is left to do, last first: listing a directory, comparing a child, closing an ignored directory."""

    def run(self) -> list[Entry]:
        self.stack.append(partial(self.walk, ""))
        while self.stack:
            self.stack.pop()()
        return [entry for entry in self.entries if entry is not None]

    @staticmethod
    def path(top: str, rel: str) -> str:
        return f"{top}/{rel}" if rel else top

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.emitted += 1

    def entry(self, rel: str, st: os.stat_result) -> Entry | None:
        made = self._entry(rel, st)
        return None if made is None else _owned(made, st)

    def _entry(self, rel: str, st: os.stat_result) -> Entry | None:
        path = self.path(self.after, rel)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            return Entry.directory(rel, mode)
        if stat.S_ISLNK(st.st_mode):
            return Entry.symlink(rel, os.readlink(path))
        if stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.inodes:
                return Entry.hardlink(rel, self.inodes[key], mode)
            if st.st_nlink > 1:
                self.inodes[key] = rel
            return Entry.file_from(rel, Path(path), mode, size=st.st_size)
        progress.active().warn(f"build.run: {rel}: sockets, fifos and devices are not kept in layers")
        return None

    def walk(self, rel: str) -> None:
        """List the directory ``rel``: whiteouts for what it lost now, its children queued in sorted order."""
        b_dir = _lstat(self.path(self.before, rel))
        in_before = b_dir is not None and stat.S_ISDIR(b_dir.st_mode)
        before_names = set(os.listdir(self.path(self.before, rel))) if in_before else set()
        after_names = os.listdir(self.path(self.after, rel))
        for name in sorted(before_names - set(after_names)):
            self.add(Entry.whiteout(f"{rel}/{name}" if rel else name))
        for name in sorted(after_names, reverse=True):
            self.stack.append(partial(self.compare, f"{rel}/{name}" if rel else name, name in before_names))

    def compare(self, rel: str, in_before: bool) -> None:
        a = os.lstat(self.path(self.after, rel))
        b = _lstat(self.path(self.before, rel)) if in_before else None
        is_dir = stat.S_ISDIR(a.st_mode)
        if b is None and rel in self.ignore:
            if is_dir:  # a mount point the runtime made: kept only when something real was written below
                self.stack.append(partial(self.close, len(self.entries), self.emitted, self.entry(rel, a)))
                self.entries.append(None)
                self.stack.append(partial(self.walk, rel))
            return
        if (
            b is not None
            and rel not in self.changed
            and _same(self.path(self.before, rel), b, self.path(self.after, rel), a)
        ):
            if is_dir:
                self.stack.append(partial(self.walk, rel))
            return
        if b is not None and stat.S_ISDIR(b.st_mode) and not is_dir:
            self.add(Entry.whiteout(rel))
        entry = self.entry(rel, a)
        if entry is not None:
            self.add(entry)
        if is_dir:
            self.stack.append(partial(self.walk, rel))

    def close(self, slot: int, emitted_before: int, entry: Entry | None) -> None:
        """End of an ignored directory: its entry takes its place only if something was emitted below it."""
        if self.emitted > emitted_before:
            self.entries[slot] = entry


def diff_rootfs(before: Path, after: Path, ignore: Collection[str] = (), changed: Collection[str] = ()) -> list[Entry]:
    """Entries turning ``before`` into ``after``, with an explicit entry (its real mode) for every parent;
    ``changed`` paths are written again even when identical (files a package manager reinstalled)."""
    entries = _Differ(before, after, set(ignore), set(changed)).run()
    present = {e.path for e in entries if e.kind is EntryKind.DIR}
    parents = []
    for entry in entries:
        missing = []
        parent = entry.path.rpartition("/")[0]
        while parent and parent not in present:  # up to the first one present: linear in the depth
            present.add(parent)
            missing.append(parent)
            parent = parent.rpartition("/")[0]
        for parent in reversed(missing):
            st = os.lstat(after / parent)
            parents.append(_owned(Entry.directory(parent, stat.S_IMODE(st.st_mode)), st))
    return parents + entries
