"""Resolve paths inside a rootfs as the container would see them, never leaving the root.

Symlinks met on the way are followed relative to the root (an absolute target starts again at the root);
a ``..`` that would climb above the root is refused rather than clamped, because no honest image needs it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_SYMLINKS = 40


class EscapeError(ValueError):
    """A path (or a symlink on its way) points outside the rootfs."""


def split_image_path(name: str) -> list[str]:
    """The components of a path inside an image (tar member names, mount targets); ``..`` is refused."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise EscapeError(f"{name!r} escapes the root")
    return parts


def resolve(root: Path, parts: list[str], follow_last: bool = False) -> Path:
    """The host path of ``parts`` inside ``root``, following symlinks scoped to the root.

    The last component is followed only with ``follow_last``. Missing components are kept as they are (the
    caller creates them). Raises ``EscapeError`` when a symlink target climbs above the root.
    """
    done: list[str] = []
    todo = list(parts)
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                raise EscapeError(f"{'/'.join(parts)!r} escapes the root through a symlink")
            done.pop()
            continue
        candidate = root.joinpath(*done, part)
        if not todo and not follow_last:
            done.append(part)
            break
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            done.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        hops += 1
        if hops > MAX_SYMLINKS:
            raise EscapeError(f"{'/'.join(parts)!r}: too many levels of symlinks")
        target = os.readlink(candidate)
        if target.startswith("/"):
            done = []
        todo = target.split("/") + todo
    return root.joinpath(*done)


def make_parents(root: Path, path: Path) -> None:
    """Create the missing directories between ``root`` and ``path`` (already resolved, so no symlinks)."""
    missing = []
    current = path.parent
    while current != root and not os.path.lexists(current):
        missing.append(current)
        current = current.parent
    if current != root and not current.is_dir():
        raise EscapeError(f"{current.relative_to(root)} is not a directory")
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)


def read_text_in(root: Path, image_path: str) -> str | None:
    """The text of a file of the rootfs (symlinks resolved inside it), or None when it is absent."""
    try:
        path = resolve(root, split_image_path(image_path), follow_last=True)
        return path.read_text(errors="replace") if path.is_file() else None
    except (OSError, EscapeError):
        return None
