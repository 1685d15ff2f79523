"""Read pip requirements (a requirements file or cog.yaml's python_packages) into what the resolver needs.

Supported: requirement lines with extras, version specifiers, markers and ``--hash`` options; URLs; local wheel
and sdist paths inside the project; ``-r``/``-c`` includes; ``--index-url``, ``--extra-index-url``,
``--find-links``, ``--pre``, ``--only-binary``, ``--no-binary`` (``--trusted-host``/``--prefer-binary`` are
accepted and ignored). ``cog`` and ``coglet`` are dropped with a warning: the image's bundled runner provides cog.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.errors import UserInputError

ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
RUNNER_PROVIDED = ("cog", "coglet")
_REQUIREMENT = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[A-Za-z0-9._,\s-]*\])?\s*(.*)$")
_UNNAMED_URL = re.compile(r"^(?:(?:git|hg|svn|bzr)\+)?[a-z][a-z0-9+.-]*://", re.I)
_COMMENT = re.compile(r"(^|\s+)#.*$")
_VALUE_OPTIONS = {
    "-i": "index_url",
    "--index-url": "index_url",
    "--extra-index-url": "extra_index_urls",
    "-f": "find_links",
    "--find-links": "find_links",
    "--only-binary": "only_binary",
    "--no-binary": "no_binary",
    "-r": "requirement",
    "--requirement": "requirement",
    "-c": "constraint",
    "--constraint": "constraint",
    "--trusted-host": "",
}
_FLAG_OPTIONS = {"--pre": "pre", "--prefer-binary": ""}


def normalize_name(name: str) -> str:
    """The PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Requirement:
    """One requirement line; ``path`` is the project-relative file it names, if it is a local archive."""

    text: str
    location: str
    name: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Requirements:
    """Everything the resolver reads from a project's Python requirements."""

    project_dir: Path
    source: str = "requirements.txt"
    requirements: tuple[Requirement, ...] = ()
    constraints: tuple[Requirement, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    pre: bool = False
    only_binary: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()
    local_files: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def names(self) -> set[str]:
        """The normalised names of the direct requirements (local archives and URLs without a name excluded)."""
        return {r.name for r in self.requirements if r.name}

    def with_defaults(self, defaults: Sequence[str], location: str) -> Requirements:
        """These requirements plus each of ``defaults`` (PEP 508 lines) whose project they do not name already."""
        extra = []
        for line in defaults:
            name = normalize_name(re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0])
            if name not in self.names:
                extra.append(Requirement(line, location, name))
        return dataclasses.replace(self, requirements=(*self.requirements, *extra))

    def absolute(self, value: str) -> str:
        """A project-relative path (``./x``) as an absolute path; URLs and absolute paths unchanged."""
        if value.startswith("./"):
            return str(self.project_dir / value[2:])
        return value

    def uv_lines(self, constraints: bool = False) -> list[str]:
        """The lines of a requirements file for uv, with local archives as absolute paths."""
        chosen = self.constraints if constraints else self.requirements
        return [self.absolute(r.path) if r.path else r.text for r in chosen]

    def fingerprint_data(self) -> dict[str, object]:
        """What decides the resolution, independent of where the project lies on disk."""
        return {
            "requirements": [r.text for r in self.requirements],
            "constraints": [r.text for r in self.constraints],
            "index_url": self.index_url,
            "extra_index_urls": list(self.extra_index_urls),
            "find_links": list(self.find_links),
            "pre": self.pre,
            "only_binary": list(self.only_binary),
            "no_binary": list(self.no_binary),
            "local_files": [list(item) for item in self.local_files],
        }


