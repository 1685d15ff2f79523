"""Resolve: the only phase that chooses versions. It turns cog.yaml and the previous ``ocibuild.lock`` into a
complete lock (base, system_packages, Python distributions, weights, recipe versions) for every platform.

Pinned sections are kept as they are; a missing or stale one is resolved (network) unless ``locked``, which
turns every would-be change into a one-line error. The bundled ``base-images/*.lock.json`` are seeds: a project
without a base entry gets a copy of the seed, and ``refresh`` (``ocibuild lock``) resolves its base anew, into
the project lock only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ocibuild.cog.config import LoadedConfig
from ocibuild.cog.contract import COG_SDK_DEPENDENCIES
from ocibuild.cog.lockfile import LOCK_NAME, ProjectLock, lock_changes
from ocibuild.errors import UserInputError
from ocibuild.oci import Platform, Store
from ocibuild.sources import debian
from ocibuild.sources.project.weights import WeightsLock, WeightSource, WeightSpec, resolve_weight_specs
from ocibuild.sources.python import PythonTarget, Requirements, check_lock, lock_python, read_requirements


@dataclass(frozen=True)
class ResolveOptions:
    """What resolution may do: use the network, re-resolve everything, or change nothing at all."""

    store: Store
    platforms: Sequence[Platform]
    offline: bool = False
    refresh: bool = False
    locked: bool = False
    find_links: Sequence[str] = ()


@dataclass(frozen=True)
class PlatformInputs:
    """Everything pinned for one platform."""

    platform: Platform
    base: debian.BaseLock
    target: PythonTarget
    python: dict[str, Any]
    system: dict[str, Any] | None
    toolbox: dict[str, Any] | None
    """The build toolbox's Debian packages (None without build.run commands or sdists to build)."""


@dataclass(frozen=True)
class Resolved:
    """A complete lock, what changed against the previous one, and the pinned inputs per platform."""

    lock: ProjectLock
    changes: list[str]
    platforms: list[PlatformInputs]
    requirements: Requirements
    weights: list | None
    """Managed weight sets (cog.yaml ``weights:``), their files fetched by digest; None without managed weights."""
    notes: list[str]
    """Choices the user should hear about (e.g. the Python patch a base really has)."""


def recipe_versions() -> dict[str, str]:
    """The versions of every recipe that shapes layer bytes; a change means new layers from the same lock."""
    from ocibuild.oci.tarwriter import RECIPE as TAR
    from ocibuild.run.buildrun import RECIPE_VERSION as BUILDRUN
    from ocibuild.sources.debian import RECIPE as DEBIAN
    from ocibuild.sources.debian.interpreter import RECIPE as INTERPRETER
    from ocibuild.sources.project.code import CODE_RECIPE
    from ocibuild.sources.project.weights import WEIGHTS_RECIPE as WEIGHTS
    from ocibuild.sources.python.layers import RECIPE as PYTHON
    from ocibuild.sources.runner import RECIPE as RUNNER
    from ocibuild.sources.runner import runner_version

    return {
        "tar": TAR,
        "debian": DEBIAN,
        "interpreter": INTERPRETER,
        "python": PYTHON,
        "runner": f"{RUNNER} cog=={runner_version()}",
        "build.run": BUILDRUN,
        "code": CODE_RECIPE,
        "weights": WEIGHTS,
    }


def resolve_project(loaded: LoadedConfig, previous: ProjectLock | None, options: ResolveOptions) -> Resolved:
    """The complete lock for ``loaded`` on ``options.platforms``; see the module docstring for the rules."""
    if previous is None and (options.offline or options.locked):
        flag = "--offline" if options.offline else "--locked"
        raise UserInputError(f"{LOCK_NAME}: missing; {flag} builds need a lock (run 'ocibuild lock')")
    guard = _Guard(options)
    old = previous or ProjectLock()
    new = ProjectLock(recipes=recipe_versions())
    reqs = read_requirements(
        loaded.project_dir, loaded.config.build.python_requirements, loaded.config.build.python_packages or None
    ).with_defaults(COG_SDK_DEPENDENCIES, "the cog SDK's dependencies")
    reqs = reqs.with_defaults(loaded.cuda.requirements if loaded.cuda else (), "build.gpu: CUDA libraries")
    weight_sets = _resolve_weights(loaded, old, new, options, guard)
    inputs = [_resolve_platform(loaded, platform, reqs, old, new, options, guard) for platform in options.platforms]
    changes = lock_changes(previous, new)
    if options.locked and changes:
        raise UserInputError(f"{LOCK_NAME}: --locked, but the lock would change: {'; '.join(changes)}")
    return Resolved(new, changes, inputs, reqs, weight_sets, sorted(set(guard.notes)))


