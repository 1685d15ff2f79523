"""The code layer: the project at ``/src``, as ``COPY . /src`` with ``.dockerignore``/``.cogignore`` gives it.

Always left out: ``.git`` and ``__pycache__`` anywhere; ``.cog``, ``.venv`` and ``.ocibuild`` at the root;
and the ``exclude_paths`` the caller names (weights that went to their own layers, the build output).
Symlinks are kept as links but must stay inside the project. The layer's input key is made of paths,
modes, link targets and file digests taken from stat fingerprints, so an unchanged tree is a store hit
without reading a single file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import UserInputError
from ocibuild.oci.canonical import canonical_json
from ocibuild.oci.compression import Compression
from ocibuild.oci.digest import sha256_digest
from ocibuild.oci.entries import Entry, normalized_mode
from ocibuild.oci.layer import LayerBlob, LayerRecipe
from ocibuild.oci.store import Store
from ocibuild.sources.project.fingerprint import FingerprintCache, ReadStats, VerifiedReader
from ocibuild.sources.project.ignore import IgnoreRules

CODE_RECIPE = "ocibuild-code-layer/v1"
IMAGE_DIR = "src"
SKIP_ANYWHERE = frozenset({".git", "__pycache__"})
SKIP_AT_ROOT = frozenset({".cog", ".venv", ".ocibuild"})


@dataclass(frozen=True)
class ProjectEntry:
    """One selected path of the project: relative POSIX path, absolute path and its ``lstat``."""

    rel: str
    path: Path
    st: os.stat_result

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.st.st_mode)


def project_relative(project_dir: Path, path: str | Path, what: str) -> str:
    """``path`` as a clean path relative to the project; absolute paths must lie inside it, ``..`` may not leave."""
    root = Path(project_dir).resolve()
    text = str(path)
    if os.path.isabs(text):
        absolute = Path(posixpath.normpath(text))
        if absolute != root and root not in absolute.parents:
            raise UserInputError(f"{what} {text!r} is outside the project {root}")
        text = absolute.relative_to(root).as_posix()
    cleaned = posixpath.normpath(text.replace("\\", "/"))
    if cleaned == ".." or cleaned.startswith("../"):
        raise UserInputError(f"{what} {text!r} points outside the project")
    return "" if cleaned == "." else cleaned


def check_link(root: Path, entry: ProjectEntry) -> None:
    """Refuse a symlink that is absolute or resolves outside ``root`` (one-line UserInputError)."""
    target = os.readlink(entry.path)
    real = Path(os.path.realpath(entry.path))
    if os.path.isabs(target) or (real != root and root not in real.parents):
        raise UserInputError(f"{entry.rel}: symlink to {target!r} points outside the project")


def walk_project(
    project_dir: Path,
    *,
    exclude_paths: Iterable[str] = (),
    rules: IgnoreRules | None = None,
    link_root: Path | None = None,
) -> list[ProjectEntry]:
    """Every path ``COPY . /src`` would copy, sorted, with the always-skipped names and ``exclude_paths`` left out.

    Symlinks must resolve inside ``link_root`` (the walked directory unless given).
    """
    root = Path(project_dir).resolve()
    boundary = Path(link_root).resolve() if link_root is not None else root
    if rules is None:
        rules = IgnoreRules.from_project(root)
    excluded = {project_relative(root, p, "excluded path") for p in exclude_paths}
    excluded.discard("")

    def left_out(rel: str) -> bool:
        return any(rel == e or rel.startswith(e + "/") for e in excluded)

    def listing(directory: Path, prefix: str) -> Iterator[tuple[str, str]]:
        return ((f"{prefix}{name}", name) for name in sorted(os.listdir(directory)))

    found: list[ProjectEntry] = []
    stack = [listing(root, "")]  # iterative, so a tree of any depth is walked without recursion
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        rel, name = item
        if name in SKIP_ANYWHERE or ("/" not in rel and name in SKIP_AT_ROOT) or left_out(rel):
            continue
        path = root / rel
        st = path.lstat()
        entry = ProjectEntry(rel, path, st)
        ignored = rules.excluded(rel)
        if stat.S_ISDIR(st.st_mode):
            if not ignored:
                found.append(entry)
            if not (ignored and rules.prunes(rel)):
                stack.append(listing(path, rel + "/"))
        elif ignored:
            continue
        elif stat.S_ISLNK(st.st_mode):
            check_link(boundary, entry)
            found.append(entry)
        elif stat.S_ISREG(st.st_mode):
            found.append(entry)
        else:
            raise UserInputError(f"{rel}: unsupported file type (device, socket or fifo) in the project")
    return found


def code_recipe(
    project_dir: Path,
    store: Store,
    source_date_epoch: int,
    *,
    exclude_paths: Iterable[str] = (),
    extra_files: Mapping[str, bytes] | None = None,
    stats: ReadStats | None = None,
) -> LayerRecipe:
    """How to make the layer of the project at ``/src`` plus ``extra_files`` (paths relative to ``/src``).

    The key comes from stat fingerprints (an unchanged tree reads no file); each file is checked against the
    digest in the key while the layer is written.
    """
    root = Path(project_dir).resolve()
    extras = {project_relative(root, name, "extra file"): data for name, data in (extra_files or {}).items()}
    entries = [e for e in walk_project(root, exclude_paths=exclude_paths) if e.rel not in extras]
    cache = FingerprintCache(store, stats)
    inputs: list[list] = []
    digests: dict[str, str] = {}
    for entry in entries:
        if entry.is_dir:
            inputs.append(["d", entry.rel, normalized_mode(entry.st.st_mode)])
        elif entry.is_link:
            inputs.append(["l", entry.rel, os.readlink(entry.path)])
        else:
            digests[entry.rel] = cache.digest(entry.path, entry.st)
            inputs.append(["f", entry.rel, normalized_mode(entry.st.st_mode), digests[entry.rel]])
    cache.save()
    inputs += [["x", name, sha256_digest(data)] for name, data in sorted(extras.items())]
    key = f"{CODE_RECIPE}|{sha256_digest(canonical_json(inputs))}"

    def layer_entries(_stack: contextlib.ExitStack) -> Iterator[Entry]:
        for entry in entries:
            image_path = f"{IMAGE_DIR}/{entry.rel}"
            mode = normalized_mode(entry.st.st_mode)
            if entry.is_dir:
                yield Entry.directory(image_path, mode)
            elif entry.is_link:
                yield Entry.symlink(image_path, os.readlink(entry.path))
            else:
                opener = functools.partial(VerifiedReader, entry.path, entry.st.st_size, digests[entry.rel])
                yield Entry.file_stream(image_path, entry.st.st_size, opener, mode)
        for name, data in sorted(extras.items()):
            yield Entry.file(f"{IMAGE_DIR}/{name}", data)

    return LayerRecipe(key, layer_entries, source_date_epoch)


def code_layer(
    project_dir: Path,
    store: Store,
    source_date_epoch: int,
    *,
    exclude_paths: Iterable[str] = (),
    extra_files: Mapping[str, bytes] | None = None,
    compression: Compression = Compression.GZIP,
    stats: ReadStats | None = None,
) -> LayerBlob:
    """The code layer, materialised (from the store when the project is unchanged)."""
    recipe = code_recipe(
        project_dir, store, source_date_epoch, exclude_paths=exclude_paths, extra_files=extra_files, stats=stats
    )
    hits = store.stats.key_hits
    layer = recipe.materialise(store, compression)
    if stats is not None:
        if store.stats.key_hits > hits:
            stats.layers_reused += 1
        else:
            stats.layers_written += 1
    return layer
