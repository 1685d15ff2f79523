"""An in-memory image filesystem built from package contents, with dpkg's replacement rules.

Later packages replace earlier files and links; an existing directory keeps its mode (and a directory shipped over
a symlink keeps the symlink); a file over a directory is refused. Paths that go through a symlink of the tree are
resolved inside the tree, as they would be in the image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from ocibuild.errors import BuildError
from ocibuild.oci.entries import Entry, EntryKind
from ocibuild.sources.debian.unpack import DebContents

MAX_HOPS = 40


def _normalize(parts: list[str]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return out


class RootTree:
    """Layer entries by image path."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self._links: set[str] = set()

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def get(self, path: str) -> Entry | None:
        return self.entries.get(path)

    def resolve(self, path: str) -> str:
        """``path`` with every symlinked ancestor replaced by its target (the last component is kept)."""
        if not self._links:
            return path
        parts = path.split("/")
        i, hops = 0, 0
        while i < len(parts) - 1:
            prefix = "/".join(parts[: i + 1])
            if prefix in self._links:
                hops += 1
                if hops > MAX_HOPS:
                    raise BuildError(f"too many levels of symbolic links in /{path}")
                link = self.entries[prefix].link
                base = [] if link.startswith("/") else parts[:i]
                parts = _normalize(base + link.split("/")) + parts[i + 1 :]
                i = 0
                continue
            i += 1
        if not parts or not parts[-1]:
            raise BuildError(f"/{path} resolves to the root directory")
        return "/".join(parts)

    def add(self, entry: Entry) -> None:
        path = self.resolve(entry.path)
        if path != entry.path:
            entry = dataclasses.replace(entry, path=path)
        existing = self.entries.get(path)
        if existing is not None:
            if entry.kind is EntryKind.DIR and existing.kind in (EntryKind.DIR, EntryKind.SYMLINK):
                return
            if existing.kind is EntryKind.DIR:
                raise BuildError(f"a package replaces the directory /{path} with a file or link")
            self._links.discard(path)
        self.entries[path] = entry
        if entry.kind is EntryKind.SYMLINK:
            self._links.add(path)

    def add_missing(self, entry: Entry) -> None:
        """Add ``entry`` unless something (a package's file, link or directory) is already there."""
        if self.resolve(entry.path) not in self.entries:
            self.add(entry)

    def set_directory(self, path: str, mode: int) -> None:
        """A directory at ``path`` with exactly ``mode`` (replacing a package's mode)."""
        self.entries.pop(path, None)
        self.add(Entry.directory(path, mode))

    def add_package(self, contents: DebContents) -> None:
        for m in contents.members:
            if m.kind == "dir":
                self.add(Entry.directory(m.path, m.mode))
            elif m.kind == "file":
                self.add(Entry.file(m.path, m.data, m.mode))
            elif m.kind == "symlink":
                self.add(Entry.symlink(m.path, m.link))
            else:
                self.add(Entry.hardlink(m.path, self.resolve(m.link), m.mode))