class _Guard:
    """Where resolution would choose versions: refused with ``--locked``, and with ``--offline``."""

    def __init__(self, options: ResolveOptions) -> None:
        self.options = options
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        """A choice resolution made that the user should hear about."""
        self.notes.append(message)

    def resolving(self, what: str) -> None:
        if self.options.locked:
            raise UserInputError(f"{LOCK_NAME}: --locked, but {what}; run 'ocibuild lock'")
        if self.options.offline:
            raise UserInputError(f"{LOCK_NAME}: {what}; --offline cannot resolve it (run 'ocibuild lock' online)")


def _resolve_platform(
    loaded: LoadedConfig,
    platform: Platform,
    reqs: Requirements,
    old: ProjectLock,
    new: ProjectLock,
    options: ResolveOptions,
    guard: _Guard,
) -> PlatformInputs:
    base = _resolve_base(loaded, str(platform), old, new, options, guard)
    target = python_target(base, platform)
    python = _resolve_python(loaded, platform, reqs, target, old, new, options, guard)
    build = loaded.config.build
    packages = loaded.debian_packages()
    args = (base, old, new, options, guard)
    system = _resolve_debian("system_packages", "debian", packages, *args) if packages else None
    sdists = has_sdists(python)
    wanted = toolbox_packages(base, compilers=sdists) if build.run_commands() or sdists else ()
    toolbox = _resolve_debian("build toolbox", "toolbox", wanted, *args) if wanted else None
    return PlatformInputs(platform, base, target, python, system, toolbox)


def _resolve_base(
    loaded: LoadedConfig, platform: str, old: ProjectLock, new: ProjectLock, options: ResolveOptions, guard: _Guard
) -> debian.BaseLock:
    definition = debian.load_base_definition(str(loaded.config.build.python_version))
    entry = (old.base or {}).get(platform)
    pinned = debian.base_lock_from_section(entry, platform) if entry else None
    if options.refresh:
        options.store.require_online(f"the Debian archive indexes for {definition.name}")
        base = debian.lock_base(definition, options.store, platform)
    elif pinned is not None and pinned.definition_digest == definition.digest:
        base = pinned
    else:
        why = "has no base" if pinned is None else f"pins a base for another definition of {definition.name}"
        if options.locked:
            guard.resolving(f"it {why} for {platform}")
        base = debian.load_lock(definition, platform)  # the bundled seed: no network
    base = _honour_patch(str(loaded.config.build.python_version), base, guard)
    new.base = {**(new.base or {}), base.platform: debian.base_section(base)}
    return base


def _honour_patch(requested: str, base: debian.BaseLock, guard: _Guard) -> debian.BaseLock:
    """``python_version: X.Y.Z``: a python-build-standalone base pins exactly that build; Debian's interpreter has one
    patch per suite, so a different one is kept and said (never dropped silently)."""
    if requested.count(".") < 2:
        return base
    if base.interpreter == debian.PBS:
        if base.interpreter_pin.get("version") != requested:
            guard.resolving(f"it pins Python {base.interpreter_pin.get('version')}, not {requested}")
            pin = debian.interpreter.pin_interpreter(requested, base.arch)
            base = dataclasses.replace(base, interpreter_pin=pin)
        return base
    shipped = debian.shipped_python(base)
    if shipped and shipped != requested:
        guard.note(
            f"cog.yaml: python_version {requested}: {base.name} ships Debian's Python {shipped} (patched by Debian "
            f"security updates); the image has {shipped}. Use python_version {requested.rsplit('.', 1)[0]} to "
            "silence this"
        )
    return base


def python_target(base: debian.BaseLock, platform: Platform) -> PythonTarget:
    """The Python environment of a base: its interpreter version, glibc (from libc6) and paths."""
    libc = next((p.version for p in base.packages if p.name == "libc6"), "2.36")
    glibc = re.match(r"\d+\.\d+", libc.split(":")[-1])
    site_packages = "/" + debian.load_base_definition(base.python).site_packages
    return PythonTarget(
        base.python, str(platform), glibc.group(0) if glibc else "2.36", site_packages, f"/usr/bin/python{base.python}"
    )


def torch_suffix(loaded: LoadedConfig) -> str | None:
    """Which PyTorch index builds torch: CPU images use the small ``+cpu`` builds. GPU images take PyPI's Linux
    wheels (CUDA builds with their nvidia-* wheels) unless cog.yaml pins ``cuda:``, which selects that CUDA's
    PyTorch index, as Cog does."""
    if loaded.cuda is None:
        return "cpu"
    return loaded.cuda.torch_index_suffix if loaded.config.build.cuda else None


