"""Lock records for Debian packages: what was resolved, from which signed snapshot, and how to read it back."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ocibuild.errors import BuildError
from ocibuild.oci.atomic import write_atomic
from ocibuild.oci.canonical import canonical_json
from ocibuild.sources.debian.index import PackageRecord

LOCK_VERSION = 1


@dataclass(frozen=True)
class LockedPackage:
    """One exact .deb: enough to download and verify it without any index."""

    name: str
    version: str
    architecture: str
    filename: str
    url: str
    sha256: str
    size: int

    @classmethod
    def from_record(cls, rec: PackageRecord) -> LockedPackage:
        url = f"{rec.base_url}/{rec.filename}"
        return cls(rec.name, rec.version, rec.architecture, rec.filename, url, rec.sha256, rec.size)

    def as_record(self) -> PackageRecord:
        """A PackageRecord standing for this installed package (only name and version matter to the resolver)."""
        base = self.url[: -len(self.filename) - 1]
        return PackageRecord(
            self.name, self.version, self.architecture, "", "", "", False, "", "", self.filename, self.sha256,
            self.size, base,
        )  # fmt: skip


@dataclass(frozen=True)
class ArchiveSnapshot:
    """The signed InRelease a resolution used: its suite, mirror, ``Date`` and digest (a store blob)."""

    url: str
    suite: str
    date: str
    inrelease: str


@dataclass(frozen=True)
class BaseLock:
    """A base image resolved for one platform."""

    name: str
    platform: str
    python: str
    interpreter: str
    definition_digest: str
    archives: tuple[ArchiveSnapshot, ...]
    packages: tuple[LockedPackage, ...]
    interpreter_pin: dict[str, str] = field(default_factory=dict)

    @property
    def arch(self) -> str:
        return debian_arch(self.platform)

    @property
    def snapshot_date(self) -> str:
        """The ``Date`` of the first (main) suite's InRelease."""
        return self.archives[0].date if self.archives else ""

    def section(self) -> dict[str, Any]:
        return {
            "definition_digest": self.definition_digest,
            "archives": [asdict(a) for a in self.archives],
            "packages": [asdict(p) for p in self.packages],
            "interpreter": dict(self.interpreter_pin),
        }


def base_section(lock: BaseLock) -> dict[str, Any]:
    """``lock`` as one platform's entry of the ``"base"`` section of ``ocibuild.lock``."""
    return {"name": lock.name, "python": lock.python, "interpreter_kind": lock.interpreter, **lock.section()}


def base_lock_from_section(section: dict[str, Any], platform: str) -> BaseLock:
    """The BaseLock a project lock pins for ``platform`` (a damaged entry is a one-line error)."""
    try:
        return BaseLock(
            name=section["name"],
            platform=normalize_platform(platform),
            python=section["python"],
            interpreter=section["interpreter_kind"],
            definition_digest=section["definition_digest"],
            archives=archives_from(section["archives"]),
            packages=packages_from(section["packages"]),
            interpreter_pin=dict(section.get("interpreter", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BuildError(
            f'ocibuild.lock: invalid "base" entry for {platform} ({exc.__class__.__name__}: {exc})'
        ) from None


def debian_arch(platform: str) -> str:
    """``linux/amd64`` -> ``amd64``; ``linux/arm64[/v8]`` -> ``arm64``."""
    parts = platform.split("/")
    if len(parts) < 2 or parts[0] != "linux" or parts[1] not in ("amd64", "arm64"):
        raise BuildError(f"unsupported platform {platform!r} for a Debian base (use linux/amd64 or linux/arm64)")
    return parts[1]


def normalize_platform(platform: str) -> str:
    return f"linux/{debian_arch(platform)}"


def packages_from(rows: list[dict[str, Any]]) -> tuple[LockedPackage, ...]:
    return tuple(LockedPackage(**{**row, "size": int(row["size"])}) for row in rows)


def archives_from(rows: list[dict[str, Any]]) -> tuple[ArchiveSnapshot, ...]:
    return tuple(ArchiveSnapshot(**row) for row in rows)


def write_lock(lock: BaseLock, path: Path) -> None:
    """Write (or update) ``lock``'s platform in the lock file at ``path``; other platforms are kept."""
    path = Path(path)
    doc: dict[str, Any] = {"version": LOCK_VERSION, "name": lock.name, "python": lock.python, "platforms": {}}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("name") == lock.name:
            doc["platforms"] = old.get("platforms", {})
    doc["interpreter"] = lock.interpreter
    doc["platforms"][lock.platform] = lock.section()
    write_atomic(path, canonical_json(doc) + b"\n")


def read_lock(path: Path, platform: str = "linux/amd64") -> BaseLock:
    """The BaseLock for ``platform`` from the lock file at ``path``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BuildError(f"{path}: no lock file; run `ocibuild lock` to resolve the base image") from None
    except ValueError as exc:
        raise BuildError(f"{path}: not a valid lock file ({exc})") from None
    if doc.get("version") != LOCK_VERSION:
        raise BuildError(f"{path}: lock version {doc.get('version')!r} is not supported; run `ocibuild lock`")
    platform = normalize_platform(platform)
    section = doc.get("platforms", {}).get(platform)
    if section is None:
        raise BuildError(f"{path}: nothing locked for {platform}; run `ocibuild lock --platform {platform}`")
    return BaseLock(
        name=doc["name"],
        platform=platform,
        python=doc["python"],
        interpreter=doc.get("interpreter", "debian"),
        definition_digest=section["definition_digest"],
        archives=archives_from(section["archives"]),
        packages=packages_from(section["packages"]),
        interpreter_pin=dict(section.get("interpreter", {})),
    )
