"""Hermetic Debian base images: declarative definitions, signed-index resolution into locks, and layers.

- ``load_base_definition`` picks ``base-images/<suite>-py<X.Y>.yaml`` for a cog.yaml ``python_version``;
- ``lock_base`` resolves a definition for one platform against gpgv-verified indexes (network);
- ``read_lock`` reads a bundled seed lock (``base-images/*.lock.json``, written only by maintainers with
  ``scripts/seed_base_locks.py``); a project pins its base in ``ocibuild.lock`` (``base_section``/``from_section``);
- ``base_recipes`` say how to turn a lock into layers (downloads verified by sha256, no maintainer scripts, fixups);
- ``resolve_system_packages`` resolves cog.yaml ``system_packages`` against the same archives, pinned in the
  ``"debian"`` section of ``ocibuild.lock``; ``system_packages_recipe`` makes their layer from that section.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import requests

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.canonical import canonical_json
from ocibuild.oci.compression import Compression
from ocibuild.oci.entries import Entry
from ocibuild.oci.layer import LayerBlob, LayerRecipe
from ocibuild.oci.store import Store
from ocibuild.resources import data_dir
from ocibuild.sources.debian import fixups, interpreter, rootfs
from ocibuild.sources.debian.index import DEFAULT_KEYRING, Archive, PackageRecord, fetch_release, load_packages
from ocibuild.sources.debian.lock import (
    ArchiveSnapshot,
    BaseLock,
    LockedPackage,
    archives_from,
    base_lock_from_section,
    base_section,
    debian_arch,
    normalize_platform,
    packages_from,
    read_lock,
    write_lock,
)
from ocibuild.sources.debian.resolve import ResolveError, Universe, UnknownPackageError, resolve
from ocibuild.sources.debian.ubuntu_names import debian_name

__all__ = [
    "BaseDefinition",
    "BaseLock",
    "LockedPackage",
    "SystemPackagesLock",
    "base_layers",
    "base_lock_from_section",
    "base_recipes",
    "base_section",
    "interpreter",
    "load_base_definition",
    "load_lock",
    "lock_base",
    "read_lock",
    "read_section",
    "resolve_system_packages",
    "shipped_python",
    "system_packages_layer",
    "system_packages_recipe",
    "write_lock",
]

RECIPE = "debian-rootfs/2"
DEFAULT_SUITES = {"3.10": "bookworm", "3.11": "bookworm", "3.12": "bookworm", "3.13": "trixie", "3.14": "sid"}
PBS = "python-build-standalone"
SUBSTITUTED = "substituted"
"""A platform's system_packages names that Debian spells otherwise: {Ubuntu's name: the Debian package installed}."""


def base_images_dir() -> Path:
    """``base-images/`` of a checkout, or the copy packaged as ``ocibuild/_data/base-images``."""
    return data_dir("base-images")


@dataclass(frozen=True)
class BaseDefinition:
    """A base image: Debian archives and root packages, and where its Python comes from."""

    name: str
    python: str
    interpreter: str
    archives: tuple[Archive, ...]
    architectures: tuple[str, ...]
    packages: tuple[str, ...]
    path: Path
    keyring: Path = DEFAULT_KEYRING

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(f"{self.name}.lock.json")

    @property
    def digest(self) -> str:
        """Identifies what a lock was resolved from; a lock with another digest is stale."""
        spec = {
            "archives": [asdict(a) for a in self.archives],
            "interpreter": self.interpreter,
            "packages": list(self.packages),
            "python": self.python,
        }
        return "sha256:" + hashlib.sha256(canonical_json(spec)).hexdigest()

    @property
    def site_packages(self) -> str:
        """Where third-party distributions go in the image (no leading ``/``)."""
        leaf = "site-packages" if self.interpreter == PBS else "dist-packages"
        return f"usr/local/lib/python{self.python}/{leaf}"


def _definition_from(path: Path) -> BaseDefinition:
    try:
        doc = yaml.safe_load(path.read_text())
        components = tuple(doc.get("components", ["main"]))
        archives = tuple(
            Archive(entry["url"], suite, components) for entry in doc["archives"] for suite in entry["suites"]
        )
        return BaseDefinition(
            name=doc["name"],
            python=str(doc["python"]),
            interpreter=doc.get("interpreter", "debian"),
            archives=archives,
            architectures=tuple(doc["architectures"]),
            packages=tuple(doc["packages"]),
            path=path,
            keyring=Path(doc.get("keyring", DEFAULT_KEYRING)),
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise BuildError(f"{path}: invalid base image definition ({exc.__class__.__name__}: {exc})") from None


def load_base_definition(python_version: str, suite: str | None = None) -> BaseDefinition:
    """The base for a cog.yaml ``python_version`` (``3.11`` or ``3.11.4``), optionally on another ``suite``."""
    minor = ".".join(str(python_version).split(".")[:2])
    suite = suite or DEFAULT_SUITES.get(minor)
    path = base_images_dir() / f"{suite}-py{minor}.yaml"
    if suite is None or not path.is_file():
        known = sorted(p.name.removesuffix(".yaml") for p in base_images_dir().glob("*-py*.yaml"))
        raise UserInputError(
            f"cog.yaml: python_version {python_version!r}: no base image (available: {', '.join(known)})"
        )
    return _definition_from(path)


def load_lock(defn: BaseDefinition, platform: str) -> BaseLock:
    """The lock next to ``defn`` for ``platform``; refuses a lock resolved from another definition."""
    lock = read_lock(defn.lock_path, platform)
    if lock.definition_digest != defn.digest:
        raise BuildError(f"{defn.lock_path}: stale for {defn.path.name}; run `ocibuild lock` to re-resolve")
    return lock


def _universe(
    session: requests.Session, snapshots: Sequence[tuple[Archive, str]], arch: str, store: Store, keyring: Path
) -> tuple[Universe, tuple[ArchiveSnapshot, ...]]:
    """Verified indexes of every archive (each at its pinned InRelease when the store still has it)."""
    records: list[PackageRecord] = []
    used = []
    for archive, pinned in snapshots:
        release = fetch_release(session, archive, store, keyring, pinned)
        for component in archive.components:
            records += load_packages(session, release, component, arch, store)
        used.append(ArchiveSnapshot(archive.url, archive.suite, release.date, release.digest))
    return Universe.from_records(records, arch), tuple(used)


def lock_base(defn: BaseDefinition, store: Store, platform: str) -> BaseLock:
    """Resolve ``defn`` for ``platform`` against the archives now (network; InRelease checked with gpgv)."""
    platform = normalize_platform(platform)
    arch = debian_arch(platform)
    if arch not in defn.architectures:
        raise BuildError(f"{defn.path.name}: {platform} is not among its architectures {list(defn.architectures)}")
    import requests

    with requests.Session() as session:
        universe, archives = _universe(session, [(a, "") for a in defn.archives], arch, store, defn.keyring)
    try:
        records = resolve(universe, defn.packages)
    except UnknownPackageError as exc:
        raise BuildError(f"{defn.path.name}: unknown Debian package {exc.name!r} in {archives[0].suite}") from None
    except ResolveError as exc:
        raise BuildError(f"{defn.path.name}: {exc}") from None
    pin = interpreter.pin_interpreter(defn.python, arch) if defn.interpreter == PBS else {}
    return BaseLock(
        name=defn.name,
        platform=platform,
        python=defn.python,
        interpreter=defn.interpreter,
        definition_digest=defn.digest,
        archives=archives,
        packages=tuple(LockedPackage.from_record(r) for r in records),
        interpreter_pin=pin,
    )


def _key(kind: str, spec: dict[str, Any]) -> str:
    return f"{RECIPE}|{kind}|" + hashlib.sha256(canonical_json(spec)).hexdigest()


def _ca_digests(extra_ca_certs: Sequence[Path]) -> list[str]:
    try:
        return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in extra_ca_certs]
    except OSError as exc:
        raise UserInputError(f"cannot read CA certificate {exc.filename}: {exc.strerror}") from None


def shipped_python(lock: BaseLock) -> str | None:
    """The upstream version (``3.11.2``) of the Debian interpreter package ``lock`` pins, if any."""
    package = next((p for p in lock.packages if p.name == f"python{lock.python}-minimal"), None)
    match = re.match(r"(?:\d+:)?(\d+\.\d+\.\d+)", package.version) if package else None
    return match.group(1) if match else None


def base_recipes(
    lock: BaseLock,
    store: Store,
    source_date_epoch: int,
    extra_ca_certs: Sequence[Path] = (),
) -> list[LayerRecipe]:
    """How to make the base layers of ``lock``: the Debian rootfs, then the interpreter when it is not Debian's."""
    ld_cache = fixups.ld_cache_supported(lock.arch)
    python_link = f"python{lock.python}" if lock.interpreter == "debian" else ""
    spec = {
        "packages": [p.sha256 for p in lock.packages],
        "arch": lock.arch,
        "python_link": python_link,
        "ca": _ca_digests(extra_ca_certs),
        "ld_cache": ld_cache,
    }

    def entries(_stack: contextlib.ExitStack) -> list[Entry]:
        tree, _, _ = rootfs.build_rootfs(
            lock.packages,
            store,
            lock.arch,
            python_link=python_link,
            extra_ca_certs=extra_ca_certs,
            ld_cache=ld_cache,
        )
        return list(tree)

    recipes = [LayerRecipe(_key("base", spec), entries, source_date_epoch)]
    if lock.interpreter == PBS:
        recipes.append(interpreter.interpreter_recipe(lock.interpreter_pin, store, source_date_epoch))
    return recipes


