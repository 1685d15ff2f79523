"""cog.yaml ``build.run`` commands: run each in the image's rootfs as built so far, keep its changes as a layer.

Each command runs as root through ``/bin/sh -c`` in the same sandbox as ``ocibuild run`` (host network,
``/dev``, ``/proc``, working directory ``/``), on an overlay (or copy) of the cached lower rootfs, which is
never modified. Its secrets are bind-mounted read-only at their targets for that command only, so they never
reach a layer. The resulting layer is cached by the command, its secret mounts, the environment and the
digests of the layers below; the command's network fetches are not pinned (the one non-hermetic step).
The build toolbox lies under the commands (pip, curl, wget, git, apt); files of packages that dpkg installed
during a command are kept in its layer even where the toolbox had the same bytes (``ocibuild.run.dpkgdb``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ocibuild import progress
from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.compression import Compression
from ocibuild.oci.entries import Entry
from ocibuild.oci.layer import LayerBlob, RemoteLayers, cached_layer
from ocibuild.oci.store import Store
from ocibuild.run.diff import KEEP_OWNERS, diff_rootfs
from ocibuild.run.dpkgdb import installed_paths
from ocibuild.run.extract import rootfs_in_use
from ocibuild.run.paths import split_image_path
from ocibuild.run.runtime import Container, run_foreground
from ocibuild.run.spec import BindMount, RunOptions, build_spec, mount_destinations
from ocibuild.run.workspace import Workspace

RECIPE_VERSION = "buildrun-v2"  # v2: owners set by the command are kept


@dataclass(frozen=True)
class BuildCommand:
    """One ``build.run`` entry: the shell command, its secret mounts as (id, target) pairs and its cache mounts
    (BuildKit's ``--mount=type=cache``) as (id, target) pairs."""

    command: str
    secrets: tuple[tuple[str, str], ...] = ()
    caches: tuple[tuple[str, str], ...] = ()


_BUILDKIT_FLAG = re.compile(r"^\s*--(mount|network|security)=(\S+)\s+")


def parse_run_line(line: str) -> BuildCommand:
    """A ``build.run`` string, whose leading BuildKit flags (``--mount=type=cache|secret,...``) Cog passes to
    ``RUN`` verbatim: cache mounts persist in the store between builds and secrets are mounted for the command;
    neither enters a layer. ``--network``/``--security`` are accepted and have no effect here."""
    secrets: list[tuple[str, str]] = []
    caches: list[tuple[str, str]] = []
    while match := _BUILDKIT_FLAG.match(line):
        line = line[match.end() :]
        if match.group(1) != "mount":
            continue
        fields = dict(part.partition("=")[::2] for part in match.group(2).split(",") if part)
        kind = fields.get("type", "bind")
        target = fields.get("target") or fields.get("dst") or fields.get("destination") or ""
        if kind == "secret":
            secret_id = fields.get("id") or PurePosixPath(target).name
            if not secret_id:
                raise UserInputError(f"build.run: --mount={match.group(2)}: a secret needs id= or target=")
            secrets.append((secret_id, target or f"/run/secrets/{secret_id}"))
        elif kind == "cache":
            if not target.startswith("/"):
                raise UserInputError(f"build.run: --mount={match.group(2)}: a cache needs an absolute target=")
            caches.append((fields.get("id") or target, target))
        else:
            raise UserInputError(f"build.run: --mount={match.group(2)}: only type=cache and type=secret are supported")
    return BuildCommand(line.strip(), tuple(secrets), tuple(caches))


def parse_secret_arg(text: str) -> tuple[str, Path]:
    """``--secret id=NAME,src=FILE`` (``source=`` also accepted) -> (NAME, FILE)."""
    fields = dict(part.partition("=")[::2] for part in text.split(",") if part)
    name, source = fields.get("id", ""), fields.get("src") or fields.get("source", "")
    if not name or not source or set(fields) - {"id", "src", "source", "type"}:
        raise UserInputError(f"--secret {text}: expected id=NAME,src=FILE")
    path = Path(source).expanduser().resolve()
    if not path.is_file():
        raise UserInputError(f"--secret {text}: {path} is not a file")
    return name, path


def as_build_command(item: Any) -> BuildCommand:
    """A ``build.run`` item (a string, a ``{command, mounts}`` mapping or an object with those attributes)."""
    if isinstance(item, BuildCommand):
        return item
    if isinstance(item, str):
        return parse_run_line(item)
    get = item.get if isinstance(item, Mapping) else lambda key, default=None: getattr(item, key, default)
    mounts = []
    for mount in get("mounts", None) or []:
        mget = mount.get if isinstance(mount, Mapping) else lambda key, m=mount: getattr(m, key, None)
        if (mget("type") or "secret") != "secret":
            raise UserInputError(f"build.run: unsupported mount type {mget('type')!r} (only secret)")
        mounts.append((str(mget("id")), str(mget("target") or f"/run/secrets/{mget('id')}")))
    parsed = parse_run_line(str(get("command", "")))
    return BuildCommand(parsed.command, (*parsed.secrets, *mounts), parsed.caches)


def _key(command: BuildCommand, below: Sequence[LayerBlob], env: Sequence[str]) -> str:
    recipe = {"command": command.command, "secrets": command.secrets, "env": list(env), "owners": KEEP_OWNERS}
    if command.caches:
        recipe["caches"] = command.caches
    below_digests = ",".join(layer.digest for layer in below)
    text = json.dumps(recipe, sort_keys=True)
    return f"{RECIPE_VERSION}|{below_digests}|{hashlib.sha256(text.encode()).hexdigest()}"


def _runtime_created(lower: Path, spec: dict[str, Any]) -> set[str]:
    """Mount points (and their parents) the runtime will create because the lower rootfs lacks them."""
    created = set()
    for destination in mount_destinations(spec):
        parts = split_image_path(destination)
        for depth in range(1, len(parts) + 1):
            if not os.path.lexists(lower.joinpath(*parts[:depth])):
                created.add("/".join(parts[:depth]))
    return created


def cache_dir(store: Store, cache_id: str) -> Path:
    """Where a ``--mount=type=cache`` keeps its files between builds (never in a layer)."""
    path = store.root / "run-cache" / hashlib.sha256(cache_id.encode()).hexdigest()[:32]
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_one(
    command: BuildCommand,
    lower: Path,
    workspace: Workspace,
    secrets: Mapping[str, Path],
    env: Sequence[str],
    runtime: str,
    store: Store,
) -> list[Entry]:
    binds = []
    for secret_id, target in command.secrets:
        if secret_id not in secrets:
            raise UserInputError(f"build.run: secret {secret_id!r} is not given (--secret id={secret_id},src=FILE)")
        binds.append(BindMount(str(secrets[secret_id]), target, readonly=True))
    binds += [BindMount(str(cache_dir(store, cache_id)), target) for cache_id, target in command.caches]
    options = RunOptions(["/bin/sh", "-c", command.command], env, binds, user="0:0", cwd="/")
    spec = build_spec({"Env": list(env)}, workspace.rootfs, options)
    reporter = progress.active()
    reporter.step(f"build.run: {command.command}")
    log = workspace.dir / "build-run.log"
    with open(log, "wb") as out:  # shown as it runs, or kept for the error under -q
        stdout = out.fileno() if reporter.quiet else sys.stderr.fileno()
        code = run_foreground(Container(spec, workspace.dir, runtime=runtime, stdout=stdout))
    if code != 0:
        if reporter.quiet:
            print(log.read_text(errors="replace")[-4000:], file=sys.stderr, end="")
        raise BuildError(f"build.run command exited with code {code}: {command.command}{_hint(command.command)}")
    reinstalled = installed_paths(lower, workspace.rootfs)
    return diff_rootfs(lower, workspace.rootfs, _runtime_created(lower, spec), reinstalled)


def _hint(command: str) -> str:
    """What a failure of ``command`` most likely means on ocibuild's base, where Cog's differs."""
    if "add-apt-repository" in command or "ppa:" in command:
        return " (a PPA publishes Ubuntu packages for Ubuntu releases: it fails on ocibuild's Debian base, as on any)"
    return ""


def run_build_commands(
    lower_layers: Sequence[LayerBlob],
    commands: Sequence[Any],
    secrets: Mapping[str, Path],
    store: Store,
    source_date_epoch: int,
    compression: Compression,
    *,
    env: Sequence[str] = (),
    runtime: str = "auto",
    remote: RemoteLayers | None = None,
) -> list[LayerBlob]:
    """One layer per command, each run on top of ``lower_layers`` plus the layers of the commands before it."""
    built: list[LayerBlob] = []
    for item in commands:
        command = as_build_command(item)
        if not command.command.strip():
            raise UserInputError("build.run: empty command")
        below = [*lower_layers, *built]
        with contextlib.ExitStack() as stack:

            def entries(below: list[LayerBlob] = below, command: BuildCommand = command) -> list[Entry]:
                lower = stack.enter_context(rootfs_in_use(below, store))
                workspace = stack.enter_context(Workspace(lower, store.root / "tmp"))
                return _run_one(command, lower, workspace, secrets, env, runtime, store)

            key = _key(command, below, env)
            built.append(cached_layer(key, entries, store, compression, source_date_epoch, remote=remote))
    return built
