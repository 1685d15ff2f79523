"""Just enough of PEP 440 specifiers to ask which rows of a compatibility table a requirement line admits.

``satisfies("2.4.1", "~=2.4")`` is True; release segments only (a local ``+cu121`` or pre-release tag is ignored),
which is all the torch, TensorFlow and framework rows of ``base-images/*.json`` carry.
"""

from __future__ import annotations

import re

_CLAUSE = re.compile(r"^\s*(===|~=|==|!=|>=|<=|>|<)\s*([0-9][0-9A-Za-z.*+!-]*)\s*$")
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_SPEC = re.compile(r"(===|~=|==|!=|>=|<=|>|<)\s*[0-9][^\s,;#]*")


def release(version: str) -> tuple[int, ...]:
    """The numeric release segment of ``version`` (``2.4.1+cu121`` -> (2, 4, 1))."""
    head = re.match(r"^\s*v?(\d+(?:\.\d+)*)", version.split("+", 1)[0])
    return tuple(int(p) for p in head.group(1).split(".")) if head else ()


def _pad(parts: tuple[int, ...], size: int) -> tuple[int, ...]:
    return parts + (0,) * (size - len(parts))


def _clause(version: tuple[int, ...], op: str, target: str) -> bool:
    if target.endswith(".*"):
        prefix = release(target[:-2])
        same = _pad(version, len(prefix))[: len(prefix)] == prefix
        return same if op == "==" else not same if op == "!=" else False
    want = release(target)
    size = max(len(version), len(want))
    left, right = _pad(version, size), _pad(want, size)
    if op == "~=":
        prefix = want[:-1] if len(want) > 1 else want
        return left >= right and _pad(version, len(prefix))[: len(prefix)] == prefix
    return {
        "==": left == right,
        "===": left == right,
        "!=": left != right,
        ">=": left >= right,
        "<=": left <= right,
        ">": left > right,
        "<": left < right,
    }[op]


def specifier_of(requirement_line: str) -> str:
    """The version specifier of a requirement line (``torch>=2.1,<3 ; python_version>'3'`` -> ``>=2.1,<3``)."""
    head = requirement_line.split(";", 1)[0].split(" #", 1)[0]
    return ",".join(m.group(0).replace(" ", "") for m in _SPEC.finditer(head))


def satisfies(version: str, specifier: str) -> bool:
    """Whether ``version`` meets every clause of ``specifier`` (an empty specifier admits everything)."""
    parts = release(version)
    for raw in filter(None, (c.strip() for c in specifier.split(","))):
        match = _CLAUSE.match(raw)
        if match is None or not _clause(parts, match.group(1), match.group(2)):
            return False
    return True


def requirement_specifiers(requirement_lines: list[str]) -> dict[str, str]:
    """Map each requirement's normalised name to its version specifier ("" when it has none)."""
    specs: dict[str, str] = {}
    for raw in requirement_lines:
        line = raw.split(" #", 1)[0].strip()
        match = NAME.match(line) if line and not line.startswith(("#", "-")) else None
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            specs.setdefault(name, specifier_of(line[match.end() :].split("]", 1)[-1]))
    return specs
