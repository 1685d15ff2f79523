"""Byte sizes as users write them: ``512``, ``64K``, ``256M``, ``1.5G`` (binary units; ``MiB`` and ``MB`` alike)."""

from __future__ import annotations

import re

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """The number of bytes ``text`` names (a positive size; binary units), else ValueError."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError("not a size (e.g. 256M, 1G, 1048576)")
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size <= 0:
        raise ValueError("must be more than 0 bytes")
    return size
