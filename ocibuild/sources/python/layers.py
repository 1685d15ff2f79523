"""Turn the locked distributions into layers: each large one alone, the small ones together.

A layer's key is its files' sha256s plus the target's install paths and this recipe's version, so the same
wheel gives the same layer digest in every image, and a warm rebuild is one store lookup per layer.

With a ``max_layer_size``, a large distribution whose files exceed it becomes several layers, split by path
(``ocibuild.oci.split``); each part's key names the size and the part, so another size never reuses a part.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocibuild.errors import BuildError
from ocibuild.oci.compression import Compression
from ocibuild.oci.entries import Entry
from ocibuild.oci.layer import LayerBlob, LayerRecipe
from ocibuild.oci.split import split_entries
from ocibuild.oci.store import Store
from ocibuild.sources.python.fetch import fetch, pin
from ocibuild.sources.python.sdist import BuildEnv, build_wheel
from ocibuild.sources.python.target import PythonTarget
from ocibuild.sources.python.wheel import wheel_entries

RECIPE = "python-dists/2"
LARGE_THRESHOLD = 50 * 1024 * 1024
LAYER_THREADS = 3
FETCH_THREADS = 8


@dataclass(frozen=True)
class LayerGroup:
    """The distributions that share one layer."""

    name: str
    distributions: tuple[dict[str, Any], ...]
    large: bool = False
    """One distribution larger than the threshold, alone in its layer (the layers ``max_layer_size`` splits)."""
    part: str = ""
    """`` (part i/n)`` when the group's files are split over several layers."""

    @property
    def created_by(self) -> str:
        """The history text: ``pip install`` and every distribution of the layer."""
        return "pip install " + " ".join(f"{d['name']}=={d['version']}" for d in self.distributions) + self.part

    def key(self, target: PythonTarget, env: BuildEnv | None = None) -> str:
        files = sorted(f"{d['kind']}:{pin(d)}" for d in self.distributions)
        where = [target.site_packages, target.interpreter, target.python_version, target.platform]
        if env is not None and any(d["kind"] != "wheel" for d in self.distributions):
            where.append(f"built-in={env.key}")  # a wheel built from source depends on what it was built with
        return "|".join([RECIPE, *where, *files])


def group_distributions(
    distributions: Sequence[dict[str, Any]], large_threshold: int = LARGE_THRESHOLD
) -> list[LayerGroup]:
    """One group per distribution larger than the threshold (by file size), then one for all the others."""
    ordered = sorted(distributions, key=lambda d: d["name"])
    large = [d for d in ordered if (d.get("size") or 0) > large_threshold]
    small = tuple(d for d in ordered if d not in large)
    groups = [LayerGroup(f"python: {d['name']}=={d['version']}", (d,), large=True) for d in large]
    if small:
        groups.append(LayerGroup(f"python: {len(small)} distribution(s)", small))
    return groups


def _wheel_for(
    dist: dict[str, Any], target: PythonTarget, store: Store, project_dir: Path | None, env: BuildEnv | None
) -> Path:
    local = fetch(dist, store, project_dir)
    return local if dist["kind"] == "wheel" else build_wheel(local, dist, target, store, env)


def _group_entries(
    group: LayerGroup,
    target: PythonTarget,
    store: Store,
    project_dir: Path | None,
    env: BuildEnv | None,
    stack: contextlib.ExitStack,
) -> list[Entry]:
    """The installed files of ``group``'s wheels (fetched, or built from sdists in ``env``, by sha256); they stream
    from the wheels, which ``stack`` keeps open."""
    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        wheels = list(pool.map(lambda d: _wheel_for(d, target, store, project_dir, env), group.distributions))
    by_path: dict[str, Entry] = {}
    for wheel in wheels:  # later wheels win on a shared path, as installing them in order would
        zf = stack.enter_context(_open_wheel(wheel))
        by_path.update((entry.path, entry) for entry in wheel_entries(zf, wheel, target))
    return list(by_path.values())


def group_recipe(
    group: LayerGroup,
    target: PythonTarget,
    store: Store,
    source_date_epoch: int,
    project_dir: Path | None,
    env: BuildEnv | None = None,
) -> LayerRecipe:
    """How to make the layer of ``group``: its wheels' members."""

    def entries(stack: contextlib.ExitStack) -> list[Entry]:
        return _group_entries(group, target, store, project_dir, env, stack)

    return LayerRecipe(group.key(target, env), entries, source_date_epoch)