def base_layers(
    lock: BaseLock,
    store: Store,
    source_date_epoch: int,
    extra_ca_certs: Sequence[Path] = (),
    compression: Compression = Compression.GZIP,
) -> list[LayerBlob]:
    """The base layers of ``lock``, materialised (from the store when known)."""
    return [r.materialise(store, compression) for r in base_recipes(lock, store, source_date_epoch, extra_ca_certs)]


@dataclass(frozen=True)
class SystemPackagesLock:
    """cog.yaml ``system_packages`` resolved on top of one base, per platform."""

    base: str
    base_digest: str
    requested: tuple[str, ...]
    platforms: dict[str, dict[str, Any]]

    def packages(self, platform: str) -> tuple[LockedPackage, ...]:
        return packages_from(self.platforms[platform]["packages"])

    def section(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "base_digest": self.base_digest,
            "requested": list(self.requested),
            "platforms": {p: self.platforms[p] for p in sorted(self.platforms)},
        }


def read_section(section: dict[str, Any]) -> SystemPackagesLock:
    """A SystemPackagesLock from the ``"debian"`` section of ``ocibuild.lock``."""
    try:
        platforms = {
            p: {"archives": list(v["archives"]), "packages": list(v["packages"])}
            | ({SUBSTITUTED: {str(k): str(n) for k, n in v[SUBSTITUTED].items()}} if SUBSTITUTED in v else {})
            for p, v in section["platforms"].items()
        }
        for value in platforms.values():
            packages_from(value["packages"])
            archives_from(value["archives"])
        return SystemPackagesLock(section["base"], section["base_digest"], tuple(section["requested"]), platforms)
    except (KeyError, TypeError, AttributeError) as exc:
        raise BuildError(f'ocibuild.lock: invalid "debian" section ({exc.__class__.__name__}: {exc})') from None


