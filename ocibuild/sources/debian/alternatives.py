"""``update-alternatives --install`` calls of postinst scripts, replayed as the links dpkg would have made.

Only literal calls are understood (no shell variables); for each alternative name the highest priority wins (the
first package on a tie), as in dpkg's automatic mode. Links: ``LINK -> /etc/alternatives/NAME -> PATH``, for the
master and for each slave whose target exists; a path a package ships itself is never replaced.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ocibuild.oci.entries import Entry
from ocibuild.sources.debian.tree import RootTree

_CALL = re.compile(r"update-alternatives\s+--install\s")


@dataclass(frozen=True)
class Alternative:
    name: str
    priority: int
    links: tuple[tuple[str, str, str], ...]  # (link, name, path): the master first, then slaves


def parse_postinst(script: bytes) -> list[Alternative]:
    """The literal ``update-alternatives --install`` calls in a maintainer script."""
    text = script.decode("utf-8", "replace").replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        match = _CALL.search(line)
        if match is None or "$" in line or "`" in line:
            continue
        try:
            words = shlex.split(line[match.end() :], comments=True)
        except ValueError:
            continue
        if len(words) < 4 or not words[3].isdigit():
            continue
        links = [(words[0], words[1], words[2])]
        rest = words[4:]
        while len(rest) >= 4 and rest[0] == "--slave":
            links.append((rest[1], rest[2], rest[3]))
            rest = rest[4:]
        found.append(Alternative(words[1], int(words[3]), tuple(links)))
    return found


def apply_alternatives(tree: RootTree, scripts: Sequence[tuple[str, bytes]]) -> dict[str, list[str]]:
    """Create the winning alternatives' links for (package, postinst) pairs; returns package -> paths added."""
    best: dict[str, tuple[Alternative, str]] = {}
    for package, script in scripts:
        for alt in parse_postinst(script):
            if alt.name not in best or alt.priority > best[alt.name][0].priority:
                best[alt.name] = (alt, package)
    added: dict[str, list[str]] = {}
    for alt, package in (best[name] for name in sorted(best)):
        for number, (link, name, path) in enumerate(alt.links):
            target = tree.resolve(path.strip("/"))
            if target not in tree.entries:
                if number == 0:
                    break
                continue
            link_path, alt_path = link.strip("/"), f"etc/alternatives/{name}"
            if tree.resolve(link_path) in tree.entries:
                continue
            tree.add(Entry.symlink(alt_path, path))
            tree.add(Entry.symlink(link_path, f"/etc/alternatives/{name}"))
            added.setdefault(package, []).extend([tree.resolve(link_path), alt_path])
    return added