def _resolve_python(
    loaded: LoadedConfig,
    platform: Platform,
    reqs: Requirements,
    target: PythonTarget,
    old: ProjectLock,
    new: ProjectLock,
    options: ResolveOptions,
    guard: _Guard,
) -> dict[str, Any]:
    section = (old.python or {}).get(str(platform))
    # --find-links given once is remembered in the lock, so later builds (and predict/run) need not repeat it
    find_links = list(options.find_links) or list((section or {}).get("find_links", []))
    kwargs: dict[str, Any] = {"find_links": find_links, "torch_index_suffix": torch_suffix(loaded)}
    stale = options.refresh or section is None
    if not stale:
        try:
            check_lock(section, reqs, target, **kwargs)
        except UserInputError:
            stale = True
    if stale:
        if not options.refresh:
            guard.resolving(f"its Python distributions for {platform} do not match {reqs.source}")
        options.store.require_online(f"the Python resolution of {reqs.source} for {platform}")
        section = lock_python(reqs, target, **kwargs)
    new.python = {**(new.python or {}), str(platform): section}
    assert section is not None
    return section


TOOLBOX = ("apt", "ca-certificates", "curl", "git", "wget")
"""What build.run commands find as in Cog's images, besides pip; they exist only while the build runs."""
ESSENTIAL = ("diffutils", "gzip", "init-system-helpers", "perl-base")
"""Essential packages the slim base leaves out that dpkg and maintainer scripts assume (for apt-get install)."""
COMPILERS = ("gcc", "g++", "make", "pkg-config", "libc6-dev")
"""What building an sdist in the image needs besides the interpreter's headers (only when the lock has sdists)."""


def has_sdists(python: dict[str, Any]) -> bool:
    """Whether the lock's Python section has distributions to build from source (sdists, git checkouts)."""
    return any(d.get("kind") != "wheel" for d in python.get("distributions", []))


def toolbox_packages(base: debian.BaseLock, compilers: bool = False) -> tuple[str, ...]:
    """The toolbox for ``base``: pip comes from Debian for Debian's interpreter, with python-build-standalone;
    ``compilers`` adds a C/C++ toolchain, pkg-config and (for Debian's interpreter) its headers."""
    packages = (*TOOLBOX, *ESSENTIAL, "python3-pip") if base.interpreter == "debian" else (*TOOLBOX, *ESSENTIAL)
    if compilers:
        packages += COMPILERS
        packages += (f"python{base.python}-dev",) if base.interpreter == "debian" else ()
    return packages


def _resolve_debian(
    what: str,
    section_name: str,
    packages: Sequence[str],
    base: debian.BaseLock,
    old: ProjectLock,
    new: ProjectLock,
    options: ResolveOptions,
    guard: _Guard,
) -> dict[str, Any]:
    """Debian ``packages`` on top of ``base`` (system_packages or the build.run toolbox), kept when pinned."""
    previous = None if options.refresh else (getattr(old, section_name) or {}).get(base.platform)
    if options.locked and previous is None:
        guard.resolving(f"it pins no {what} for {base.platform}")
    section = debian.resolve_system_packages(base, packages, options.store, previous)
    for ubuntu, other in debian.substitutions(section, base.platform).items():
        guard.note(f"cog.yaml: build.system_packages: {ubuntu} is Ubuntu's name (Cog's base); installed {other}")
    if section != previous and not options.refresh:
        guard.resolving(f"its {what} for {base.platform} do not match cog.yaml")
    setattr(new, section_name, {**(getattr(new, section_name) or {}), base.platform: section})
    return section


def _resolve_weights(
    loaded: LoadedConfig, old: ProjectLock, new: ProjectLock, options: ResolveOptions, guard: _Guard
) -> list | None:
    config = loaded.config
    if not config.weights:
        return None
    specs = [
        WeightSpec(
            w.name, w.target, tuple(WeightSource(s.uri, tuple(s.include), tuple(s.exclude)) for s in w.sources())
        )
        for w in config.weights
    ]
    pinned = None if options.refresh or old.weights is None else WeightsLock.from_dict(old.weights)
    if pinned is None and not options.refresh:
        guard.resolving("it pins no weights")
    sets, weights_lock = resolve_weight_specs(specs, loaded.project_dir, options.store, pinned)
    new.weights = weights_lock.to_dict()
    return sets