def _base_digest(base_lock: BaseLock) -> str:
    return "sha256:" + hashlib.sha256(canonical_json([p.sha256 for p in base_lock.packages])).hexdigest()


def _resolve_system(base_lock: BaseLock, requested: Sequence[str], store: Store) -> dict[str, Any]:
    snapshots = [(Archive(a.url, a.suite), a.inrelease) for a in base_lock.archives]
    import requests

    with requests.Session() as session:
        universe, archives = _universe(session, snapshots, base_lock.arch, store, DEFAULT_KEYRING)
    installed = [p.as_record() for p in base_lock.packages]
    substituted: dict[str, str] = {}
    names = list(requested)
    while True:
        try:
            records = resolve(universe, names, installed=installed)
            break
        except UnknownPackageError as exc:
            other = None if exc.name in substituted.values() else debian_name(exc.name, universe.candidates)
            if other is None:
                closest = f" (closest: {', '.join(exc.closest)})" if exc.closest else ""
                message = f"unknown Debian package '{exc.name}'{closest}"
                raise UserInputError(f"cog.yaml: build.system_packages: {message}") from None
            substituted[exc.name] = other
            names = [other if n == exc.name else n for n in names]
        except ResolveError as exc:
            raise UserInputError(f"cog.yaml: build.system_packages: {exc}") from None
    section = {
        "archives": [asdict(a) for a in archives],
        "packages": [asdict(LockedPackage.from_record(r)) for r in records],
    }
    return {**section, SUBSTITUTED: substituted} if substituted else section


def substitutions(section: dict[str, Any], platform: str) -> dict[str, str]:
    """The names of ``section`` (a ``"debian"`` lock section) that were installed as another package on ``platform``."""
    return dict((section.get("platforms") or {}).get(platform, {}).get(SUBSTITUTED) or {})


