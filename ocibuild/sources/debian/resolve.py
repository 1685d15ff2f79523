"""Dependency closure over Debian package records, the way apt would pick for a fresh single-arch install.

Pre-Depends and Depends are followed; in each clause an alternative already selected wins, else the first
alternative with a candidate (the highest version of a real package, or a provider of a virtual one) that
satisfies the version constraint. Multi-arch qualifiers ``:any``/``:native``/``:<arch>`` are honoured for a
single native architecture. Conflicts and Breaks are not checked (the roots are chosen to be co-installable).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from debian.deb822 import PkgRelation
from debian.debian_support import Version

from ocibuild.sources.debian.index import PackageRecord

_PRIORITY_RANK = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}
_OPS = {
    "<<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    "=": lambda c: c == 0,
    ">=": lambda c: c >= 0,
    ">>": lambda c: c > 0,
}


class ResolveError(Exception):
    """A name or dependency that the indexes cannot satisfy."""


class UnknownPackageError(ResolveError):
    """A requested name that is neither a package nor provided by one."""

    def __init__(self, name: str, closest: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.closest = closest


@cache
def parse_relations(raw: str) -> tuple[tuple[tuple[str, str, tuple[str, str] | None], ...], ...]:
    """``a (>= 1) | b:any, c`` -> clauses of (name, arch qualifier, (op, version) or None)."""
    return tuple(
        tuple((alt["name"], alt.get("archqual") or "", alt.get("version")) for alt in clause)
        for clause in PkgRelation.parse_relations(raw)
        if clause
    )


def version_satisfies(version: str, constraint: tuple[str, str] | None) -> bool:
    if constraint is None:
        return True
    op, wanted = constraint
    return _OPS[op](Version(version)._compare(Version(wanted)))


@dataclass
class Universe:
    """The candidate per package name (highest version across suites) and the providers of virtual names."""

    arch: str
    candidates: dict[str, PackageRecord]
    providers: dict[str, list[tuple[PackageRecord, str | None]]]

    @classmethod
    def from_records(cls, records: Iterable[PackageRecord], arch: str) -> Universe:
        candidates: dict[str, PackageRecord] = {}
        for rec in records:
            if rec.architecture not in (arch, "all"):
                continue
            current = candidates.get(rec.name)
            if current is None or Version(rec.version) > Version(current.version):
                candidates[rec.name] = rec
        providers: dict[str, list[tuple[PackageRecord, str | None]]] = {}
        for rec in candidates.values():
            if rec.provides:
                for clause in parse_relations(rec.provides):
                    name, _, ver = clause[0]
                    providers.setdefault(name, []).append((rec, ver[1] if ver else None))
        for options in providers.values():
            options.sort(key=lambda o: (_PRIORITY_RANK.get(o[0].priority, 9), o[0].name))
        return cls(arch, candidates, providers)

    def closest(self, name: str, n: int = 3) -> list[str]:
        pool = set(self.candidates) | set(self.providers)
        return difflib.get_close_matches(name, pool, n=n, cutoff=0.6)

    def _arch_ok(self, rec: PackageRecord, qualifier: str) -> bool:
        if qualifier in ("", "any", "native"):
            return True
        return qualifier == rec.architecture or (rec.architecture == "all" and qualifier == self.arch)

    def satisfiers(self, name: str, qualifier: str, constraint: tuple[str, str] | None) -> list[PackageRecord]:
        """Records that satisfy one alternative, real package first, then providers in preference order."""
        found = []
        rec = self.candidates.get(name)
        if rec is not None and self._arch_ok(rec, qualifier) and version_satisfies(rec.version, constraint):
            found.append(rec)
        for provider, provided in self.providers.get(name, ()):
            if not self._arch_ok(provider, qualifier):
                continue
            if constraint is None or (provided is not None and version_satisfies(provided, constraint)):
                found.append(provider)
        return found


def resolve(universe: Universe, roots: Sequence[str], installed: Iterable[PackageRecord] = ()) -> list[PackageRecord]:
    """The packages to add for ``roots`` (sorted by name), given those already ``installed``."""
    have = {rec.name: rec for rec in installed}
    chosen: dict[str, PackageRecord] = {}
    queue: list[PackageRecord] = []
    for name in roots:
        if name in have or name in chosen:
            continue
        options = universe.satisfiers(name, "", None)
        if not options:
            raise UnknownPackageError(name, universe.closest(name))
        pick = next((o for o in options if o.name in have or o.name in chosen), options[0])
        if pick.name not in have and pick.name not in chosen:
            chosen[pick.name] = pick
            queue.append(pick)
    while queue:
        rec = queue.pop(0)
        for field in (rec.pre_depends, rec.depends):
            for clause in parse_relations(field) if field else ():
                pick = _choose(universe, clause, have, chosen, rec)
                if pick is not None:
                    chosen[pick.name] = pick
                    queue.append(pick)
    return sorted(chosen.values(), key=lambda r: r.name)


def _choose(
    universe: Universe,
    clause: tuple[tuple[str, str, tuple[str, str] | None], ...],
    have: dict[str, PackageRecord],
    chosen: dict[str, PackageRecord],
    parent: PackageRecord,
) -> PackageRecord | None:
    """The record to add for one dependency clause, or None when a selected package already satisfies it."""
    first: PackageRecord | None = None
    for name, qualifier, constraint in clause:
        installed = have.get(name)
        if installed is not None and version_satisfies(installed.version, constraint):
            return None
        for option in universe.satisfiers(name, qualifier, constraint):
            if option.name in chosen or (option.name in have and option.name != name):
                return None
            if option.name not in have:
                first = first or option
    if first is None:
        text = " | ".join(f"{n}{':' + q if q else ''}{f' ({c[0]} {c[1]})' if c else ''}" for n, q, c in clause)
        raise ResolveError(f"{parent.name} {parent.version}: unsatisfiable dependency {text}")
    return first
