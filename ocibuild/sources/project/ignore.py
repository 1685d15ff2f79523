"""``.dockerignore`` / ``.cogignore`` rules with Docker's (BuildKit's) semantics.

- A line whose first character is ``#`` is a comment; other lines are trimmed, blank ones skipped.
- ``!`` re-includes; later rules win over earlier ones.
- Patterns are cleaned like Go's ``filepath.Clean`` (``./``, trailing ``/`` and ``a/..`` go away) and a
  leading ``/`` is dropped: every pattern is relative to the context root. One that still climbs out (``..``)
  is an error.
- ``*`` matches within one path component, ``?`` one character other than ``/``, ``[...]`` a class
  (``[!...]``/``[^...]`` negated), ``**`` any number of components, ``\\`` escapes the next character.
- A pattern matches a path when it matches the whole path or any of its parent directories, so ``build``
  excludes everything under ``build/`` and ``!build/keep.txt`` brings one file back.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import UserInputError

IGNORE_FILES = (".dockerignore", ".cogignore")


@dataclass(frozen=True)
class Rule:
    pattern: str
    regex: re.Pattern[str]
    negated: bool


def translate(pattern: str) -> str:
    """The regex (anchored at both ends) of one cleaned pattern."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(?:.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2 if i + 1 < n and pattern[i + 1] in "!^" else i + 1)
            if end < 0:
                raise ValueError("unterminated character class")
            body = pattern[i + 1 : end]
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\").replace("[", "\\[") + "]")
            i = end
        elif ch == "\\":
            i += 1
            if i >= n:
                raise ValueError("trailing backslash")
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return "^" + "".join(out) + "$"


def clean_pattern(pattern: str) -> str:
    """Go's ``filepath.Clean`` on a pattern, then relative to the root (a leading ``/`` dropped)."""
    cleaned = posixpath.normpath(pattern)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if len(cleaned) > 1 and cleaned.startswith("/"):
        cleaned = cleaned[1:]
    return cleaned


def compile_rule(raw: str, where: str) -> Rule:
    """One rule from a trimmed, non-comment line; ``where`` (``file:line``) prefixes errors."""
    negated = raw.startswith("!")
    text = raw[1:].strip() if negated else raw
    if not text:
        raise UserInputError(f"{where}: illegal exclusion pattern {raw!r}")
    pattern = clean_pattern(text)
    if pattern == ".." or pattern.startswith("../"):
        raise UserInputError(f"{where}: pattern {raw!r} points outside the project")
    try:
        regex = re.compile(translate(pattern), re.DOTALL)
    except (ValueError, re.error) as e:
        raise UserInputError(f"{where}: bad pattern {raw!r}: {e}") from None
    return Rule(pattern, regex, negated)


def parse_lines(lines: Iterable[str], source: str) -> list[Rule]:
    """Rules from the lines of an ignore file (comments, blanks and a UTF-8 BOM handled as Docker does)."""
    rules = []
    for number, line in enumerate(lines, 1):
        if number == 1:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        text = line.strip()
        if text:
            rules.append(compile_rule(text, f"{source}:{number}"))
    return rules


class IgnoreRules:
    """An ordered list of rules; ``excluded(path)`` answers for one context-relative POSIX path."""

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.rules = tuple(rules)
        self.has_negations = any(rule.negated for rule in self.rules)

    @classmethod
    def from_project(cls, project_dir: Path) -> IgnoreRules:
        """The rules of ``.dockerignore`` then ``.cogignore`` (later rules win) in ``project_dir``."""
        rules: list[Rule] = []
        for name in IGNORE_FILES:
            path = Path(project_dir) / name
            if path.is_file():
                rules += parse_lines(path.read_text(encoding="utf-8").splitlines(), name)
        return cls(rules)

    @classmethod
    def from_patterns(cls, patterns: Iterable[str], source: str = "patterns") -> IgnoreRules:
        return cls(parse_lines(patterns, source))

    def excluded(self, path: str) -> bool:
        parts = path.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for rule in self.rules:
            if rule.negated != result:
                continue
            if any(rule.regex.match(candidate) for candidate in candidates):
                result = not rule.negated
        return result

    def prunes(self, directory: str) -> bool:
        """True when nothing under an excluded ``directory`` can be re-included, so the walk may skip it."""
        return not self.has_negations and self.excluded(directory)