def split_recipes(
    group: LayerGroup,
    target: PythonTarget,
    store: Store,
    source_date_epoch: int,
    project_dir: Path | None,
    max_size: int,
    env: BuildEnv | None = None,
) -> list[tuple[LayerGroup, LayerRecipe]]:
    """The layers of ``group`` split by path into parts of at most ``max_size`` bytes of files (one part when it
    fits). The plan reads the wheels' file lists to count the parts; each part is a layer of its own."""
    with contextlib.ExitStack() as stack:
        count = len(split_entries(_group_entries(group, target, store, project_dir, env, stack), max_size))
    if count == 1:
        return [(group, group_recipe(group, target, store, source_date_epoch, project_dir, env))]

    def part(index: int) -> tuple[LayerGroup, LayerRecipe]:
        def entries(stack: contextlib.ExitStack) -> list[Entry]:
            parts = split_entries(_group_entries(group, target, store, project_dir, env, stack), max_size)
            if len(parts) != count:  # the split is a pure function of the files: only a changed wheel does this
                raise BuildError(f"{group.name}: split into {len(parts)} parts, planned {count}")
            return parts[index]

        suffix = f" (part {index + 1}/{count})"
        key = f"{group.key(target, env)}|split={max_size}|part={index + 1}/{count}"
        named = LayerGroup(group.name + suffix, group.distributions, group.large, suffix)
        return named, LayerRecipe(key, entries, source_date_epoch)

    return [part(i) for i in range(count)]


def _open_wheel(wheel: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BuildError(f"{wheel.name}: not a valid wheel ({exc})") from None


def python_recipes(
    section: dict[str, Any],
    target: PythonTarget,
    store: Store,
    source_date_epoch: int,
    large_threshold: int = LARGE_THRESHOLD,
    *,
    project_dir: Path | None = None,
    max_layer_size: int | None = None,
    build_env: BuildEnv | None = None,
) -> list[tuple[LayerGroup, LayerRecipe]]:
    """One (group, recipe) per layer of the lock's ``python`` section, in image order; sdists are built in
    ``build_env`` (the image's filesystem) when given; with ``max_layer_size``, each large distribution whose files
    exceed it is split into several layers."""
    groups = group_distributions(section.get("distributions", []), large_threshold)
    if max_layer_size is None:
        return [(g, group_recipe(g, target, store, source_date_epoch, project_dir, build_env)) for g in groups]

    def layers_of(group: LayerGroup) -> list[tuple[LayerGroup, LayerRecipe]]:
        if not group.large:  # the small distributions' layer is never split
            return [(group, group_recipe(group, target, store, source_date_epoch, project_dir, build_env))]
        return split_recipes(group, target, store, source_date_epoch, project_dir, max_layer_size, build_env)

    with ThreadPoolExecutor(LAYER_THREADS) as pool:
        return [pair for pairs in pool.map(layers_of, groups) for pair in pairs]


def python_layers(
    section: dict[str, Any],
    target: PythonTarget,
    store: Store,
    source_date_epoch: int,
    large_threshold: int = LARGE_THRESHOLD,
    *,
    project_dir: Path | None = None,
    compression: Compression = Compression.GZIP,
    max_layer_size: int | None = None,
) -> list[tuple[str, LayerBlob]]:
    """The (name, layer) pairs for the lock's ``python`` section, materialised (built layers come from the store)."""
    recipes = python_recipes(
        section,
        target,
        store,
        source_date_epoch,
        large_threshold,
        project_dir=project_dir,
        max_layer_size=max_layer_size,
    )
    if not recipes:
        return []
    with ThreadPoolExecutor(min(LAYER_THREADS, len(recipes))) as pool:
        futures = [pool.submit(r.materialise, store, compression) for _, r in recipes]
        return [(g.name, f.result()) for (g, _), f in zip(recipes, futures, strict=True)]


def pip_freeze(section: dict[str, Any]) -> str:
    """``name==version`` lines sorted by name: the value of the ``run.cog.pip_freeze`` label."""
    return "\n".join(f"{d['name']}=={d['version']}" for d in sorted(section.get("distributions", []), key=_key))


def _key(dist: dict[str, Any]) -> str:
    return dist["name"].lower()
