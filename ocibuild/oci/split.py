"""Split one layer's entries into several layers by path, so a runtime can fetch and unpack them in parallel.

The split is a pure function of the entries' paths, kinds, links and sizes: paths are walked in tar order and
cut whenever the next file would take a part past ``max_size`` bytes of file content. So:

- the same entries and ``max_size`` give the same parts (and the same layer digests) on every machine;
- the parts together hold exactly the entries of the unsplit layer; each part carries the explicit directories
  its paths lie under (implicit ones the tar writer adds, the same in every part), so no part relies on another;
- a hardlink stays in the part of the file it links to (a tar hardlink cannot reach into another layer);
- no part holds more than ``max_size`` bytes of files unless one file (with its hardlinks) is larger alone.

Layers with whiteouts or opaque markers are never split: their meaning depends on the layers below them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ocibuild.oci.entries import Entry, EntryKind
from ocibuild.oci.tarwriter import plan_entries

_NOT_SPLIT = (EntryKind.WHITEOUT, EntryKind.OPAQUE)


def split_entries(entries: Sequence[Entry], max_size: int) -> list[list[Entry]]:
    """``entries`` as one or more parts, each a layer's entries, lowest first (see the module's rules)."""
    if max_size <= 0:
        raise ValueError(f"max_size must be positive, not {max_size}")
    if any(e.kind in _NOT_SPLIT for e in entries) or content_size(entries) <= max_size:
        return [list(entries)]
    ordered = plan_entries(entries)  # tar order, every link after its target
    explicit = {e.path: e for e in entries if e.kind is EntryKind.DIR}
    links: dict[str, list[Entry]] = {}
    for entry in ordered:
        if entry.kind is EntryKind.HARDLINK:
            links.setdefault(entry.link, []).append(entry)
    parts: list[list[Entry]] = []
    current: list[Entry] = []
    used = 0
    for entry in ordered:
        if entry.kind in (EntryKind.DIR, EntryKind.HARDLINK):
            continue  # directories follow their contents; hardlinks follow their targets
        unit = [entry, *links.get(entry.path, [])]
        size = content_size(unit)
        if current and used + size > max_size:
            parts.append(current)
            current, used = [], 0
        current += unit
        used += size
    parts.append(current)
    covered = {a for part in parts for e in part for a in _ancestors(e.path)}
    parts[-1] += [explicit[p] for p in sorted(explicit) if p not in covered]  # empty directories: the last part
    return [_with_directories(part, explicit) for part in parts]


def content_size(entries: Sequence[Entry]) -> int:
    """The bytes of the regular files among ``entries`` (what a part's size is measured in)."""
    return sum(e.size for e in entries if e.kind is EntryKind.FILE)


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _with_directories(part: list[Entry], explicit: dict[str, Entry]) -> list[Entry]:
    """``part`` plus the explicit directories its paths lie under, so it stands alone as in the unsplit layer."""
    needed = {a for e in part for a in _ancestors(e.path) if a in explicit}
    return [*(explicit[p] for p in sorted(needed)), *part]
