"""Wheel compatibility tags for a target: which wheels fit, and which one is the best fit."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from ocibuild.sources.python.target import PythonTarget

Tag = tuple[str, str, str]
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def wheel_tags(filename: str) -> set[Tag]:
    """The (python, abi, platform) tags a wheel file name claims, with compressed tag sets expanded."""
    parts = filename[: -len(".whl")].split("-") if filename.endswith(".whl") else []
    if len(parts) not in (5, 6):
        raise ValueError(f"not a wheel file name: {filename}")
    pythons, abis, platforms = parts[-3:]
    return {(p, a, s) for p in pythons.split(".") for a in abis.split(".") for s in platforms.split(".")}


def _platforms(target: PythonTarget) -> list[str]:
    arch = target.arch
    major, minor = target.glibc_tuple
    lowest = 5 if arch in ("x86_64", "i686") else 17
    names: list[str] = []
    for m in range(minor, lowest - 1, -1):
        names.append(f"manylinux_{major}_{m}_{arch}")
        legacy = _LEGACY_MANYLINUX.get((major, m))
        if legacy:
            names.append(f"{legacy}_{arch}")
    return names


@cache
def compatible_tags(target: PythonTarget) -> dict[Tag, int]:
    """Every tag the target accepts, mapped to its rank (0 is the most specific), as in the wheel spec."""
    major, minor = target.version_tuple
    cp = f"cp{major}{minor}"
    platforms = _platforms(target)
    ordered: list[Tag] = [(cp, cp, p) for p in platforms]
    ordered += [(f"cp{major}{m}", "abi3", p) for m in range(minor, 1, -1) for p in platforms]
    ordered += [(cp, "none", p) for p in platforms]
    generic = [f"py{major}{minor}", f"py{major}"] + [f"py{major}{m}" for m in range(minor - 1, -1, -1)]
    ordered += [(py, "none", p) for py in generic for p in platforms]
    ordered += [(cp, "none", "any")] + [(py, "none", "any") for py in generic]
    ranks: dict[Tag, int] = {}
    for tag in ordered:
        ranks.setdefault(tag, len(ranks))
    return ranks


def wheel_rank(filename: str, target: PythonTarget) -> int | None:
    """The best rank among the wheel's tags for ``target``, or None when it does not fit."""
    ranks = compatible_tags(target)
    found = [ranks[t] for t in wheel_tags(filename) if t in ranks]
    return min(found) if found else None


def best_wheel(filenames: Iterable[str], target: PythonTarget) -> str | None:
    """The wheel file name that fits ``target`` most specifically (first wins on ties), or None."""
    best: tuple[int, str] | None = None
    for name in filenames:
        rank = wheel_rank(name, target)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, name)
    return best[1] if best else None