class _Reader:
    """Accumulates the parsed state while walking a requirements file and its includes."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir.resolve()
        self.values: dict[str, list[str]] = {k: [] for k in ("index_url", "extra_index_urls", "find_links")}
        self.values.update(only_binary=[], no_binary=[])
        self.pre = False
        self.requirements: list[Requirement] = []
        self.constraints: list[Requirement] = []
        self.local_files: dict[str, str] = {}
        self.warnings: list[str] = []
        self.visited: set[Path] = set()

    def relative(self, path: Path, location: str) -> str:
        """``./<project-relative path>`` for a path that must lie inside the project."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.project_dir):
            raise UserInputError(f"{location}: {path} is outside the project directory")
        return "./" + resolved.relative_to(self.project_dir).as_posix()

    def read_file(self, path: Path, location: str, constraint: bool = False) -> None:
        rel = self.relative(path, location)
        if not path.is_file():
            raise UserInputError(f"{location}: {rel[2:]} does not exist")
        if path.resolve() in self.visited:
            return
        self.visited.add(path.resolve())
        for lineno, line in _logical_lines(path.read_text()):
            self.read_line(line, f"{rel[2:]}:{lineno}", path.parent, constraint)

    def read_line(self, line: str, location: str, base: Path, constraint: bool = False) -> None:
        line = _COMMENT.sub("", line).strip()
        if not line:
            return
        if line.startswith("-") and not line.startswith("--hash"):
            self.read_option(line, location, base)
        else:
            self.read_requirement(line, location, base, constraint)

    def read_option(self, line: str, location: str, base: Path) -> None:
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            raise UserInputError(f"{location}: {exc}") from None
        while tokens:
            option, _, value = tokens.pop(0).partition("=")
            if option in _FLAG_OPTIONS:
                self.pre = self.pre or _FLAG_OPTIONS[option] == "pre"
                continue
            if option in ("-e", "--editable"):
                raise UserInputError(f"{location}: editable requirements are not supported in an image")
            if option not in _VALUE_OPTIONS:
                raise UserInputError(f"{location}: unsupported option {option}")
            if not value:
                if not tokens:
                    raise UserInputError(f"{location}: {option} needs a value")
                value = tokens.pop(0)
            self.apply(_VALUE_OPTIONS[option], value, location, base)

    def apply(self, key: str, value: str, location: str, base: Path) -> None:
        if key in ("requirement", "constraint"):
            self.read_file(base / value, location, constraint=key == "constraint")
        elif key == "find_links":
            is_url = "://" in value
            self.values[key].append(value if is_url else self.relative(base / value, location))
        elif key == "index_url":
            self.values[key] = [value]
        elif key:
            self.values[key].append(value)

    def read_requirement(self, line: str, location: str, base: Path, constraint: bool) -> None:
        line = " ".join(line.split())
        head = line.split(";", 1)[0].split()[0]
        if "://" not in line and line.endswith(ARCHIVE_SUFFIXES) and (line.startswith((".", "/")) or "/" in line):
            head = line  # a local archive whose path has spaces (pip reads the whole line as the path)
        if head.startswith((".", "/")) or (head.endswith(ARCHIVE_SUFFIXES) and "://" not in head):
            self.read_local(head, line, location, base)
            return
        if _UNNAMED_URL.match(head):  # `git+https://host/repo@ref`, `https://host/x.whl`: uv finds the name
            (self.constraints if constraint else self.requirements).append(Requirement(line, location))
            return
        match = _REQUIREMENT.match(line)
        rest = match.group(3) if match else ""
        if match is None or (rest and rest[0] not in "<>=!~;@(-"):
            raise UserInputError(f"{location}: invalid requirement: {line!r}")
        name = normalize_name(match.group(1))
        if name in RUNNER_PROVIDED and not constraint:
            self.warnings.append(f"{location}: skipping {name!r}: the image's bundled runner provides cog")
            return
        (self.constraints if constraint else self.requirements).append(Requirement(line, location, name))

    def read_local(self, head: str, line: str, location: str, base: Path) -> None:
        if line.strip() != head:
            raise UserInputError(f"{location}: a local archive line takes no options, hashes or markers")
        path = base / head
        rel = self.relative(path, location)
        if path.is_dir():
            raise UserInputError(f"{location}: {head} is a directory; build a wheel and list the .whl file")
        if not head.endswith(ARCHIVE_SUFFIXES):
            raise UserInputError(f"{location}: {head} is not a wheel or sdist ({', '.join(ARCHIVE_SUFFIXES)})")
        if not path.is_file():
            raise UserInputError(f"{location}: {head} does not exist")
        self.local_files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        self.requirements.append(Requirement(rel, location, path=rel))

    def result(self, source: str) -> Requirements:
        index = self.values["index_url"]
        return Requirements(
            project_dir=self.project_dir,
            source=source,
            requirements=tuple(self.requirements),
            constraints=tuple(self.constraints),
            index_url=index[-1] if index else None,
            extra_index_urls=tuple(dict.fromkeys(self.values["extra_index_urls"])),
            find_links=tuple(dict.fromkeys(self.values["find_links"])),
            pre=self.pre,
            only_binary=tuple(self.values["only_binary"]),
            no_binary=tuple(self.values["no_binary"]),
            local_files=tuple(sorted(self.local_files.items())),
            warnings=tuple(self.warnings),
        )


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with backslash continuations joined."""
    pending: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = lineno
        if raw.endswith("\\") and not raw.lstrip().startswith("#"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        yield start, " ".join(pending)
        pending = []
    if pending:
        yield start, " ".join(pending)


def read_requirements(
    project_dir: Path, requirements_file: str | None = None, packages: list[str] | None = None
) -> Requirements:
    """Parse ``requirements_file`` (relative to the project) or cog.yaml's ``python_packages`` lines."""
    reader = _Reader(Path(project_dir))
    if requirements_file:
        reader.read_file(reader.project_dir / requirements_file, "cog.yaml: build.python_requirements")
        return reader.result(Path(requirements_file).as_posix())
    for index, line in enumerate(packages or []):
        reader.read_line(line, f"cog.yaml: build.python_packages[{index}]", reader.project_dir)
    return reader.result("cog.yaml python_packages")
