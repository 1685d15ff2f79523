"""Debian's package for a system_packages name that only Ubuntu has (Cog installs system_packages on Ubuntu).

A cog.yaml written for Cog may name a package Debian spells differently: ``debian_name`` finds Debian's, first in
an explicit table (``base-images/ubuntu-names.json``: names that differ by more than a soname, such as
libjpeg-turbo8 -> libjpeg62-turbo), then by the soname rule: a library package ``libNAME<N>`` whose only
counterpart in the archive is ``libNAME<M>`` (libtbb2 -> libtbb12, libavcodec58 -> libavcodec59, libssl1.1 ->
libssl3). The lock records each substitution and every build says it; a name with no counterpart stays an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from functools import cache

SONAME = re.compile(r"(lib[a-z][a-z0-9+.-]*?[a-z+-])(\d[\d.]*)(t64)?")
NOT_SUBSTITUTED = ("libpython",)
"""Stems never switched to another version: the interpreter's own library belongs to the image's Python."""


@cache
def _table() -> dict[str, str]:
    from ocibuild.resources import data_dir

    return json.loads((data_dir("base-images") / "ubuntu-names.json").read_text())["names"]


def debian_name(name: str, available: Collection[str]) -> str | None:
    """The package in ``available`` (the archive's names) that stands for Ubuntu's ``name``, or None."""
    listed = _table().get(name)
    if listed is not None:
        return listed if listed in available else None
    found = SONAME.fullmatch(name)
    if found is None or found.group(1).startswith(NOT_SUBSTITUTED):
        return None
    stem = found.group(1)
    others = sorted(n for n in available if n != name and (m := SONAME.fullmatch(n)) and m.group(1) == stem)
    return others[0] if len(others) == 1 else None