def resolve_system_packages(
    base_lock: BaseLock, packages: Sequence[str], store: Store, lock_section: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``"debian"`` lock section for ``packages`` on ``base_lock``'s platform.

    A ``lock_section`` pinned for the same base and package list is kept as is (no network); otherwise the
    packages are resolved against the base's archives (its pinned InRelease when the store still has it).
    """
    requested = tuple(sorted(set(packages)))
    digest = _base_digest(base_lock)
    current = SystemPackagesLock(base_lock.name, digest, requested, {})
    pinned = read_section(lock_section) if lock_section else None
    if pinned is not None and (pinned.base, pinned.base_digest, pinned.requested) == (
        base_lock.name,
        digest,
        requested,
    ):
        current = pinned
    if requested and base_lock.platform not in current.platforms:
        store.require_online(f"the system_packages resolution for {base_lock.platform}")
        current.platforms[base_lock.platform] = _resolve_system(base_lock, requested, store)
    return current.section()


def system_packages_recipe(
    base_lock: BaseLock, section: dict[str, Any], store: Store, source_date_epoch: int
) -> LayerRecipe | None:
    """How to make the layer of the packages ``section`` pins for ``base_lock``'s platform (None: nothing to add)."""
    extras = read_section(section).packages(base_lock.platform) if section.get("requested") else ()
    if not extras:
        return None
    ld_cache = fixups.ld_cache_supported(base_lock.arch)
    spec = {
        "base": [p.sha256 for p in base_lock.packages],
        "extras": [p.sha256 for p in extras],
        "arch": base_lock.arch,
        "ld_cache": ld_cache,
    }

    def entries(_stack: contextlib.ExitStack) -> list[Entry]:
        tree, contents, alternatives = rootfs.build_rootfs(
            (*base_lock.packages, *extras), store, base_lock.arch, ld_cache=ld_cache
        )
        wanted = {"var/lib/dpkg/status", "etc/ld.so.cache"}
        for pkg, c in zip(extras, contents[len(base_lock.packages) :], strict=True):
            wanted.update(tree.resolve(m.path) for m in c.members)
            wanted.update(alternatives.get(pkg.name, ()))
            stem = fixups.info_name(fixups.control_fields(c))
            wanted.update(f"var/lib/dpkg/info/{stem}.{suffix}" for suffix in ("list", "md5sums", "conffiles"))
        return [tree.entries[p] for p in sorted(wanted) if p in tree.entries]

    return LayerRecipe(_key("system", spec), entries, source_date_epoch)


APT_CONF = b'APT::Sandbox::User "root";\n'
"""apt drops to its ``_apt`` user to download; the build sandbox maps root only (and the user does not exist)."""


def apt_sources(base_lock: BaseLock) -> bytes:
    """``sources.list`` naming the base's archives and suites (their current indexes: not the pinned snapshot)."""
    return "".join(f"deb {a.url} {a.suite} main\n" for a in base_lock.archives).encode()


def toolbox_recipe(
    base_lock: BaseLock,
    section: dict[str, Any],
    system: dict[str, Any] | None,
    store: Store,
    source_date_epoch: int,
) -> LayerRecipe | None:
    """The build-only toolbox layer on ``base_lock`` and its ``system`` packages: the toolbox packages' files, an
    ld.so.cache covering all three, and apt's sources and config. It has no dpkg database, so apt and dpkg in
    build.run see what the image has (base and system_packages), and what they install is written to the layer
    of the command even when the toolbox already had it."""
    tools = read_section(section).packages(base_lock.platform) if section.get("requested") else ()
    if not tools:
        return None
    below = read_section(system).packages(base_lock.platform) if system and system.get("requested") else ()
    known = {p.name for p in (*base_lock.packages, *below)}
    tools = tuple(p for p in tools if p.name not in known)
    ld_cache = fixups.ld_cache_supported(base_lock.arch)
    spec = {
        "base": [p.sha256 for p in base_lock.packages],
        "system": [p.sha256 for p in below],
        "tools": [p.sha256 for p in tools],
        "arch": base_lock.arch,
        "ld_cache": ld_cache,
        "apt": [apt_sources(base_lock).decode(), APT_CONF.decode()],
    }

    def entries(_stack: contextlib.ExitStack) -> list[Entry]:
        packages = (*base_lock.packages, *below, *tools)
        tree, contents, alternatives = rootfs.build_rootfs(packages, store, base_lock.arch, ld_cache=ld_cache)
        wanted = {"etc/ld.so.cache"}
        for pkg, c in zip(tools, contents[len(packages) - len(tools) :], strict=True):
            wanted.update(tree.resolve(m.path) for m in c.members)
            wanted.update(alternatives.get(pkg.name, ()))
        kept = [tree.entries[p] for p in sorted(wanted) if p in tree.entries and not p.startswith("var/lib/dpkg/")]
        apt = [
            Entry.file("etc/apt/sources.list", apt_sources(base_lock)),
            Entry.file("etc/apt/apt.conf.d/99ocibuild-sandbox", APT_CONF),
        ]
        return [e for e in kept if e.path not in {a.path for a in apt}] + apt

    return LayerRecipe(_key("toolbox", spec), entries, source_date_epoch)


def system_packages_layer(
    base_lock: BaseLock,
    packages: list[str],
    store: Store,
    source_date_epoch: int,
    lock_section: dict[str, Any] | None = None,
    compression: Compression = Compression.GZIP,
) -> tuple[LayerBlob | None, dict[str, Any]]:
    """Resolve (or keep the pinned) ``packages`` and materialise their layer: (layer or None, "debian" section)."""
    section = resolve_system_packages(base_lock, packages, store, lock_section)
    recipe = system_packages_recipe(base_lock, section, store, source_date_epoch)
    return (recipe.materialise(store, compression) if recipe else None), section
