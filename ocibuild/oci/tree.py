"""Walks and removals of file trees without recursion: any depth fits, whatever Python's recursion limit.

A build command may leave a tree thousands of directories deep; ``shutil.rmtree``, ``os.walk`` and
``Path.rglob`` recurse once per level on Python 3.11 and fail with ``RecursionError`` on such a tree.
Symlinks are never followed: a link is removed or counted as itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path


def iter_tree(top: str | Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every path below ``top`` (not ``top`` itself) with its ``lstat``, parents before children."""
    stack = [os.fspath(top)]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                found = [(entry.path, entry.stat(follow_symlinks=False)) for entry in entries]
        except OSError:  # gone, or unreadable: nothing to list
            continue
        for path, st in found:
            yield path, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(path)


def tree_size(top: str | Path) -> int:
    """Bytes removing ``top`` would free: directories, and each file once (however many names it has below
    ``top``), not at all while a name outside ``top`` keeps it (a hardlink from a layout or another cache);
    symlinks are not followed."""
    seen: dict[tuple[int, int], list[int]] = {}  # inode -> [names below top, link count, size]
    directories = 0
    for _, st in iter_tree(top):
        if stat.S_ISDIR(st.st_mode):
            directories += st.st_size
        elif stat.S_ISREG(st.st_mode):
            entry = seen.setdefault((st.st_dev, st.st_ino), [0, st.st_nlink, st.st_size])
            entry[0] += 1
    return directories + sum(size for names, links, size in seen.values() if names >= links)


def remove_tree(top: str | Path, *, ignore_errors: bool = False) -> None:
    """Remove ``top`` and everything below it (a file or symlink is just unlinked); absent is fine.

    Directories are made writable (and searchable) first, since stored blobs and image trees may be
    read-only. With ``ignore_errors`` whatever cannot be removed is left in place.
    """
    top = os.fspath(top)
    try:
        st = os.lstat(top)
    except FileNotFoundError:
        return
    try:
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(top)
            return
        # (path, children done): a directory is visited twice, to list it and, once empty, to remove it.
        stack: list[tuple[str, bool]] = [(top, False)]
        while stack:
            directory, emptied = stack.pop()
            if emptied:
                _ignoring(os.rmdir, directory, ignore=ignore_errors)
                continue
            stack.append((directory, True))
            _ignoring(_make_searchable, directory, ignore=ignore_errors)
            try:
                with os.scandir(directory) as entries:
                    children = [(entry.path, entry.is_dir(follow_symlinks=False)) for entry in entries]
            except FileNotFoundError:
                continue
            except OSError:
                if ignore_errors:
                    continue
                raise
            for path, is_dir in children:
                if is_dir:
                    stack.append((path, False))
                else:
                    _ignoring(os.unlink, path, ignore=ignore_errors)
    except FileNotFoundError:
        pass


def _make_searchable(directory: str) -> None:
    """Add u+rwx to ``directory`` (only a real directory: a symlink is never followed)."""
    st = os.lstat(directory)
    if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o700 != 0o700:
        os.chmod(directory, stat.S_IMODE(st.st_mode) | 0o700)


def _ignoring(call: Callable[[str], object], path: str, *, ignore: bool) -> None:
    try:
        call(path)
    except FileNotFoundError:
        pass
    except OSError:
        if not ignore:
            raise
