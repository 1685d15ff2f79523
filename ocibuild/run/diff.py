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
import sys
from collections.abc import Collection
from pathlib import Path

from ocibuild.oci.entries import Entry, EntryKind

KEEP_OWNERS = os.geteuid() == 0
"""Owners set by a command are real only when it ran as root; rootless runs map everything to the caller."""


def _owned(entry: Entry, st: os.stat_result) -> Entry:
    """``entry`` with the owner of ``st`` when owners are kept (see KEEP_OWNERS)."""
    if not KEEP_OWNERS or (st.st_uid, st.st_gid) == (0, 0):
        return entry
    return dataclasses.replace(entry, uid=st.st_uid, gid=st.st_gid)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _same(before: Path, b: os.stat_result, after: Path, a: os.stat_result) -> bool:
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
    def __init__(self, before: Path, after: Path, ignore: set[str]) -> None:
        self.before = before
        self.after = after
        self.ignore = ignore
        self.entries: list[Entry] = []
        self.inodes: dict[tuple[int, int], str] = {}

    def entry(self, rel: str, st: os.stat_result) -> Entry | None:
        made = self._entry(rel, st)
        return None if made is None else _owned(made, st)

    def _entry(self, rel: str, st: os.stat_result) -> Entry | None:
        path = self.after / rel
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
            return Entry.file_from(rel, path, mode, size=st.st_size)
        print(f"warning: build.run: {rel}: sockets, fifos and devices are not kept in layers", file=sys.stderr)
        return None

    def walk(self, rel: str) -> bool:
        """Compare the directory ``rel``; returns whether anything below it was emitted."""
        before_dir, after_dir = self.before / rel, self.after / rel
        b_dir = _lstat(before_dir)
        before_names = set(os.listdir(before_dir)) if b_dir and stat.S_ISDIR(b_dir.st_mode) else set()
        after_names = os.listdir(after_dir)
        emitted = False
        for name in sorted(before_names - set(after_names)):
            self.entries.append(Entry.whiteout(f"{rel}/{name}" if rel else name))
            emitted = True
        for name in sorted(after_names):
            child = f"{rel}/{name}" if rel else name
            a = os.lstat(after_dir / name)
            b = _lstat(before_dir / name) if name in before_names else None
            emitted |= self.compare(child, b, a)
        return emitted

    def compare(self, rel: str, b: os.stat_result | None, a: os.stat_result) -> bool:
        is_dir = stat.S_ISDIR(a.st_mode)
        if b is None and rel in self.ignore:
            if not is_dir:
                return False
            index = len(self.entries)
            if self.walk(rel):
                self.entries.insert(index, _owned(Entry.directory(rel, stat.S_IMODE(a.st_mode)), a))
                return True
            return False
        if b is not None and _same(self.before / rel, b, self.after / rel, a):
            return self.walk(rel) if is_dir else False
        if b is not None and stat.S_ISDIR(b.st_mode) and not is_dir:
            self.entries.append(Entry.whiteout(rel))
        entry = self.entry(rel, a)
        if entry is not None:
            self.entries.append(entry)
        if is_dir:
            self.walk(rel)
        return True


def diff_rootfs(before: Path, after: Path, ignore: Collection[str] = ()) -> list[Entry]:
    """Entries turning ``before`` into ``after``, with an explicit entry (its real mode) for every parent."""
    differ = _Differ(before, after, set(ignore))
    differ.walk("")
    entries = differ.entries
    present = {e.path for e in entries if e.kind is EntryKind.DIR}
    parents = []
    for entry in entries:
        parts = entry.path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent not in present:
                present.add(parent)
                st = os.lstat(after / parent)
                parents.append(_owned(Entry.directory(parent, stat.S_IMODE(st.st_mode)), st))
    return parents + entries
